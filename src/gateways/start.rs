//! One start, run as its own task so a client that gives up does not cancel it for the others
//! waiting on it: (catalog and secrets ∥ image and init volume ∥ network) → container → start →
//! files → address → health. Bounded by `spawn_timeout`; on failure everything made is removed before
//! the slot is marked failed, so the next start never races a clean-up.

use super::lifecycle::{Inner, RETRY_UNAVAILABLE, STOP_GRACE};
use super::metrics::StartOutcome;
use super::names::{LABEL_CATALOG_HASH, LABEL_USER, TOKEN_ENV};
use super::probe::probe_interval;
use super::slot::{Phase, Running, Slot, StartResult};
use super::subnets::Subnet;
use super::GatewayError;
use crate::catalog::ServerType;
use crate::config::{DockerConfig, EngineHost, GatewayEngine, Reach};
use crate::runtime::{
    ContainerSpec, ContainerState, ImageInfo, Limits, NetworkSpec, RuntimeError, RuntimeErrorKind,
};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::deliver::{deliver, DeliverError};
use super::files::{is_root, random_token, FilePlan, GatewayFile, Prepared};
use super::init;

/// How often a starting container's state is checked while its health probe fails.
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Pause before another delivery attempt while the init is not listening yet (it binds within
/// a millisecond or two of the start call's return).
const DELIVER_RETRY: Duration = Duration::from_millis(2);
/// Attempts at a free subnet when another engine user takes ours first.
const SUBNET_ATTEMPTS: usize = 8;

/// Why a start failed: the client's message, and what the operator log gets.
#[derive(Debug)]
pub(super) struct StartFailure {
    pub outcome: StartOutcome,
    pub message: String,
    pub detail: String,
}

impl StartFailure {
    fn engine(e: RuntimeError) -> Self {
        let message = if e.is_unreachable() {
            "the gateway runtime (Docker) is not reachable; try again shortly".to_string()
        } else {
            "the gateway could not be started; try again shortly".to_string()
        };
        Self {
            outcome: StartOutcome::Engine,
            message,
            detail: e.to_string(),
        }
    }
}

impl StartFailure {
    fn to_error(&self) -> GatewayError {
        GatewayError::Unavailable {
            message: self.message.clone(),
            retry_after: RETRY_UNAVAILABLE,
        }
    }

    fn cancelled() -> Self {
        Self {
            outcome: StartOutcome::Timeout,
            message: "the gateway start was cut off".into(),
            detail: "spawn_timeout passed".into(),
        }
    }
}

impl From<RuntimeError> for StartFailure {
    fn from(e: RuntimeError) -> Self {
        Self::engine(e)
    }
}

/// What a start made so far, for the clean-up after a failure.
#[derive(Default)]
struct Made {
    subnet: Option<Subnet>,
    joined: Option<String>,
}

impl Inner {
    /// The start task: runs the steps, publishes the outcome, cleans up after a failure.
    pub(super) async fn run_start(
        self: Arc<Self>,
        slot: Arc<Slot>,
        done: watch::Sender<StartResult>,
        evicted: Option<watch::Receiver<bool>>,
    ) {
        let began = Instant::now();
        let deadline = tokio::time::Instant::now() + self.cfg.spawn_timeout.0;
        let name = self.naming.object_name(&slot.slug);
        let mut made = Made::default();
        let cancel = CancellationToken::new();
        let result = {
            let steps = self.start_steps(&slot, &name, evicted, &mut made, &cancel);
            tokio::pin!(steps);
            tokio::select! {
                r = &mut steps => r,
                _ = tokio::time::sleep_until(deadline) => {
                    let f = StartFailure {
                        outcome: StartOutcome::Timeout,
                        message: format!(
                            "your gateway is starting for longer than usual (it did not become ready within {} s); retry in {} s, and if it keeps failing ask an admin to read its log",
                            self.cfg.spawn_timeout.0.as_secs(),
                            RETRY_UNAVAILABLE.as_secs()
                        ),
                        detail: "spawn_timeout passed".into(),
                    };
                    // Answer the waiters now, then let the engine call under way finish (the
                    // steps stop at their next check), so the clean-up comes after it.
                    let _ = done.send(Some(Err(f.to_error())));
                    cancel.cancel();
                    let limit = self.cfg.docker.api_timeout.0 + STOP_GRACE;
                    let _ = tokio::time::timeout(limit, &mut steps).await;
                    Err(f)
                }
            }
        };
        let secs = began.elapsed().as_secs_f64();
        match result {
            Ok(running) => {
                tracing::info!(
                    user = %slot.slug, container = %running.container_name,
                    address = %running.base, ms = (secs * 1000.0) as u64, "gateway ready"
                );
                self.metrics.start_finished(StartOutcome::Ready, secs);
                slot.transition_if(
                    &self.metrics,
                    |p| matches!(p, Phase::Starting { .. }),
                    || Phase::Ready(Arc::new(running)),
                );
                let _ = done.send(Some(Ok(())));
            }
            Err(f) => {
                tracing::warn!(
                    user = %slot.slug, outcome = ?f.outcome, error = %f.detail,
                    ms = (secs * 1000.0) as u64, "gateway start failed"
                );
                self.metrics.start_finished(f.outcome, secs);
                let error = f.to_error();
                // Waiters get their answer now; the slot stays `starting` until clean.
                let _ = done.send(Some(Err(error.clone())));
                self.remove_leftovers(&name, made.joined.as_deref()).await;
                self.remove_user_servers(&slot.slug).await;
                if let Some(s) = made.subnet {
                    self.subnets.release(s);
                }
                slot.transition_if(
                    &self.metrics,
                    |p| matches!(p, Phase::Starting { .. }),
                    || Phase::Failed {
                        error,
                        at: Instant::now(),
                    },
                );
            }
        }
    }

    /// Removes a user's container and network by name (each call with its own timeout).
    pub(super) async fn remove_leftovers(&self, name: &str, joined: Option<&str>) {
        if let Err(e) = self.rt.remove_container(name, Duration::ZERO).await {
            tracing::warn!(container = name, error = %e, "removing gateway container failed");
        }
        if let Some(own) = joined {
            let _ = self.rt.disconnect_network(name, own).await;
        }
        if let Err(e) = self.remove_network_with_servers(name).await {
            tracing::warn!(network = name, error = %e, "removing gateway network failed");
        }
    }

    async fn start_steps(
        &self,
        slot: &Slot,
        name: &str,
        evicted: Option<watch::Receiver<bool>>,
        made: &mut Made,
        cancel: &CancellationToken,
    ) -> Result<Running, StartFailure> {
        if let Some(mut rx) = evicted {
            tokio::select! {
                _ = rx.wait_for(|d| *d) => {}
                _ = cancel.cancelled() => return Err(StartFailure::cancelled()),
            }
        }
        let _permit = tokio::select! {
            p = self.starts.acquire() => p.map_err(|_| StartFailure::engine(closed()))?,
            _ = cancel.cancelled() => return Err(StartFailure::cancelled()),
        };
        let t = Instant::now();
        let step = |what: &str| step_done(&slot.slug, t, what);
        let teams = slot.teams.lock().clone();
        // Independent: the catalog and secrets, the image, and the network.
        let network = async {
            let r = self.fresh_network(slot, name, made).await;
            self.note_engine(&r.as_ref().map(drop));
            r.map_err(StartFailure::from)
        };
        // All three run to the end even when one fails: a network create cut off mid-call
        // could still complete on the engine after the clean-up.
        // The derived image (the gateway image plus the init) needs the gateway image.
        let image = async {
            let image = self.image_ready(cancel).await?;
            let derived = self.init_image.ready(self.rt.as_ref(), &image).await?;
            Ok::<_, StartFailure>((image, derived))
        };
        let (prepared, image, network) =
            tokio::join!(self.prepare(&slot.slug, teams), image, network);
        let (mut prepared, (image, derived), ()) = (prepared?, image?, network?);
        step("prepare, image, network");
        // Only a gateway with a Docker API runs server images; without one (the test gateway,
        // `--static` servers) their presence on this engine says nothing.
        let unavailable = if self.cfg.docker.gateway_engine() == GatewayEngine::None {
            Vec::new()
        } else {
            self.unavailable_servers(&prepared.images, cancel).await
        };
        prepared
            .servers
            .retain(|s| !unavailable.iter().any(|u| &u.server == s));
        step("server images");
        let d = &self.cfg.docker;
        let user = d.user.as_deref().or(image.user.as_deref());
        let plan = FilePlan::for_gateway(d, user);
        let result = self
            .create_and_start(slot, &prepared, (&image, &derived), &plan, made, cancel)
            .await;
        self.note_engine(&result.as_ref().map(drop));
        let (id, base, token) = result?;
        step("create_and_start");
        let files = plan.files(&prepared);
        self.deliver_files(name, base.as_ref(), &token, &files, cancel)
            .await?;
        step("files");
        let base = self.wait_healthy(name, base, &token, cancel).await?;
        step("healthy");
        Ok(Running {
            container_id: id,
            container_name: name.to_string(),
            network: name.to_string(),
            subnet: made.subnet,
            base,
            authorization: super::bearer(&token),
            catalog_hash: prepared.hash,
            started_at: SystemTime::now(),
            joined: made.joined.clone(),
            stale: AtomicBool::new(false),
            unavailable,
        })
    }

    /// The images a user's catalog names (what their gateway's policed API lets it run).
    pub(super) async fn catalog_images(
        &self,
        slug: &str,
        teams: Vec<String>,
    ) -> Option<crate::dockerapi::images::AllowedImages> {
        let prepared = self.prepare(slug, teams).await.ok()?;
        Some(crate::dockerapi::images::AllowedImages::new(
            prepared.images.iter().map(|(_, i)| i.as_str()),
        ))
    }

    /// Merges the user's catalog (writing `merged.yaml`) and renders their secrets file.
    async fn prepare(&self, slug: &str, teams: Vec<String>) -> Result<Prepared, StartFailure> {
        let (store, cache, secrets) = (
            self.catalogs.clone(),
            self.cache.clone(),
            self.secrets.clone(),
        );
        let slug = slug.to_string();
        let fail = |detail: String| StartFailure {
            outcome: StartOutcome::Prepare,
            message: "the gateway's catalog or secrets could not be prepared".into(),
            detail,
        };
        // The user's own layers breaking the catalog policy is theirs to fix, so the
        // refusal (fields, never file paths) is the message they get.
        let refused = |e: crate::catalog::CatalogError| StartFailure {
            outcome: StartOutcome::Prepare,
            message: format!("the gateway cannot start: {e}"),
            detail: e.to_string(),
        };
        tokio::task::spawn_blocking(move || {
            let regen = crate::catalog::regenerate_user(&store, &cache, &slug, &teams).map_err(
                |e| match e {
                    e @ crate::catalog::CatalogError::Policy(_) => refused(e),
                    e => fail(e.to_string()),
                },
            )?;
            let catalog_yaml = regen.catalog.to_yaml().map_err(|e| fail(e.to_string()))?;
            let servers = regen.catalog.server_names().map(String::from).collect();
            let images = regen
                .catalog
                .registry
                .iter()
                .filter(|(_, s)| matches!(s.server_type(), ServerType::Server | ServerType::Poci))
                .filter_map(|(n, s)| Some((n.clone(), s.image()?.to_string())))
                .collect();
            let secrets = secrets
                .render_gateway_secrets(&slug)
                .map_err(|e| fail(e.to_string()))?;
            Ok(Prepared {
                hash: regen.hash.as_str().to_string(),
                catalog_yaml,
                servers,
                images,
                secrets,
            })
        })
        .await
        .map_err(|e| fail(e.to_string()))?
    }

    /// The gateway image, pulled first when missing.
    async fn image_ready(&self, cancel: &CancellationToken) -> Result<ImageInfo, StartFailure> {
        let image = self.cfg.docker.image.clone();
        if let Some(info) = self.rt.image(&image).await? {
            return Ok(info);
        }
        let failed = |detail: String| {
            StartFailure {
            outcome: StartOutcome::Image,
            message: format!(
                "the gateway image `{image}` is missing and could not be pulled: ask an admin to pull it (POST /api/v1/admin/images/pull) or fix gateways.docker.image"
            ),
            detail,
        }
        };
        match self.pull_shared(&image, cancel).await {
            Some(Ok(())) => self
                .rt
                .image(&image)
                .await?
                .ok_or_else(|| failed("image missing after pull".into())),
            Some(Err(detail)) => Err(failed(detail)),
            None if cancel.is_cancelled() => Err(StartFailure::cancelled()),
            None => Err(failed("pull abandoned".into())),
        }
    }

    /// Pulls `image`; concurrent starts share one pull, and a pull outlives a start that gives
    /// up, so the next request finds the image. `None` when cancelled or abandoned.
    pub(super) async fn pull_shared(
        &self,
        image: &str,
        cancel: &CancellationToken,
    ) -> Option<Result<(), String>> {
        let mut rx = {
            let mut pulls = self.pulls.lock();
            pulls
                .entry(image.to_string())
                .or_insert_with(|| {
                    let (tx, rx) = watch::channel(None);
                    let rt = self.rt.clone();
                    let img = image.to_string();
                    crate::server::workers::spawn_background(async move {
                        let r = rt.pull(&img).await.map_err(|e| e.to_string());
                        let _ = tx.send(Some(r));
                    });
                    rx
                })
                .clone()
        };
        let outcome = tokio::select! {
            o = rx.wait_for(Option::is_some) => o.map(|v| v.clone()),
            _ = cancel.cancelled() => return None,
        };
        self.pulls.lock().remove(image);
        outcome.ok().flatten()
    }

    /// Container, start, files, address: returns id, address and token. What needs cleaning
    /// after an error is found by name, plus what `made` records.
    ///
    /// The files go in after start, into tmpfs volumes (Docker cannot fill those earlier), and
    /// the init holds the gateway back until the marker written after them is there.
    async fn create_and_start(
        &self,
        slot: &Slot,
        prepared: &Prepared,
        (image, derived): (&ImageInfo, &str),
        plan: &FilePlan,
        made: &mut Made,
        cancel: &CancellationToken,
    ) -> Result<(String, Option<http::uri::Authority>, String), RuntimeError> {
        let d = &self.cfg.docker;
        let name = &self.naming.object_name(&slot.slug);
        let token = random_token();
        let mut labels = self.naming.labels(&slot.slug);
        labels.insert(LABEL_CATALOG_HASH.into(), prepared.hash.clone());
        let argv = self.gateway_argv(prepared, image, plan)?;
        let user = d.user.as_deref().or(image.user.as_deref());
        let mut env = vec![
            format!("HOME={}", plan.home()),
            format!("DOCKER_CONFIG={}", plan.docker_config_dir()),
        ];
        env.extend(d.extra_env.iter().map(|(k, v)| format!("{k}={v}")));
        // Last, so extra_env cannot replace it.
        env.push(format!("{TOKEN_ENV}={token}"));
        if !plan.owner_known() {
            tracing::warn!(
                user = ?d.user.as_deref().or(image.user.as_deref()),
                "gateway user is not numeric: the secrets file is made readable by every user in the container; set gateways.docker.user to uid:gid"
            );
        }
        let (entrypoint, args) = init::wrap(d.port, self.cfg.spawn_timeout.0, &argv);
        let (mut binds, group_add) = gateway_binds(d, user);
        if let Some(apis) = &self.apis {
            // Served before the gateway starts: docker/mcp-gateway asks for its network first.
            let images = crate::dockerapi::images::AllowedImages::new(
                prepared.images.iter().map(|(_, i)| i.as_str()),
            );
            let scope =
                crate::dockerapi::Scope::new(&slot.slug, &self.naming.instance, name, images);
            apis.open(scope).map_err(|e| {
                RuntimeError::new(
                    "gateway_api",
                    RuntimeErrorKind::Api,
                    format!("serving the gateway's Docker API: {e}"),
                )
            })?;
            let (bind, docker_host) = apis.mount_for(&slot.slug);
            binds.push(bind);
            // Last but the token, so extra_env cannot point it elsewhere.
            let token_env = env.pop();
            env.push(docker_host);
            env.extend(token_env);
        }
        let spec = ContainerSpec {
            name: name.to_string(),
            // By id: see `init.rs` for why never by tag.
            image: derived.to_string(),
            entrypoint: Some(entrypoint),
            args,
            env,
            labels,
            user: d.user.clone(),
            network: name.to_string(),
            port: d.port,
            publish_loopback: d.reach == Reach::Loopback,
            limits: Limits {
                memory_bytes: Some(self.memory_bytes),
                cpus: Some(d.cpus),
                pids: Some(d.pids),
            },
            read_only_root: d.read_only,
            tmpfs: vec!["/tmp".into()],
            memory_dirs: plan.memory_dirs(),
            volumes: Vec::new(),
            binds,
            group_add,
            harden: true,
        };
        let t = Instant::now();
        let lap = |what: &str| step_done(&slot.slug, t, what);
        let id = match self.rt.create_container(&spec).await {
            Err(err) if err.kind == RuntimeErrorKind::Conflict => {
                // Made between our clean-up and create (a racing replica): take the name over.
                self.rt.remove_container(name, Duration::ZERO).await?;
                self.rt.create_container(&spec).await?
            }
            other => other?,
        };
        lap("create");
        if d.reach == Reach::Bridge {
            if let Some(own) = self.rt.own_container().await {
                self.rt.connect_network(name, &own).await?;
                made.joined = Some(own);
            }
        }
        if cancel.is_cancelled() {
            return Err(RuntimeError::new(
                "start_container",
                RuntimeErrorKind::Api,
                "not started: spawn_timeout passed",
            ));
        }
        self.rt.start_container(&id).await?;
        lap("start");
        let info = self.rt.inspect_container(&id).await?;
        lap("inspect");
        let addr = info.as_ref().and_then(|info| match d.reach {
            Reach::Loopback => info.loopback_port.map(|p| format!("127.0.0.1:{p}")),
            Reach::Bridge => info
                .addresses
                .get(name)
                .map(|ip| format!("{ip}:{}", d.port)),
        });
        // Without an address the container is gone already; `wait_healthy` reports why.
        let base = addr.and_then(|a| a.parse::<http::uri::Authority>().ok());
        Ok((id, base, token))
    }

    /// The gateway's own command line, which the init runs once the files are in: the
    /// configured command (else the image's entrypoint), then the templated args (else the
    /// image's command), as Docker itself would combine them.
    fn gateway_argv(
        &self,
        prepared: &Prepared,
        image: &ImageInfo,
        plan: &FilePlan,
    ) -> Result<Vec<String>, RuntimeError> {
        let d = &self.cfg.docker;
        let args: Vec<String> = d
            .args
            .iter()
            .map(|a| {
                a.replace("{port}", &d.port.to_string())
                    .replace("{catalog}", plan.catalog_path())
                    .replace("{servers}", &prepared.servers.join(","))
                    .replace("{secrets}", plan.secrets_path())
            })
            .collect();
        let mut argv = if d.command.is_empty() {
            image.entrypoint.clone()
        } else {
            d.command.clone()
        };
        argv.extend(if d.args.is_empty() {
            image.cmd.clone()
        } else {
            args
        });
        if argv.is_empty() {
            return Err(RuntimeError::new(
                "create_container",
                RuntimeErrorKind::Api,
                format!(
                    "image {} has no entrypoint or command and gateways.docker.command is empty",
                    d.image
                ),
            ));
        }
        Ok(argv)
    }

    /// Removes what a crash or a killed front door left under this name (it would make
    /// create fail), then makes the user's network.
    async fn fresh_network(
        &self,
        slot: &Slot,
        name: &str,
        made: &mut Made,
    ) -> Result<(), RuntimeError> {
        self.rt.remove_container(name, Duration::ZERO).await?;
        self.remove_network_with_servers(name).await?;
        let t = Instant::now();
        self.create_network(slot, name, made).await?;
        tracing::debug!(user = %slot.slug, ms = t.elapsed().as_millis() as u64, "network created");
        Ok(())
    }

    async fn create_network(
        &self,
        slot: &Slot,
        name: &str,
        made: &mut Made,
    ) -> Result<(), RuntimeError> {
        for _ in 0..SUBNET_ATTEMPTS {
            let in_use: Vec<String> = self
                .rt
                .list_networks(&Vec::new())
                .await?
                .into_iter()
                .flat_map(|n| n.subnets)
                .collect();
            let subnet = self.subnets.allocate(&in_use).ok_or_else(|| {
                RuntimeError::new(
                    "create_network",
                    RuntimeErrorKind::SubnetTaken,
                    format!(
                        "gateways.docker.subnet_pool {} has no free /{} left",
                        self.cfg.docker.subnet_pool, self.cfg.docker.subnet_prefix
                    ),
                )
            })?;
            let spec = NetworkSpec {
                name: name.to_string(),
                subnet: subnet.to_string(),
                labels: self.naming.labels(&slot.slug),
                internal: self.cfg.docker.internal_networks,
            };
            match self.rt.create_network(&spec).await {
                Ok(_) => {
                    made.subnet = Some(subnet);
                    return Ok(());
                }
                Err(e) if e.kind == RuntimeErrorKind::SubnetTaken => {
                    // Another engine user took it between list and create; the reservation
                    // stays so we do not try it again.
                    tracing::debug!(%subnet, "subnet taken meanwhile; trying the next");
                }
                Err(e) => {
                    self.subnets.release(subnet);
                    return Err(e);
                }
            }
        }
        Err(RuntimeError::new(
            "create_network",
            RuntimeErrorKind::SubnetTaken,
            "no free subnet after several attempts",
        ))
    }

    /// Probes health at [`probe_interval`] until 2xx and returns the address; a container
    /// that exits (or has no address) fails the start at once instead of at `spawn_timeout`.
    async fn wait_healthy(
        &self,
        name: &str,
        base: Option<http::uri::Authority>,
        token: &str,
        cancel: &CancellationToken,
    ) -> Result<http::uri::Authority, StartFailure> {
        let began = Instant::now();
        let mut last_check = Instant::now();
        loop {
            if cancel.is_cancelled() {
                return Err(StartFailure::cancelled());
            }
            if let Some(b) = &base {
                if self.prober.healthy(b, token).await {
                    return Ok(b.clone());
                }
            }
            if base.is_none() || last_check.elapsed() >= EXIT_CHECK_INTERVAL {
                last_check = Instant::now();
                if let Some(f) = self.exited(name).await? {
                    return Err(f);
                }
            }
            tokio::time::sleep(if base.is_some() {
                probe_interval(began.elapsed())
            } else {
                EXIT_CHECK_INTERVAL
            })
            .await;
        }
    }
}

impl Inner {
    /// Hands the fresh container its catalog and secrets through the init (see `deliver.rs`),
    /// trying again while nothing listens yet; a container that exits meanwhile fails the start.
    async fn deliver_files(
        &self,
        name: &str,
        base: Option<&http::uri::Authority>,
        token: &str,
        files: &[GatewayFile],
        cancel: &CancellationToken,
    ) -> Result<(), StartFailure> {
        let fail = |detail: String| StartFailure {
            outcome: StartOutcome::Exited,
            message: "the gateway's files could not be delivered; try again shortly".into(),
            detail,
        };
        let Some(base) = base else {
            // No address: the container is gone already.
            return Err(self
                .exited(name)
                .await?
                .unwrap_or_else(|| fail("the container has no address".into())));
        };
        let mut last_check = Instant::now();
        loop {
            if cancel.is_cancelled() {
                return Err(StartFailure::cancelled());
            }
            match deliver(base, token, files).await {
                Ok(()) => return Ok(()),
                Err(DeliverError::Failed(detail)) => return Err(fail(detail)),
                Err(DeliverError::NotListening(e)) => {
                    tracing::trace!(container = name, error = %e, "init not listening yet");
                }
            }
            if last_check.elapsed() >= EXIT_CHECK_INTERVAL {
                last_check = Instant::now();
                if let Some(f) = self.exited(name).await? {
                    return Err(f);
                }
            }
            tokio::time::sleep(DELIVER_RETRY).await;
        }
    }

    /// The failure to report when the container is no longer running (with its last log
    /// lines for the operator), `None` while it runs.
    async fn exited(&self, name: &str) -> Result<Option<StartFailure>, StartFailure> {
        let Some(info) = self.rt.inspect_container(name).await? else {
            return Ok(Some(StartFailure {
                outcome: StartOutcome::Exited,
                message: "the gateway vanished while starting".into(),
                detail: "container not found".into(),
            }));
        };
        if info.state == ContainerState::Running {
            return Ok(None);
        }
        let tail = self.rt.logs(name, 20).await.unwrap_or_default();
        // Into the operator's log: masked like the logs API's answer.
        let slug = info.labels.get(LABEL_USER).map_or("", String::as_str);
        let tail = self.redacted(slug, &tail).await;
        Ok(Some(StartFailure {
            outcome: StartOutcome::Exited,
            message: "the gateway exited while starting; an operator can read its log".into(),
            detail: format!(
                "state {:?}, exit code {:?}, oom {}; last log lines:\n{tail}",
                info.state, info.exit_code, info.oom_killed
            ),
        }))
    }
}

/// The configured mounts, plus the engine's socket for `engine_for_gateways: host` (with its
/// group, so a non-root gateway may use it).
fn gateway_binds(d: &DockerConfig, user: Option<&str>) -> (Vec<String>, Vec<String>) {
    let mut binds = d.mounts.clone();
    let mut groups = Vec::new();
    if d.gateway_engine() == GatewayEngine::Host {
        let socket = host_socket(d.host.as_ref());
        binds.push(format!("{socket}:{GATEWAY_SOCKET}"));
        if !is_root(user) {
            use std::os::unix::fs::MetadataExt;
            if let Ok(meta) = std::fs::metadata(&socket) {
                groups.push(meta.gid().to_string());
            }
        }
    }
    (binds, groups)
}

/// Where a gateway's `docker` CLI looks for the engine by default.
const GATEWAY_SOCKET: &str = "/var/run/docker.sock";

/// The engine's socket path on this host: `gateways.docker.host`, else `DOCKER_HOST`, else
/// Docker's default (config validation refused non-unix hosts for this use).
fn host_socket(host: Option<&EngineHost>) -> String {
    match EngineHost::resolve(host) {
        EngineHost::Unix(path) => path.display().to_string(),
        EngineHost::Tcp(addr) => addr,
    }
}

/// Where a start's time goes (`RUST_LOG=mcp_frontdoor::gateways=debug`), in ms `since`.
fn step_done(slug: &str, since: Instant, what: &str) {
    tracing::debug!(
        user = slug,
        step = what,
        ms = since.elapsed().as_millis() as u64,
        "start step done"
    );
}

fn closed() -> RuntimeError {
    RuntimeError::new("start", RuntimeErrorKind::Api, "the start limiter closed")
}
