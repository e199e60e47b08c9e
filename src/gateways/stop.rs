//! One stop: the gateway's objects removed ([`super::remove`]), then the slot stopped. The
//! slot is `stopping` meanwhile, so a request that arrives waits and then gets a fresh
//! gateway.

use super::lifecycle::Inner;
use super::slot::{Event, Running, Slot, StopReason};
use std::sync::Arc;
use tokio::sync::watch;

impl Inner {
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
