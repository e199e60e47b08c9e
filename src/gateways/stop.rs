//! One stop: container (SIGTERM, then SIGKILL), the front door's attachment, the network, the
//! subnet. The slot is `stopping` meanwhile, so a request that arrives waits and then gets a
//! fresh gateway.

use super::lifecycle::{Inner, StopReason, STOP_GRACE};
use super::slot::{Phase, Running, Slot};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

impl Inner {
    /// The stop task.
    pub(super) async fn run_stop(
        self: Arc<Self>,
        slot: Arc<Slot>,
        running: Arc<Running>,
        reason: StopReason,
        done: watch::Sender<bool>,
        restart: bool,
    ) {
        let grace = match reason {
            StopReason::Crashed => Duration::ZERO,
            _ => STOP_GRACE,
        };
        tracing::info!(user = %slot.slug, container = %running.container_name, ?reason, "stopping gateway");
        if let Err(e) = self.rt.remove_container(&running.container_id, grace).await {
            self.note_engine(&Err(&e));
            tracing::warn!(user = %slot.slug, error = %e, "removing gateway container failed; it is retried at the next start");
        }
        if let Some(own) = &running.joined {
            let _ = self.rt.disconnect_network(&running.network, own).await;
        }
        self.remove_user_servers(&slot.slug).await;
        if let Err(e) = self.remove_network_with_servers(&running.network).await {
            tracing::warn!(user = %slot.slug, error = %e, "removing gateway network failed");
        }
        if let Some(s) = running.subnet {
            self.subnets.release(s);
        }
        self.metrics.stops.inc();
        let counter = match reason {
            StopReason::Idle => Some(&self.metrics.idle_stops),
            StopReason::Evicted => Some(&self.metrics.evictions),
            StopReason::Crashed => Some(&self.metrics.crashes),
            StopReason::Replaced | StopReason::Requested => None,
        };
        if let Some(c) = counter {
            c.inc();
        }
        slot.transition_if(
            &self.metrics,
            |p| matches!(p, Phase::Stopping { running: r, .. } if Arc::ptr_eq(r, &running)),
            || Phase::Stopped,
        );
        let _ = done.send(true);
        if restart {
            if let Err(e) = self.begin_start(&slot) {
                tracing::warn!(user = %slot.slug, error = %e, "replacement start refused; the next request starts it");
            }
        }
    }
}
