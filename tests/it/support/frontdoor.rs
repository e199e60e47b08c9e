//! The real front door, started in-process on 127.0.0.1:0 with a config written for the test.

use super::client::{Client, Proto};
use super::tokens::{fixture, AUDIENCE, HS_SECRET, ISSUER};

/// Base64 of 32 bytes: the test master key for sealed secrets.
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
use mcp_frontdoor::config::Config;
use mcp_frontdoor::gateways::{DockerGateways, FixedUpstream, GatewayResolver};
use mcp_frontdoor::services::Services;
use mcp_frontdoor::shutdown::Shutdown;
use mcp_frontdoor::{Gateways, Listeners};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Builds a front door for one test.
pub struct FrontdoorBuilder {
    tls: bool,
    extra_server: Vec<String>,
    extra_gateways: Vec<String>,
    upstream: Option<String>,
    resolver: Option<Arc<dyn GatewayResolver>>,
    auth_extra: Vec<String>,
    audit: Vec<String>,
    events: Vec<String>,
    metrics_extra: Vec<String>,
    lifecycle: bool,
    runtime: Option<Arc<dyn mcp_frontdoor::runtime::Runtime>>,
    data_dir: Option<PathBuf>,
    catalogs: Vec<String>,
    replicas: Vec<String>,
    metrics_listener: Option<std::net::TcpListener>,
}

/// A running front door; shut down (hard) when dropped.
pub struct Frontdoor {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub shutdown: Shutdown,
    pub task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub dir: TempDir,
    pub ca_pem: Option<Vec<u8>>,
    /// The services the front door opened (with [`FrontdoorBuilder::lifecycle`]).
    #[allow(dead_code)] // used by tests/docker
    pub services: Option<Services>,
    /// The container lifecycle (with [`FrontdoorBuilder::lifecycle`]).
    #[allow(dead_code)] // used by tests/docker
    pub gateways: Option<DockerGateways>,
}

impl Drop for Frontdoor {
    fn drop(&mut self) {
        self.shutdown.trigger(Duration::ZERO);
    }
}

impl Default for FrontdoorBuilder {
    fn default() -> Self {
        Self {
            tls: true,
            extra_server: Vec::new(),
            extra_gateways: Vec::new(),
            upstream: None,
            resolver: None,
            auth_extra: Vec::new(),
            audit: Vec::new(),
            events: Vec::new(),
            metrics_extra: Vec::new(),
            lifecycle: false,
            runtime: None,
            data_dir: None,
            catalogs: Vec::new(),
            replicas: Vec::new(),
            metrics_listener: None,
        }
    }
}

impl FrontdoorBuilder {
    /// Serve plain HTTP instead of TLS.
    pub fn plain(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Adds `key: value` to the `server:` section.
    pub fn server(mut self, kv: &str) -> Self {
        self.extra_server.push(kv.to_string());
        self
    }

    /// Adds `key: value` to the `gateways:` section.
    pub fn gateways(mut self, kv: &str) -> Self {
        self.extra_gateways.push(kv.to_string());
        self
    }

    /// Adds `key: value` to the `auth:` section.
    pub fn auth(mut self, kv: &str) -> Self {
        self.auth_extra.push(kv.to_string());
        self
    }

    /// Adds `key: value` to the `audit:` section.
    #[allow(dead_code)] // used by tests/it
    pub fn audit(mut self, kv: &str) -> Self {
        self.audit.push(kv.to_string());
        self
    }

    /// Adds `key: value` to the `events:` section.
    #[allow(dead_code)] // used by tests/it
    pub fn events(mut self, kv: &str) -> Self {
        self.events.push(kv.to_string());
        self
    }

    /// Adds `key: value` to the `catalogs:` section.
    #[allow(dead_code)] // not every test binary sets a catalog policy
    pub fn catalogs(mut self, kv: &str) -> Self {
        self.catalogs.push(kv.to_string());
        self
    }

    /// Lets users add servers of their own with the test images (`example/*`), as the tests
    /// that give users custom servers need.
    #[allow(dead_code)] // not every test binary gives users servers of their own
    pub fn custom_servers(self) -> Self {
        self.catalogs("user_policy: {custom_servers: true, images: [\"example/*\"]}")
    }

    /// Adds `key: value` to the `metrics:` section.
    #[allow(dead_code)] // used by tests/it
    pub fn metrics(mut self, kv: &str) -> Self {
        self.metrics_extra.push(kv.to_string());
        self
    }

    /// Every user goes to `url` (a [`FixedUpstream`] with gateway token `gw-token`).
    pub fn upstream(mut self, url: &str) -> Self {
        self.upstream = Some(url.to_string());
        self
    }

    /// A custom resolver.
    pub fn resolver(mut self, r: Arc<dyn GatewayResolver>) -> Self {
        self.resolver = Some(r);
        self
    }

    /// Per-user gateway containers on the real engine (the `gateways.docker` section decides
    /// how), as `run` builds them.
    #[allow(dead_code)] // used by tests/docker
    pub fn lifecycle(mut self) -> Self {
        self.lifecycle = true;
        self
    }

    /// The container lifecycle on this runtime (fault injection around the real engine).
    #[allow(dead_code)] // used by tests/docker
    pub fn lifecycle_on(mut self, rt: Arc<dyn mcp_frontdoor::runtime::Runtime>) -> Self {
        self.lifecycle = true;
        self.runtime = Some(rt);
        self
    }

    /// Use this data dir instead of one in the test's temp dir (a restart keeps it).
    #[allow(dead_code)] // used by tests/docker
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Writes the config, binds 127.0.0.1:0 twice and starts `run_with` (or `serve` with the
    /// container lifecycle).
    /// A `replicas:` key, e.g. `id: a` or `peers: ["127.0.0.1:9"]`.
    #[allow(dead_code)] // used by tests/docker
    pub fn replicas(mut self, kv: &str) -> Self {
        self.replicas.push(kv.to_string());
        self
    }

    /// Serves the metrics listener on this socket, bound beforehand (so a peer replica can be
    /// told its address before it starts).
    #[allow(dead_code)] // used by tests/docker
    pub fn metrics_listener(mut self, l: std::net::TcpListener) -> Self {
        self.metrics_listener = Some(l);
        self
    }

    pub async fn start(self) -> Frontdoor {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("hs.secret");
        std::fs::write(&secret_file, HS_SECRET).unwrap();
        let master_key = dir.path().join("master.key");
        std::fs::write(&master_key, MASTER_KEY).unwrap();
        let mut server = vec![
            "listen: 127.0.0.1:0".to_string(),
            "sse_keepalive: 0s".into(),
        ];
        let mut ca_pem = None;
        if self.tls {
            let (cert, key) = mcp_frontdoor::server::tls::generate_self_signed(
                &dir.path().join("tls"),
                &["localhost".into()],
            )
            .unwrap();
            ca_pem = Some(std::fs::read(&cert).unwrap());
            server.push(format!(
                "tls: {{ cert: {}, key: {}, reload_interval: 100ms }}",
                cert.display(),
                key.display()
            ));
        }
        server.extend(self.extra_server);
        let server = last_wins(server);
        let gateways = last_wins(
            std::iter::once("response_timeout: 5s".to_string())
                .chain(self.extra_gateways)
                .collect(),
        );
        let auth = last_wins(
            [
                format!("issuer: {ISSUER}"),
                format!("audience: [{AUDIENCE}]"),
                format!("hs256_secret_file: {}", secret_file.display()),
                format!(
                    "public_key_files: [{}, {}]",
                    fixture("rsa-public.pem").display(),
                    fixture("ec-public.pem").display()
                ),
                format!("jwks_file: {}", fixture("jwks.json").display()),
            ]
            .into_iter()
            .chain(self.auth_extra)
            .collect(),
        );
        let catalogs = last_wins(self.catalogs);
        let metrics = last_wins(
            std::iter::once("listen: 127.0.0.1:0".to_string())
                .chain(self.metrics_extra)
                .collect(),
        );
        let yaml = format!(
            "server:\n{}\nmetrics:\n{}data_dir: {}\nsecrets:\n  master_key_file: {}\nauth:\n{}gateways:\n{}{}\n",
            server.iter().map(|l| format!("  {l}\n")).collect::<String>(),
            metrics.iter().map(|l| format!("  {l}\n")).collect::<String>(),
            self.data_dir
                .clone()
                .unwrap_or_else(|| dir.path().join("data"))
                .display(),
            master_key.display(),
            auth.iter().map(|l| format!("  {l}\n")).collect::<String>(),
            gateways.iter().map(|l| format!("  {l}\n")).collect::<String>(),
            if catalogs.is_empty() {
                String::new()
            } else {
                format!(
                    "catalogs:\n{}",
                    catalogs.iter().map(|l| format!("  {l}\n")).collect::<String>()
                )
            },
        );
        let yaml = if self.audit.is_empty() {
            yaml
        } else {
            let audit = last_wins(self.audit);
            format!(
                "{yaml}audit:\n{}",
                audit.iter().map(|l| format!("  {l}\n")).collect::<String>()
            )
        };
        let yaml = if self.replicas.is_empty() {
            yaml
        } else {
            let r = last_wins(self.replicas);
            format!(
                "{yaml}replicas:\n{}",
                r.iter().map(|l| format!("  {l}\n")).collect::<String>()
            )
        };
        let yaml = if self.events.is_empty() {
            yaml
        } else {
            let events = last_wins(self.events);
            format!(
                "{yaml}events:\n{}",
                events
                    .iter()
                    .map(|l| format!("  {l}\n"))
                    .collect::<String>()
            )
        };
        let config =
            Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("test config: {e}\n{yaml}"));
        let resolver: Arc<dyn GatewayResolver> = match (self.resolver, self.upstream) {
            (Some(r), _) => r,
            (None, Some(url)) => Arc::new(
                FixedUpstream::new(&url.parse().unwrap(), Some("gw-token".into())).unwrap(),
            ),
            (None, None) => Arc::new(mcp_frontdoor::gateways::NoRuntime),
        };
        // As `Listeners::bind` does: the serving workers bind beside it (SO_REUSEPORT).
        let public = mcp_frontdoor::server::workers::bind_reuseport("127.0.0.1:0".parse().unwrap())
            .and_then(TcpListener::from_std)
            .unwrap();
        let metrics = match self.metrics_listener {
            Some(l) => {
                l.set_nonblocking(true).unwrap();
                TcpListener::from_std(l).unwrap()
            }
            None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = public.local_addr().unwrap();
        let metrics_addr = metrics.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let listeners = Listeners { public, metrics };
        let (task, services, gateways) = if self.lifecycle {
            let services = Services::open(&config).expect("services");
            let lifecycle = match self.runtime {
                Some(rt) => {
                    DockerGateways::with_runtime(&config, &services, rt, Default::default())
                }
                None => DockerGateways::from_config(&config, &services),
            }
            .expect("lifecycle");
            let task = tokio::spawn(mcp_frontdoor::serve(
                config,
                listeners,
                services.clone(),
                Gateways::lifecycle(lifecycle.clone()),
                shutdown.clone(),
            ));
            (task, Some(services), Some(lifecycle))
        } else {
            let task = tokio::spawn(mcp_frontdoor::run_with(
                config,
                listeners,
                resolver,
                shutdown.clone(),
            ));
            (task, None, None)
        };
        let fd = Frontdoor {
            addr,
            metrics_addr,
            shutdown,
            task: Some(task),
            dir,
            ca_pem,
            services,
            gateways,
        };
        fd.wait_ready().await;
        fd
    }
}

impl Frontdoor {
    pub fn builder() -> FrontdoorBuilder {
        FrontdoorBuilder::default()
    }

    /// A front door whose every user goes to the raw gateway at `addr`, which gets 5 s to
    /// answer (tests of what a gateway may send).
    pub async fn before_raw_gateway(addr: std::net::SocketAddr) -> Frontdoor {
        Self::builder()
            .upstream(&format!("http://{addr}"))
            .gateways("response_timeout: 5s")
            .start()
            .await
    }

    /// The base URL clients use (`https://localhost:port` with TLS).
    pub fn base(&self) -> String {
        match self.ca_pem {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://127.0.0.1:{}", self.addr.port()),
        }
    }

    /// A client speaking `proto`.
    pub fn client(&self, proto: Proto) -> Client {
        Client::new(&self.base(), self.ca_pem.as_deref(), proto)
    }

    /// Waits until start-up finished (keys loaded, listeners serving).
    async fn wait_ready(&self) {
        let c = Client::new(&format!("http://{}", self.metrics_addr), None, Proto::H1);
        for _ in 0..200 {
            let req = c
                .req("GET", "/healthz")
                .body(super::client::empty())
                .unwrap();
            if matches!(c.try_send(req).await, Ok(r) if r.status() == 200) {
                return;
            }
            assert!(
                !self.task.as_ref().is_some_and(|t| t.is_finished()),
                "the front door stopped during start-up"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the front door did not become ready in 5 s");
    }

    /// The Prometheus text from the metrics listener.
    pub async fn metrics_text(&self) -> String {
        let c = Client::new(&format!("http://{}", self.metrics_addr), None, Proto::H1);
        let resp = c.send(c.req("GET", "/metrics")).await;
        String::from_utf8(super::body_bytes(resp).await.to_vec()).unwrap()
    }

    /// Waits for `run_with` to return after shutdown.
    pub async fn join(&mut self) -> anyhow::Result<()> {
        self.task
            .take()
            .expect("joined twice")
            .await
            .expect("run task panicked")
    }
}

/// `key: value` lines where a later line replaces an earlier one with the same key.
fn last_wins(lines: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        let key = l.split(':').next().unwrap_or("").to_string();
        out.retain(|o| o.split(':').next() != Some(key.as_str()));
        out.push(l);
    }
    out
}
