//! The lifecycle's side of the event stream: a slot whose state name changes publishes
//! `gateway.state`. Called from [`super::slot::Slot::apply`] only, under the slot's lock, so
//! one user's events are in the order their transitions happened.

use super::slot::Phase;
use crate::events::{EventBody, EventBus};
use std::sync::Arc;

/// Where a registry's slots publish their state changes (nowhere without a bus).
#[derive(Debug, Clone, Default)]
pub struct StateEvents(Option<Arc<EventBus>>);

impl StateEvents {
    /// Publishes to `bus`.
    pub fn to(bus: Arc<EventBus>) -> Self {
        Self(Some(bus))
    }

    /// Publishes `gateway.state` when `after` has another name than `before`.
    pub fn changed(&self, slug: &str, before: &'static str, after: &Phase) {
        let Some(bus) = &self.0 else { return };
        let state = after.name();
        if state == before {
            return;
        }
        let reason = match after {
            // The fixed code the API answers with, never the message (it may name an image).
            Phase::Failed { error, .. } => Some(crate::error::Error::gateway_code(error)),
            _ => None,
        };
        bus.publish(
            "gateway.state",
            Some(slug),
            EventBody::GatewayState {
                state,
                previous: before,
                reason,
            },
        );
    }
}
