//! The lifecycle's two long transitions, each run as its own task so a client that gives up
//! does not cancel it for the others waiting on it:
//!
//! - a start: the [`super::start::Starter`]'s steps bounded by `spawn_timeout`, then `Started`,
//!   or, after everything made is removed, `StartFailed` (so the next start never races a
//!   clean-up);
//! - a stop: the gateway's objects removed ([`super::remove`]), then `Stopped`. The slot is
//!   `stopping` meanwhile, so a request that arrives waits and then gets a fresh gateway.

use super::claim::Claim;
use super::failure::StartFailure;
use super::lifecycle::Inner;
use super::metrics::StartOutcome;
use super::slot::{Event, Running, Slot, StartResult, StopReason};
use super::start::Made;
use super::timing::{RETRY_UNAVAILABLE, STOP_GRACE};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
        let teams = slot.teams.lock().clone();
        let result = {
            let steps = self.start_or_adopt(&slot.slug, teams, evicted, &mut made, &cancel);
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

    /// The start's steps, unless another replica starts (or runs) this gateway: then it is
    /// adopted (`claim.rs`).
    async fn start_or_adopt(
        self: &Arc<Self>,
        slug: &str,
        teams: Vec<String>,
        mut evicted: Option<watch::Receiver<bool>>,
        made: &mut Made,
        cancel: &CancellationToken,
    ) -> Result<Running, StartFailure> {
        loop {
            let leftovers = match self.claim(slug, cancel).await? {
                Claim::Adopted(running) => {
                    self.metrics.adopted_from_peer.inc();
                    return Ok(running);
                }
                Claim::Free(leftovers) => leftovers,
            };
            let r = self
                .starter
                .start(
                    slug,
                    teams.clone(),
                    evicted.take(),
                    made,
                    &leftovers,
                    cancel,
                )
                .await;
            match r {
                Err(f) if f.is_lost_race() => {
                    tracing::info!(user = slug, "another replica made this gateway's network first; waiting for its gateway");
                }
                other => return other,
            }
        }
    }

    /// The stop task. `restart` starts a fresh gateway afterwards (a stale one replaced).
    pub(super) async fn run_stop(
        self: Arc<Self>,
        slot: Arc<Slot>,
        running: Arc<Running>,
        reason: StopReason,
        done: watch::Sender<bool>,
        restart: bool,
    ) {
        tracing::info!(user = %slot.slug, container = %running.container_name, ?reason, "stopping gateway");
        if let Err(e) = self.remover.gateway(&slot.slug, &running, reason).await {
            self.note_engine(&Err(&e));
        }
        self.metrics.stops.inc();
        let counter = match reason {
            StopReason::Idle(_) => Some(&self.metrics.idle_stops),
            StopReason::Evicted => Some(&self.metrics.evictions),
            StopReason::Crashed => Some(&self.metrics.crashes),
            StopReason::Replaced | StopReason::Requested => None,
        };
        if let Some(c) = counter {
            c.inc();
        }
        slot.apply(&self.metrics, Event::Stopped(running));
        let _ = done.send(true);
        if restart {
            if let Err(e) = self.begin_start(&slot) {
                tracing::warn!(user = %slot.slug, error = %e, "replacement start refused; the next request starts it");
            }
        }
    }
}
