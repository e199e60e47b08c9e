//! The lifecycle's side of the event stream: a slot whose state name changes publishes
//! `gateway.state`. Called from [`super::slot::Slot::apply`] only, under the slot's lock, so
//! one user's events are in the order their transitions happened.

use super::GatewayError;
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

    /// Publishes `gateway.state` when the state's name changed from `before` to `state`;
    /// `failed` is the error of a `failed` state. (Names, not the slot's phase, so this file
    /// and `slot.rs` do not import each other.)
    pub fn changed(
        &self,
        slug: &str,
        before: &'static str,
        state: &'static str,
        failed: Option<&GatewayError>,
    ) {
        let Some(bus) = &self.0 else { return };
        if state == before {
            return;
        }
        // The fixed code the API answers with, never the message (it may name an image).
        let reason = failed.map(crate::error::Error::gateway_code);
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
