//! Per-user gateways on a container runtime: the [`GatewayResolver`] the proxy asks, and the
//! [`GatewayControl`] the API drives (DESIGN.md §4).
//!
//! The pieces: [`super::slot`] (registry and state machine), [`super::start`] (single-flight
//! start), [`super::stop`], [`super::adopt`] (start-up adoption and reconciliation after an
//! engine reconnect), [`super::background`] (events, catalog changes, idle reaper).

use super::adopter::Adopter;
use super::agent::{GatewayAgent, InitAgent};
use super::engine::EngineHealth;
use super::metrics::GatewayMetrics;
use super::names::Naming;
use super::network::Networks;
use super::prepare::Preparer;
use super::pulls::Pulls;
use super::ready::Readiness;
use super::remove::Remover;
use super::slot::{now_ms, Effect, Event, Lease, Phase, Registry, Running, Slot, StopReason};
use super::start::Starter;
use super::state_file::StateFile;
use super::subnets::SubnetPool;
use super::timing::{
    FAILED_BACKOFF, QUICK_PING, RETRY_CAPACITY, RETRY_UNAVAILABLE, SHUTDOWN_SETTLE,
};
use super::{
    GatewayControl, GatewayError, GatewayResolver, GatewayStatus, GoneCheck, ImagePull,
    PullOutcome, Retry, Upstream,
};
use crate::auth::Principal;
use crate::catalog::{CatalogCache, CatalogStore};
use crate::config::{Config, GatewaysConfig, RuntimeKind};
use crate::runtime::docker::{DockerRuntime, DockerSettings};
use crate::runtime::swarm::{SwarmRuntime, SwarmSettings};
use crate::runtime::{ContainerState, Runtime, RuntimeError};
use crate::secrets::SecretStore;
use crate::services::Services;
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How many gateways' statuses `list` gathers at once (each may ask the engine twice).
const LIST_CONCURRENCY: usize = 8;

/// Shared state of the lifecycle; background tasks hold an `Arc` of it.
pub(super) struct Inner {
    pub cfg: GatewaysConfig,
    pub rt: Arc<dyn Runtime>,
    pub catalogs: Arc<CatalogStore>,
    pub cache: Arc<CatalogCache>,
    pub secrets: Arc<SecretStore>,
    pub naming: Naming,
    pub registry: Registry,
    pub subnets: Arc<SubnetPool>,
    pub metrics: GatewayMetrics,
    pub engine: Arc<EngineHealth>,
    pub state_file: StateFile,
    /// Last activity read from the state file at start-up, until adopted (or found gone).
    pub saved_activity: Mutex<HashMap<String, u64>>,
    /// What the state file holds now.
    pub last_saved: Mutex<HashMap<String, u64>>,
    /// The policed Docker API endpoints, when gateways get one (`engine_for_gateways: policed`).
    pub apis: Option<crate::dockerapi::GatewayApis>,
    pub starter: Starter,
    pub adopter: Adopter,
    pub remover: Remover,
    /// Gateways of this instance other replicas run or start, as last counted
    /// (`capacity.rs`).
    pub peer_running: std::sync::atomic::AtomicUsize,
    /// This replica's idle gateways a peer streams through: not evicted (`capacity.rs`).
    pub peer_busy: Mutex<std::collections::HashSet<String>>,
    /// The other replicas, asked before an idle stop (`replicas.peers`).
    pub peers: Arc<crate::replicas::Peers>,
    /// Cancelled at shutdown: the background loops end.
    pub stop: CancellationToken,
    /// Every task the lifecycle spawns (starts, stops, adoptions, pulls, background loops),
    /// awaited at shutdown.
    pub tasks: TaskTracker,
}

/// The Docker (or other runtime) gateway lifecycle; cheap to clone.
#[derive(Clone)]
pub struct DockerGateways {
    pub(super) inner: Arc<Inner>,
}

impl DockerGateways {
    /// Builds the lifecycle on the Docker runtime the config names and starts its background
    /// tasks (adoption, events, catalog changes, idle reaper). Must run inside a Tokio runtime.
    pub fn from_config(config: &Config, services: &Services) -> anyhow::Result<Self> {
        let metrics = GatewayMetrics::default();
        let d = &config.gateways.docker;
        if d.gateway_engine() == crate::config::GatewayEngine::Host {
            tracing::warn!(
                "gateways.docker.engine_for_gateways is `host` (allow_host_engine: true): every \
                 gateway, and every MCP server it runs, gets this engine's socket, which is root on \
                 this host for every tenant. Run this only on a host dedicated to MCP gateways of \
                 users you trust with it; `policed` is the safe way."
            );
        }
        if d.allow_host_engine && d.gateway_engine() != crate::config::GatewayEngine::Host {
            tracing::warn!(
                "gateways.docker.allow_host_engine is true: gateways.docker.mounts may hand \
                 gateways the engine's socket, which is root on this host for every tenant"
            );
        }
        let rt = gateway_runtime(&config.gateways, &metrics);
        Self::with_runtime(config, services, rt, metrics)
    }

    /// Builds the lifecycle on any runtime (a second engine, or fault injection in tests).
    pub fn with_runtime(
        config: &Config,
        services: &Services,
        rt: Arc<dyn Runtime>,
        metrics: GatewayMetrics,
    ) -> anyhow::Result<Self> {
        let agent = Arc::new(InitAgent::new(&config.gateways.docker.health_path));
        Self::build(config, services, rt, agent, metrics)
    }

    /// Builds the lifecycle on a runtime and an agent (in-memory gateways in unit tests).
    pub(super) fn build(
        config: &Config,
        services: &Services,
        rt: Arc<dyn Runtime>,
        agent: Arc<dyn GatewayAgent>,
        metrics: GatewayMetrics,
    ) -> anyhow::Result<Self> {
        let g = config.gateways.clone();
        let memory_bytes = g.docker.memory.0;
        let subnets = SubnetPool::new(g.docker.subnet_pool, g.docker.subnet_prefix)
            .ok_or_else(|| anyhow::anyhow!("gateways.docker.subnet_pool is not usable"))?;
        let subnets = Arc::new(subnets);
        let state_file = StateFile::new(&config.data_dir);
        let apis = match g.docker.gateway_engine() {
            crate::config::GatewayEngine::Policed => {
                let d = &g.docker;
                let settings = crate::dockerapi::ApiSettings {
                    engine_host: d.host.clone(),
                    lookup_timeout: d.api_timeout.0,
                    dir: d
                        .api_socket_dir
                        .clone()
                        .unwrap_or_else(|| config.data_dir.join("gateway-api")),
                    host_dir: d.api_socket_host_dir.clone(),
                    policy: crate::dockerapi::ServerPolicy::from_config(&d.servers)?,
                };
                Some(crate::dockerapi::GatewayApis::new(
                    settings,
                    metrics.api.clone(),
                )?)
            }
            _ => None,
        };
        let saved = state_file.load().last_active_ms;
        let naming = Naming {
            instance: g.docker.instance.clone(),
        };
        let tasks = TaskTracker::new();
        let engine = Arc::new(EngineHealth::new(metrics.engine_reachable.clone()));
        let preparer = Preparer {
            catalogs: services.catalogs.clone(),
            cache: services.cache.clone(),
            secrets: services.secrets.clone(),
        };
        let adopter = Adopter {
            rt: rt.clone(),
            docker: g.docker.clone(),
            layout: services.catalogs.layout().clone(),
            apis: apis.clone(),
            naming: naming.clone(),
            agent: agent.clone(),
            preparer: preparer.clone(),
        };
        let starter = Starter {
            docker: g.docker.clone(),
            spawn_timeout: g.spawn_timeout.0,
            memory_bytes,
            rt: rt.clone(),
            naming: naming.clone(),
            preparer,
            limit: Semaphore::new(g.max_concurrent_starts),
            networks: Networks {
                rt: rt.clone(),
                subnets: subnets.clone(),
                naming: naming.clone(),
                internal: g.docker.internal_networks,
                pool_text: g.docker.subnet_pool.to_string(),
                prefix: g.docker.subnet_prefix,
            },
            pulls: Pulls::new(rt.clone(), tasks.clone()),
            init_image: super::init::InitImage::new(naming.clone()),
            apis: apis.clone(),
            readiness: Readiness {
                rt: rt.clone(),
                agent: agent.clone(),
                secrets: services.secrets.clone(),
            },
            engine: engine.clone(),
        };
        let inner = Arc::new(Inner {
            catalogs: services.catalogs.clone(),
            cache: services.cache.clone(),
            secrets: services.secrets.clone(),
            registry: Registry::with_events(services.events.clone()),
            metrics,
            engine,
            state_file,
            last_saved: Mutex::new(saved.clone()),
            saved_activity: Mutex::new(saved),
            remover: Remover {
                rt: rt.clone(),
                apis: apis.clone(),
                naming: naming.clone(),
                subnets: subnets.clone(),
                spawn_timeout: g.spawn_timeout.0,
            },
            starter,
            adopter,
            apis,
            naming,
            subnets,
            rt,
            cfg: g,
            stop: CancellationToken::new(),
            peer_running: Default::default(),
            peer_busy: Default::default(),
            peers: Arc::new(crate::replicas::Peers::from_config(
                config,
                services.secrets.keyring(),
            )),
            tasks,
        });
        inner.spawn_background();
        Ok(Self { inner })
    }

    /// The lifecycle's metrics, to register with the front door's registry.
    pub fn metrics(&self) -> &GatewayMetrics {
        &self.inner.metrics
    }

    /// Stops the background tasks, waits (at most `SHUTDOWN_SETTLE`) for every lifecycle task
    /// under way (a stop half done would leave objects behind) and saves the activity state.
    /// Gateways keep running for the next front door to adopt, unless
    /// `gateways.stop_on_shutdown` is set: then every object of the instance is removed
    /// ([`super::teardown`], the code of `gateways stop-all`).
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(SHUTDOWN_SETTLE, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                tasks = self.inner.tasks.len(),
                "gateway starts or stops still under way at shutdown; not waiting for them"
            );
        }
        if self.inner.cfg.stop_on_shutdown {
            match super::teardown::remove_instance(self.inner.rt.as_ref(), &self.inner.naming).await
            {
                Ok(t) if t.failed.is_empty() => {}
                Ok(t) => tracing::warn!("gateways.stop_on_shutdown left objects behind: {t}"),
                Err(e) => {
                    tracing::warn!(error = %e, "gateways.stop_on_shutdown: the engine could not be listed; gateways stay")
                }
            }
            // Nothing is left to adopt, nor to serve a policed API to.
            self.inner.saved_activity.lock().clear();
            if let Some(apis) = &self.inner.apis {
                for slot in self.inner.registry.all() {
                    apis.close(&slot.slug);
                }
            }
            for slot in self.inner.registry.all() {
                slot.apply(&self.inner.metrics, Event::TornDown);
            }
        }
        if let Some(apis) = &self.inner.apis {
            apis.shutdown();
        }
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || inner.save_state(true)).await;
    }

    /// What answers other replicas' activity questions about this replica's gateways.
    pub fn peer_server(&self) -> crate::replicas::PeerServer {
        crate::replicas::PeerServer {
            peers: self.inner.peers.clone(),
            source: self.inner.clone(),
        }
    }

    /// The runtime underneath (tests read hardening back through it).
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        self.inner.rt.clone()
    }
}

/// The runtime `gateways.runtime` names, on the engine `gateways.docker` names (the
/// lifecycle's, and `gateways stop-all`'s).
pub fn gateway_runtime(g: &GatewaysConfig, metrics: &GatewayMetrics) -> Arc<dyn Runtime> {
    let docker = docker_runtime(&g.docker, metrics);
    match g.runtime {
        RuntimeKind::Docker => Arc::new(docker),
        RuntimeKind::Swarm => Arc::new(SwarmRuntime::new(
            docker,
            SwarmSettings {
                stop_grace: super::timing::STOP_GRACE,
                start_timeout: g.spawn_timeout.0,
            },
        )),
    }
}

/// The Docker runtime `gateways.docker` names.
pub fn docker_runtime(d: &crate::config::DockerConfig, metrics: &GatewayMetrics) -> DockerRuntime {
    DockerRuntime::new(
        DockerSettings {
            host: d.host.clone(),
            api_timeout: d.api_timeout.0,
            pull_timeout: d.pull_timeout.0,
            own_container: d.frontdoor_container.clone(),
        },
        metrics.runtime.clone(),
    )
}

pub(super) fn unavailable(message: impl Into<String>) -> GatewayError {
    GatewayError::Unavailable {
        message: message.into(),
        retry_after: RETRY_UNAVAILABLE,
    }
}

enum Wait {
    Start(watch::Receiver<super::slot::StartResult>),
    Stop(watch::Receiver<bool>),
    Fail(GatewayError),
    Begin,
    Again,
}

impl Inner {
    /// Runs `fut` as a lifecycle task: on the shared runtime (not a serving worker's), and
    /// awaited at shutdown.
    pub(super) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        crate::server::workers::spawn_background(self.tasks.track_future(fut));
    }

    /// True when the engine answered lately.
    pub fn is_reachable(&self) -> bool {
        self.engine.is_reachable()
    }

    /// Records what the last engine call said about reachability.
    pub fn note_engine(&self, result: &Result<(), &RuntimeError>) {
        self.engine.note(result);
    }

    /// The user's ready gateway with a lease on it, starting it (or waiting for the start or
    /// stop under way) when needed.
    pub async fn ensure(
        self: &Arc<Self>,
        slug: &str,
        teams: &[String],
    ) -> Result<(Arc<Running>, Lease), GatewayError> {
        let slot = self.registry.slot(slug);
        {
            let mut t = slot.teams.lock();
            if t.as_slice() != teams {
                *t = teams.to_vec();
            }
        }
        loop {
            if let Some((running, lease)) = slot.lease_if_ready() {
                self.check_catalog_soon(&slot);
                return Ok((running, lease));
            }
            let wait = slot.with_phase(|p| match p {
                Phase::Ready { .. } => Wait::Again,
                Phase::Starting { done, .. } => Wait::Start(done.clone()),
                Phase::Stopping { done, .. } => Wait::Stop(done.clone()),
                Phase::Failed { error, at } if at.elapsed() < FAILED_BACKOFF => {
                    Wait::Fail(error.clone())
                }
                Phase::Failed { .. } | Phase::Stopped => Wait::Begin,
            });
            match wait {
                Wait::Again => continue,
                Wait::Fail(e) => return Err(e),
                Wait::Stop(mut rx) => {
                    if rx.wait_for(|done| *done).await.is_err() {
                        return Err(unavailable("the gateway stop was abandoned"));
                    }
                }
                Wait::Start(mut rx) => {
                    let outcome = rx.wait_for(Option::is_some).await.map(|v| v.clone());
                    match outcome {
                        Ok(Some(Ok(()))) => {}
                        Ok(Some(Err(e))) => return Err(e),
                        _ => return Err(unavailable("the gateway start was abandoned")),
                    }
                }
                Wait::Begin => {
                    self.check_engine().await?;
                    self.count_peer_gateways(slug).await;
                    self.note_peer_busy(&slot).await;
                    self.begin_start(&slot)?;
                }
            }
        }
    }

    /// Fails fast when the engine is known to be down and still does not answer.
    async fn check_engine(&self) -> Result<(), GatewayError> {
        if self.is_reachable() {
            return Ok(());
        }
        let r = match tokio::time::timeout(QUICK_PING, self.rt.ping()).await {
            Ok(r) => r,
            Err(_) => Err(RuntimeError::new(
                "ping",
                crate::runtime::RuntimeErrorKind::Timeout,
                "no answer",
            )),
        };
        self.note_engine(&r.as_ref().map(drop));
        r.map_err(|e| {
            tracing::warn!(error = %e, "cannot start a gateway: engine unreachable");
            unavailable("the gateway runtime (Docker) is not reachable; try again shortly")
        })
    }

    /// Moves a stopped or failed slot to starting and spawns the start. Over `max_running`
    /// the least recently used idle gateway is stopped first; with none, `AtCapacity`.
    pub fn begin_start(self: &Arc<Self>, slot: &Arc<Slot>) -> Result<(), GatewayError> {
        let _decide = self.registry.capacity.lock();
        if !slot.with_phase(Phase::startable) {
            return Ok(()); // another request began it meanwhile
        }
        let mut evicted = None;
        let peers = self.peer_running.load(std::sync::atomic::Ordering::Acquire);
        if self.registry.occupied_except(slot) + peers >= self.cfg.max_running {
            let busy = self.peer_busy.lock().clone();
            let victim = self
                .registry
                .idle_by_age_except(slot)
                .into_iter()
                .find(|v| !busy.contains(&v.slug))
                .and_then(|v| self.begin_stop(&v, StopReason::Evicted, false));
            match victim {
                Some(done) => evicted = Some(done),
                None => {
                    tracing::warn!(user = %slot.slug, max_running = self.cfg.max_running, "at capacity; start refused");
                    return Err(GatewayError::AtCapacity {
                        retry_after: RETRY_CAPACITY,
                    });
                }
            }
        }
        let (tx, rx) = watch::channel(None);
        if let Some(Effect::RunStart) = slot.apply(&self.metrics, Event::Start(rx)) {
            self.metrics.starts.inc();
            self.spawn(self.clone().run_start(slot.clone(), tx, evicted));
        }
        Ok(())
    }

    /// A ready gateway the proxy could not connect to: if its container is no longer running
    /// (killed moments ago, its die event still on the way), it is handled as a crash now.
    pub async fn check_gone(self: &Arc<Self>, slug: &str) -> bool {
        let Some(slot) = self.registry.get(slug) else {
            return false;
        };
        let ready = slot.with_phase(|p| match p {
            Phase::Ready { running, .. } => Ok(running.container_id.clone()),
            // Already being replaced (its event came meanwhile): a fresh one is on its way.
            Phase::Stopping { .. } | Phase::Starting { .. } => Err(true),
            _ => Err(false),
        });
        let id = match ready {
            Ok(id) => id,
            Err(replacing) => return replacing,
        };
        let gone = match self.rt.inspect_container(&id).await {
            Ok(Some(info)) => info.state != ContainerState::Running,
            Ok(None) => true,
            // The engine cannot tell; the events will.
            Err(_) => false,
        };
        if gone {
            tracing::warn!(
                user = slug,
                "gateway container gone before its event; replacing it"
            );
            self.begin_stop(&slot, StopReason::Crashed, false);
        }
        gone
    }

    /// Moves a ready slot to stopping and spawns the stop; `None` when the slot's table
    /// refuses (not ready, or an idle stop or eviction finds it busy). `restart` starts a
    /// fresh one afterwards.
    pub fn begin_stop(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        reason: StopReason,
        restart: bool,
    ) -> Option<watch::Receiver<bool>> {
        let (tx, rx) = watch::channel(false);
        let event = Event::Stop {
            reason,
            done: rx.clone(),
        };
        let Some(Effect::RunStop(running)) = slot.apply(&self.metrics, event) else {
            return None;
        };
        self.spawn(
            self.clone()
                .run_stop(slot.clone(), running, reason, tx, restart),
        );
        Some(rx)
    }

    /// The API's view of one slot.
    pub async fn status_of(&self, slot: &Slot) -> GatewayStatus {
        let (state, reason, running) = slot.with_phase(|p| {
            let reason = match p {
                Phase::Failed { error, .. } => Some(error.to_string()),
                _ => None,
            };
            let running = p.running().cloned();
            (p.name(), reason, running)
        });
        let memory = match &running {
            Some(r) if state == "ready" => {
                tokio::time::timeout(QUICK_PING, self.rt.memory_usage(&r.container_id))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
            }
            _ => None,
        };
        let leases = slot.leases();
        let servers = match &running {
            Some(r) => tokio::time::timeout(
                QUICK_PING,
                super::servers::server_containers(self.rt.as_ref(), &r.network),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.name)
            .collect(),
            None => Vec::new(),
        };
        GatewayStatus {
            user: slot.slug.clone(),
            state: state.to_string(),
            reason,
            container: running.as_ref().map(|r| r.container_name.clone()),
            catalog_hash: running.as_ref().map(|r| r.catalog_hash.clone()),
            uptime_seconds: running
                .as_ref()
                .map(|r| r.started_at.elapsed().map_or(0, |d| d.as_secs())),
            idle_seconds: running.as_ref().map(|_| {
                if leases > 0 {
                    0
                } else {
                    now_ms().saturating_sub(slot.last_active_ms()) / 1000
                }
            }),
            memory_bytes: memory,
            open_streams: leases,
            unavailable_servers: running
                .as_ref()
                .map(|r| r.unavailable.clone())
                .unwrap_or_default(),
            server_containers: servers,
        }
    }
}

#[async_trait]
impl GatewayResolver for DockerGateways {
    async fn ensure(&self, principal: &Principal) -> Result<Upstream, GatewayError> {
        let (running, lease) = self.inner.ensure(&principal.slug, &principal.teams).await?;
        Ok(Upstream {
            base: running.base.clone(),
            authorization: running.authorization.clone(),
            lease: Some(Box::new(lease)),
            retry: Retry::IfGone(self.inner.clone()),
        })
    }

    async fn ready(&self) -> bool {
        self.inner.is_reachable()
    }
}

impl crate::replicas::Activity for Inner {
    fn activity(&self, slug: &str) -> Option<(u64, u64)> {
        let slot = self.registry.get(slug)?;
        slot.with_phase(|p| p.running().is_some())
            .then(|| (slot.leases(), slot.last_active_ms()))
    }
}

#[async_trait]
impl GoneCheck for Inner {
    async fn gone(self: Arc<Self>, principal: &Principal) -> bool {
        self.check_gone(&principal.slug).await
    }
}

#[async_trait]
impl GatewayControl for DockerGateways {
    async fn start(&self, principal: &Principal) -> Result<GatewayStatus, GatewayError> {
        let (_, lease) = self.inner.ensure(&principal.slug, &principal.teams).await?;
        drop(lease);
        let slot = self.inner.registry.slot(&principal.slug);
        Ok(self.inner.status_of(&slot).await)
    }

    async fn status(&self, slug: &str) -> Result<GatewayStatus, GatewayError> {
        Ok(match self.inner.registry.get(slug) {
            Some(slot) => self.inner.status_of(&slot).await,
            None => GatewayStatus {
                user: slug.to_string(),
                state: "stopped".into(),
                reason: None,
                container: None,
                catalog_hash: None,
                uptime_seconds: None,
                idle_seconds: None,
                memory_bytes: None,
                open_streams: 0,
                unavailable_servers: Vec::new(),
                server_containers: Vec::new(),
            },
        })
    }

    async fn stop(&self, slug: &str) -> Result<bool, GatewayError> {
        let Some(slot) = self.inner.registry.get(slug) else {
            return Ok(false);
        };
        // A start under way finishes first, then is stopped.
        let starting = slot.with_phase(|p| match p {
            Phase::Starting { done, .. } => Some(done.clone()),
            _ => None,
        });
        if let Some(mut rx) = starting {
            let _ = rx.wait_for(Option::is_some).await;
        }
        match self.inner.begin_stop(&slot, StopReason::Requested, false) {
            Some(mut done) => {
                let _ = done.wait_for(|d| *d).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn logs(&self, slug: &str, tail: usize) -> Result<Option<String>, GatewayError> {
        let name = self.inner.naming.object_name(slug);
        match self.inner.rt.logs(&name, tail).await {
            Ok(text) => Ok(Some(
                super::redact::redact_user(&self.inner.secrets, slug, &text).await,
            )),
            Err(e) if e.kind == crate::runtime::RuntimeErrorKind::NotFound => Ok(None),
            Err(e) => {
                tracing::warn!(user = slug, error = %e, "reading gateway logs failed");
                Err(unavailable("the gateway logs could not be read"))
            }
        }
    }

    async fn pull_images(&self, images: &[String]) -> Result<Vec<ImagePull>, GatewayError> {
        let rt = &self.inner.rt;
        let pulls = images.iter().map(|image| async move {
            let (outcome, reason) = match rt.image(image).await {
                Ok(Some(_)) => (PullOutcome::Present, None),
                _ => match rt.pull(image).await {
                    Ok(()) => (PullOutcome::Pulled, None),
                    Err(e) => {
                        tracing::warn!(%image, error = %e, "pre-pull failed");
                        (PullOutcome::Failed, Some(pull_failure_reason(&e)))
                    }
                },
            };
            ImagePull {
                image: image.clone(),
                outcome,
                reason,
            }
        });
        Ok(futures_util::future::join_all(pulls).await)
    }

    async fn list(&self) -> Result<Vec<GatewayStatus>, GatewayError> {
        let slots: Vec<_> = self
            .inner
            .registry
            .all()
            .into_iter()
            .filter(|s| !s.with_phase(|p| matches!(p, Phase::Stopped)))
            .collect();
        // Each status may ask the engine twice (one-shot stats, server containers): a few at a
        // time, so listing hundreds of gateways does not open hundreds of engine requests.
        let permits = Semaphore::new(LIST_CONCURRENCY);
        let mut out = futures_util::future::join_all(slots.iter().map(|s| async {
            let _permit = permits.acquire().await;
            self.inner.status_of(s).await
        }))
        .await;
        out.sort_by(|a, b| a.user.cmp(&b.user));
        Ok(out)
    }
}

/// Why a pull failed, for the admin who asked for it: our words for the engine being away or
/// slow, else the engine's own (one line, bounded), which names the registry's refusal
/// ("repository does not exist or may require 'docker login'", "manifest unknown", DNS).
fn pull_failure_reason(e: &crate::runtime::RuntimeError) -> String {
    use crate::runtime::RuntimeErrorKind as K;
    match e.kind {
        K::Unreachable => "the container engine could not be reached".into(),
        K::Timeout => "the pull did not finish within gateways.docker.pull_timeout".into(),
        _ => {
            let one_line: String = e
                .message
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(300)
                .collect();
            format!("the engine could not pull it: {one_line}")
        }
    }
}
