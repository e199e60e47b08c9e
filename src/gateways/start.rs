//! One start, run as its own task so a client that gives up does not cancel it for the others
//! waiting on it: (catalog and secrets ∥ image and init volume ∥ network) → container → start →
//! files → address → health. Bounded by `spawn_timeout`; on failure everything made is removed before
//! the slot is marked failed, so the next start never races a clean-up.

use super::failure::StartFailure;
use super::files::{random_token, FilePlan, Prepared};
use super::lifecycle::Inner;
use super::metrics::StartOutcome;
use super::slot::{Event, Running, Slot, StartResult};
use super::spec::{gateway_spec, socket_group, SpecInput};
use super::subnets::Subnet;
use super::timing::{RETRY_UNAVAILABLE, STOP_GRACE};
use crate::catalog::ServerType;
use crate::config::{GatewayEngine, Reach};
use crate::runtime::{ImageInfo, RuntimeError, RuntimeErrorKind};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
                slot.apply(&self.metrics, Event::Started(Arc::new(running)));
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
                self.remover
                    .leftovers(&slot.slug, &name, made.joined.as_deref(), made.subnet)
                    .await;
                slot.apply(&self.metrics, Event::StartFailed(error));
            }
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
            let r = self.networks.fresh(&slot.slug, name).await;
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
        // Recorded before any `?`: the clean-up releases it.
        made.subnet = network.as_ref().ok().copied();
        let (mut prepared, (image, derived), _) = (prepared?, image?, network?);
        step("prepare, image, network");
        // Only a gateway with a Docker API runs server images; without one (the test gateway,
        // `--static` servers) their presence on this engine says nothing.
        let unavailable = if self.cfg.docker.gateway_engine() == GatewayEngine::None {
            Vec::new()
        } else {
            super::availability::unavailable_servers(
                self.rt.as_ref(),
                &self.pulls,
                &self.cfg.docker.args,
                &prepared.images,
                cancel,
            )
            .await
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
                let scope =
                    crate::dockerapi::Scope::new(&slot.slug, &self.naming.instance, name, images);
                apis.open(scope).map_err(|e| {
                    RuntimeError::new(
                        "gateway_api",
                        RuntimeErrorKind::Api,
                        format!("serving the gateway's Docker API: {e}"),
                    )
                })?;
                Some(apis.mount_for(&slot.slug))
            }
            None => None,
        };
        let spec = gateway_spec(&SpecInput {
            docker: d,
            naming: &self.naming,
            slug: &slot.slug,
            image,
            derived,
            prepared,
            plan,
            token: &token,
            memory_bytes: self.memory_bytes,
            wait: self.cfg.spawn_timeout.0,
            socket_group: socket_group(d),
            policed_api,
        })
        .map_err(|e| RuntimeError::new("create_container", RuntimeErrorKind::Api, e.to_string()))?;
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
