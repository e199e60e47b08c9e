//! The lifecycle on an engine and gateways that exist only in memory
//! ([`crate::runtime::fake::FakeRuntime`], [`FakeAgent`]), with tokio's paused clock: every
//! transition and race of `slot.rs`'s diagram, without Docker, in milliseconds.

mod adoption;
mod starts;
mod stops;

use super::agent::GatewayAgent;
use super::deliver::DeliverError;
use super::files::GatewayFile;
use super::lifecycle::{DockerGateways, Inner};
use super::slot::{Lease, Running, Slot};
use super::GatewayError;
use crate::config::Config;
use crate::runtime::fake::FakeRuntime;
use crate::services::Services;
use async_trait::async_trait;
use http::uri::Authority;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// The gateway image the fake engine has.
const IMAGE: &str = "gw:1";
/// The instance every test's objects carry.
const INSTANCE: &str = "unit";

/// The gateway end of the in-memory engine: the init takes files and the gateway answers its
/// health check while its container runs (unless told never to).
struct FakeAgent {
    rt: Arc<FakeRuntime>,
    never_ready: AtomicBool,
    deliveries: AtomicUsize,
}

impl FakeAgent {
    fn port(base: &Authority) -> u16 {
        base.port_u16().unwrap_or(0)
    }
}

#[async_trait]
impl GatewayAgent for FakeAgent {
    async fn deliver(
        &self,
        base: &Authority,
        _token: &str,
        _files: &[GatewayFile],
    ) -> Result<(), DeliverError> {
        if !self.rt.running_on(Self::port(base)) {
            return Err(DeliverError::NotListening(std::io::Error::other(
                "connection refused",
            )));
        }
        self.deliveries.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn healthy(&self, base: &Authority, _token: &str) -> bool {
        !self.never_ready.load(Ordering::Acquire) && self.rt.running_on(Self::port(base))
    }
}

/// Waits (on the paused clock, which jumps while every task waits) until `cond` holds;
/// false after a simulated hour.
async fn until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..36_000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// One lifecycle on the fake engine.
struct Harness {
    gw: DockerGateways,
    rt: Arc<FakeRuntime>,
    agent: Arc<FakeAgent>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A lifecycle with `gateways:` lines added to the test config.
    async fn new(gateways: &[&str]) -> Self {
        Self::with(gateways, |_, _| {}).await
    }

    /// As [`Self::new`], with `before` run on the engine and the data dir before the lifecycle
    /// starts (what a previous front door left).
    async fn with(gateways: &[&str], before: impl FnOnce(&FakeRuntime, &Services)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("master.key");
        std::fs::write(&key, MASTER_KEY).unwrap();
        let mut lines = vec!["idle_timeout: 60s".to_string(), "spawn_timeout: 30s".into()];
        lines.extend(gateways.iter().map(|l| l.to_string()));
        let yaml = format!(
            "auth: {{ hs256_secret_env: JWT_SECRET, issuer: me, audience: [mcp] }}\n\
             data_dir: {}\n\
             secrets: {{ master_key_file: {} }}\n\
             gateways:\n{}  docker:\n    image: {IMAGE}\n    instance: {INSTANCE}\n    \
             reach: loopback\n    engine_for_gateways: none\n    frontdoor_container: none\n",
            dir.path().join("data").display(),
            key.display(),
            lines.iter().map(|l| format!("  {l}\n")).collect::<String>(),
        );
        let config = Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let services = Services::open(&config).unwrap();
        let rt = Arc::new(FakeRuntime::with_images(&[IMAGE]));
        before(&rt, &services);
        let agent = Arc::new(FakeAgent {
            rt: rt.clone(),
            never_ready: AtomicBool::new(false),
            deliveries: AtomicUsize::new(0),
        });
        let gw = DockerGateways::build(
            &config,
            &services,
            rt.clone(),
            agent.clone(),
            Default::default(),
        )
        .unwrap();
        Self {
            gw,
            rt,
            agent,
            _dir: dir,
        }
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.gw.inner
    }

    fn slot(&self, slug: &str) -> Arc<Slot> {
        self.inner().registry.slot(slug)
    }

    /// What a request does: the ready gateway of `slug`, with a lease on it.
    async fn ensure(&self, slug: &str) -> Result<(Arc<Running>, Lease), GatewayError> {
        self.inner().ensure(slug, &[]).await
    }

    /// The state the API shows for `slug`.
    fn state(&self, slug: &str) -> &'static str {
        self.slot(slug).with_phase(|p| p.name())
    }

    /// Waits (on the paused clock) until `slug` is in `state`; panics after a simulated hour.
    async fn wait_for(&self, slug: &str, state: &str) {
        let reached = until(|| self.state(slug) == state).await;
        assert!(
            reached,
            "{slug} never became {state}; it is {}",
            self.state(slug)
        );
    }

    /// Names of the gateway containers of `slug` on the engine.
    fn containers(&self, slug: &str) -> Vec<String> {
        self.rt
            .container_names(&vec![(super::names::LABEL_USER.into(), slug.into())])
    }

    /// The engine's object name of `slug`'s gateway.
    fn name(&self, slug: &str) -> String {
        self.inner().naming.object_name(slug)
    }
}
