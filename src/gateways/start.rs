//! The steps of one start, as a type that holds only what they need (the runtime, the
//! network maker, the pull coalescer, the init image, the readiness agent, the catalog and
//! secrets to prepare): (catalog and secrets ∥ image and init image ∥ network) → container
//! ([`super::spec`]) → start → files → address → health ([`super::ready`]). The task that runs
//! them, bounds them by `spawn_timeout` and moves the slot is in [`super::jobs`].

use super::engine::EngineHealth;
use super::failure::StartFailure;
use super::files::{random_token, FilePlan, Prepared};
use super::init::InitImage;
use super::metrics::StartOutcome;
use super::names::Naming;
use super::network::{Leftovers, Networks};
use super::prepare::Preparer;
use super::pulls::Pulls;
use super::ready::Readiness;
use super::slot::Running;
use super::spec::{gateway_spec, socket_group, SpecInput};
use super::subnets::Subnet;
use crate::config::{DockerConfig, GatewayEngine, Reach};
use crate::dockerapi::GatewayApis;
use crate::runtime::{ImageInfo, Runtime, RuntimeError, RuntimeErrorKind};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What starting a gateway needs.
pub(super) struct Starter {
    pub docker: DockerConfig,
    /// How long the init waits for its files.
    pub spawn_timeout: Duration,
    pub memory_bytes: u64,
    pub rt: Arc<dyn Runtime>,
    pub naming: Naming,
    pub preparer: Preparer,
    /// `max_concurrent_starts`.
    pub limit: Semaphore,
    pub networks: Networks,
    pub pulls: Pulls,
    /// The gateway image with the init added (see `init.rs`).
    pub init_image: InitImage,
    /// The policed Docker API endpoints, when gateways get one (`engine_for_gateways: policed`).
    pub apis: Option<GatewayApis>,
    pub readiness: Readiness,
    pub engine: Arc<EngineHealth>,
}

/// What a start made so far, for the clean-up after a failure.
#[derive(Default)]
pub(super) struct Made {
    pub subnet: Option<Subnet>,
    pub joined: Option<String>,
}

impl Starter {
    /// Runs the steps for `slug` (of `teams`) once `evicted` (the gateway stopped to make
    /// room) is gone; stops at the next check once `cancel` fires. `made` records what needs
    /// cleaning up after a failure.
    pub async fn start(
        &self,
        slug: &str,
        teams: Vec<String>,
        evicted: Option<watch::Receiver<bool>>,
        made: &mut Made,
        leftovers: &Leftovers,
        cancel: &CancellationToken,
    ) -> Result<Running, StartFailure> {
        let name = &self.naming.object_name(slug);
        if let Some(mut rx) = evicted {
            tokio::select! {
                _ = rx.wait_for(|d| *d) => {}
                _ = cancel.cancelled() => return Err(StartFailure::cancelled()),
            }
        }
        let _permit = tokio::select! {
            p = self.limit.acquire() => p.map_err(|_| StartFailure::engine(closed()))?,
            _ = cancel.cancelled() => return Err(StartFailure::cancelled()),
        };
        let t = Instant::now();
        let step = |what: &str| step_done(slug, t, what);
        // Independent: the catalog and secrets, the image, and the network.
        // Another replica may start this user's gateway until then (`claim.rs`).
        let until = super::slot::now_ms() + self.spawn_timeout.as_millis() as u64;
        let network = async {
            let r = self.networks.fresh(slug, name, leftovers, until).await;
            self.engine.note(&r.as_ref().map(drop));
            r.map_err(|e| match e.kind {
                RuntimeErrorKind::Conflict => StartFailure::lost_race(),
                _ => StartFailure::from(e),
            })
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
            tokio::join!(self.preparer.prepare(slug, teams), image, network);
        // Recorded before any `?`: the clean-up releases it.
        made.subnet = network.as_ref().ok().copied();
        let (mut prepared, (image, derived), _) = (prepared?, image?, network?);
        step("prepare, image, network");
        // Only a gateway with a Docker API runs server images; without one (the test gateway,
        // `--static` servers) their presence on this engine says nothing.
        let unavailable = if self.docker.gateway_engine() == GatewayEngine::None {
            Vec::new()
        } else {
            super::availability::unavailable_servers(
                self.rt.as_ref(),
                &self.pulls,
                &self.docker.args,
                &prepared.images,
                cancel,
            )
            .await
        };
        prepared
            .servers
            .retain(|s| !unavailable.iter().any(|u| &u.server == s));
        step("server images");
        let d = &self.docker;
        let user = d.user.as_deref().or(image.user.as_deref());
        let plan = FilePlan::for_gateway(d, user);
        let result = self
            .create_and_start(slug, &prepared, (&image, &derived), &plan, made, cancel)
            .await;
        self.engine.note(&result.as_ref().map(drop));
        let (id, base, token) = result?;
        step("create_and_start");
        let files = plan.files(&prepared);
        self.readiness
            .deliver_files(name, base.as_ref(), &token, &files, cancel)
            .await?;
        step("files");
        let base = self
            .readiness
            .wait_healthy(name, base, &token, cancel)
            .await?;
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
            unavailable,
        })
    }

    /// The gateway image, pulled first when missing.
    async fn image_ready(&self, cancel: &CancellationToken) -> Result<ImageInfo, StartFailure> {
        let image = self.docker.image.clone();
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
        match self.pulls.pull(&image, cancel).await {
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

    /// Container, start, address: returns id, address and token. What needs cleaning after
    /// an error is found by name, plus what `made` records.
    ///
    /// The files go in after start, into tmpfs mounts (Docker cannot fill those earlier), and
    /// the init holds the gateway back until they are there.
    async fn create_and_start(
        &self,
        slug: &str,
        prepared: &Prepared,
        (image, derived): (&ImageInfo, &str),
        plan: &FilePlan,
        made: &mut Made,
        cancel: &CancellationToken,
    ) -> Result<(String, Option<http::uri::Authority>, String), RuntimeError> {
        let d = &self.docker;
        let name = &self.naming.object_name(slug);
        let token = random_token();
        if !plan.owner_known() {
            tracing::warn!(
                user = ?d.user.as_deref().or(image.user.as_deref()),
                "gateway user is not numeric: the secrets file is made readable by every user in the container; set gateways.docker.user to uid:gid"
            );
        }
        let policed_api = match &self.apis {
            Some(apis) => {
                // Served before the gateway starts: docker/mcp-gateway asks for its network
                // first.
                let images = crate::dockerapi::images::AllowedImages::new(
                    prepared.images.iter().map(|(_, i)| i.as_str()),
                );
                let scope = crate::dockerapi::Scope::new(slug, &self.naming.instance, name, images);
                apis.open(scope).map_err(|e| {
                    RuntimeError::new(
                        "gateway_api",
                        RuntimeErrorKind::Api,
                        format!("serving the gateway's Docker API: {e}"),
                    )
                })?;
                Some(apis.mount_for(slug))
            }
            None => None,
        };
        let spec = gateway_spec(&SpecInput {
            docker: d,
            naming: &self.naming,
            slug,
            image,
            derived,
            prepared,
            plan,
            token: &token,
            memory_bytes: self.memory_bytes,
            wait: self.spawn_timeout,
            socket_group: socket_group(d),
            policed_api,
        })
        .map_err(|e| RuntimeError::new("create_container", RuntimeErrorKind::Api, e.to_string()))?;
        let t = Instant::now();
        let lap = |what: &str| step_done(slug, t, what);
        let id = match self.rt.create_container(&spec).await {
            Err(err) if err.kind == RuntimeErrorKind::Conflict => {
                // We hold the user's network, the lock between replicas (`claim.rs`), so no
                // other replica is starting this gateway: a leftover (of a front door that
                // died mid-start), taken over.
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
        // Without an address the container is gone already; the readiness step reports why.
        let base = addr.and_then(|a| a.parse::<http::uri::Authority>().ok());
        Ok((id, base, token))
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
