//! mcp-frontdoor: one TLS port in front of per-user MCP gateways.
//!
//! [`run`] is what `main` and the integration tests call: it takes a validated config, bound
//! listeners and a shutdown signal, so tests bind `127.0.0.1:0` and drive shutdown themselves.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod dev;
pub mod dockerapi;
pub mod error;
pub mod events;
pub mod gate;
pub mod gateways;
pub mod http1;
pub mod metrics;
pub mod owners;
pub mod proxy;
pub mod replicas;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod services;
pub mod shutdown;
pub mod state;
pub mod storage;
pub mod time;
pub mod ui;

use anyhow::Context;
use auth::Authenticator;
use config::Config;
use gateways::{DockerGateways, FixedUpstream, GatewayControl, GatewayResolver, NoRuntime};
use proxy::sessions::{SessionBindings, SESSION_IDLE_TTL};
use proxy::{Proxy, UpstreamClient};
use server::tls::{server_config, ReloadingCert};
use server::ListenerSpec;
use services::Services;
use shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The two listeners, bound by the caller.
pub struct Listeners {
    pub public: TcpListener,
    pub metrics: TcpListener,
}

impl Listeners {
    /// Binds the addresses in `config`.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        // SO_REUSEPORT, so each serving worker can bind its own socket beside this one.
        let public = server::workers::bind_reuseport(config.server.listen)
            .and_then(TcpListener::from_std)
            .with_context(|| format!("binding server.listen {}", config.server.listen))?;
        let metrics = TcpListener::bind(config.metrics.listen)
            .await
            .with_context(|| format!("binding metrics.listen {}", config.metrics.listen))?;
        Ok(Self { public, metrics })
    }
}

/// The resolver `config` asks for.
pub fn resolver_from_config(config: &Config) -> anyhow::Result<Arc<dyn GatewayResolver>> {
    match &config.gateways.upstream_url {
        Some(url) => {
            let token =
                match &config.gateways.upstream_token_env {
                    Some(var) => Some(std::env::var(var).with_context(|| {
                        format!("gateways.upstream_token_env: {var} is not set")
                    })?),
                    None => None,
                };
            Ok(Arc::new(
                FixedUpstream::new(url, token).map_err(anyhow::Error::msg)?,
            ))
        }
        None => {
            tracing::warn!("no gateway runtime configured: proxied requests will get 503");
            Ok(Arc::new(NoRuntime))
        }
    }
}

/// How requests find gateways, and (for runtimes that manage them) operator control.
pub struct Gateways {
    pub resolver: Arc<dyn GatewayResolver>,
    pub control: Option<Arc<dyn GatewayControl>>,
    /// The container lifecycle, when it is the runtime: its metrics are registered and it is
    /// shut down (state saved, gateways left running for adoption) when serving ends.
    pub lifecycle: Option<DockerGateways>,
}

impl Gateways {
    /// The per-user container lifecycle as resolver and control.
    pub fn lifecycle(lifecycle: DockerGateways) -> Self {
        Self {
            resolver: Arc::new(lifecycle.clone()),
            control: Some(Arc::new(lifecycle.clone())),
            lifecycle: Some(lifecycle),
        }
    }
}

/// The gateways `config` asks for: one shared upstream when `gateways.upstream_url` is set,
/// otherwise per-user containers on Docker. Must run inside a Tokio runtime.
pub fn gateways_from_config(config: &Config, services: &Services) -> anyhow::Result<Gateways> {
    if config.gateways.upstream_url.is_some() {
        return Ok(Gateways {
            resolver: resolver_from_config(config)?,
            control: None,
            lifecycle: None,
        });
    }
    let lifecycle = DockerGateways::from_config(config, services)?;
    Ok(Gateways::lifecycle(lifecycle))
}

/// Runs with the gateway runtime the config names until `shutdown` completes.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> anyhow::Result<()> {
    let services = Services::open(&config)?;
    let gateways = gateways_from_config(&config, &services)?;
    serve(config, listeners, services, gateways, shutdown).await
}

/// Runs with an explicit gateway resolver (tests).
pub async fn run_with(
    config: Config,
    listeners: Listeners,
    resolver: Arc<dyn GatewayResolver>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let services = Services::open(&config)?;
    let gateways = Gateways {
        resolver,
        control: None,
        lifecycle: None,
    };
    serve(config, listeners, services, gateways, shutdown).await
}

/// Serves both listeners with opened services and gateways until `shutdown` completes.
pub async fn serve(
    config: Config,
    listeners: Listeners,
    services: Services,
    gateways: Gateways,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let background = CancellationToken::new();
    let _stop_background = background.clone().drop_guard();
    // Without an explicit public_url the bound port counts (port 0 in tests picks one).
    let public_url = match &config.server.public_url {
        Some(_) => config.public_url().to_string(),
        None => format!(
            "{}://localhost:{}",
            if config.server.tls.is_some() {
                "https"
            } else {
                "http"
            },
            listeners.public.local_addr()?.port()
        ),
    };
    let auth = Authenticator::from_config(&config.auth, &public_url, background.child_token())
        .await
        .context("loading JWT keys")?;
    let scrape = server::scrape_auth::ScrapeToken::from_config(&config.metrics)
        .context("loading the metrics bearer token")?;
    let tls = match &config.server.tls {
        Some(t) => {
            let certs = ReloadingCert::load(t)?;
            certs
                .clone()
                .spawn_watcher(t.reload_interval.0, background.child_token());
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_config(
                certs,
            )?)))
        }
        None => {
            tracing::warn!("server.tls is not set: serving plain HTTP");
            None
        }
    };
    let lifecycle = gateways.lifecycle.clone();
    // Event streams never end by themselves: end them when shutdown starts, so the drain
    // does not wait its whole grace period for them.
    let (events, on_shutdown) = (services.events.clone(), shutdown.clone());
    tokio::spawn(async move {
        on_shutdown.triggered().await;
        events.close();
    });
    let edge_metrics = server::edge_metrics::EdgeMetrics::default();
    let metrics = Arc::new(metrics::Metrics::new(|r| {
        services.catalog_metrics.register(r);
        edge_metrics.register(r);
        if let Some(l) = &lifecycle {
            l.metrics().register(r);
        }
    }));
    let sessions = Arc::new(SessionBindings::default());
    spawn_session_sweeper(sessions.clone(), metrics.clone(), background.child_token());
    audit::spawn_retention(
        services.audit.clone(),
        config.audit.max_age.0,
        background.child_token(),
    );
    let keepalive = config.server.sse_keepalive.0;
    let owners = lifecycle.as_ref().map(|_| services.owners.clone());
    let workers = server::workers::count(config.server.workers);
    let gate = Arc::new(gate::AuthGate::new(auth, metrics.clone()));
    let proxy = Arc::new(Proxy {
        resolver: gateways.resolver,
        client: UpstreamClient::new(
            config.gateways.connect_timeout.0,
            config.gateways.response_timeout.0,
            workers,
        ),
        sessions,
        // Derived from the master key every replica shares, so any replica opens the ids.
        seal: Arc::new(proxy::sealed::SessionSeal::from_keyring(
            services.secrets.keyring(),
        )),
        owners,
        metrics: metrics.clone(),
        allowed_origins: config.server.allowed_origins.clone(),
        sse_keepalive: (!keepalive.is_zero()).then_some(keepalive),
    });
    let state = state::AppState {
        proxy,
        gate,
        metrics,
        public_url: Arc::from(public_url.as_str()),
        authorization_servers: Arc::from(config.auth.authorization_servers.clone()),
        services,
        control: gateways.control,
        max_body: api::MAX_BODY,
        regenerate: Default::default(),
        gateway_image: config
            .gateways
            .upstream_url
            .is_none()
            .then(|| config.gateways.docker.image.clone()),
        peer_server: lifecycle.as_ref().map(|l| Arc::new(l.peer_server())),
    };
    tracing::info!(
        public = %listeners.public.local_addr()?,
        metrics = %listeners.metrics.local_addr()?,
        tls = tls.is_some(),
        url = %public_url,
        workers,
        "mcp-frontdoor listening"
    );
    let spec = ListenerSpec {
        name: "public",
        tls,
        limits: server::conns::Limits::from_config(&config.server),
        metrics: edge_metrics.clone(),
    };
    let public_app = app::Public::new(state.clone());
    let public_shutdown = shutdown.clone();
    let public = if workers == 0 {
        tokio::spawn(async move {
            server::serve(listeners.public, spec, public_app, public_shutdown).await;
            anyhow::Ok(())
        })
    } else {
        tokio::spawn(server::workers::serve(
            listeners.public,
            workers,
            spec,
            public_app,
            public_shutdown,
        ))
    };
    let metrics_listener = tokio::spawn(server::serve(
        listeners.metrics,
        ListenerSpec {
            name: "metrics",
            tls: None,
            limits: server::conns::Limits::metrics_listener(),
            metrics: edge_metrics,
        },
        app::metrics_router(state, scrape),
        shutdown.clone(),
    ));
    let (a, b) = tokio::join!(public, metrics_listener);
    if let Some(l) = lifecycle {
        l.shutdown().await;
    }
    a.context("public listener task")?
        .context("public listener")?;
    b.context("metrics listener task")?;
    tracing::info!("mcp-frontdoor stopped");
    Ok(())
}

fn spawn_session_sweeper(
    sessions: Arc<SessionBindings>,
    metrics: Arc<metrics::Metrics>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
            let left = sessions.sweep(SESSION_IDLE_TTL);
            metrics.bound_sessions.set(left as i64);
        }
    });
}
