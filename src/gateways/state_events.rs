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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Resume;
    use std::time::Duration;

    #[test]
    fn a_state_name_change_publishes_once_with_the_fixed_code() {
        let bus = Arc::new(EventBus::starting_at(1, 16, 4));
        let mut sub = bus.subscribe(Resume::Live);
        let events = StateEvents::to(bus.clone());
        // Same name: nothing.
        events.changed("alice", "stopped", "stopped", None);
        let error = GatewayError::Unavailable {
            message: "image registry.example/secret-token-abc missing".into(),
            retry_after: Duration::from_secs(1),
        };
        events.changed("alice", "stopped", "failed", Some(&error));
        events.changed("alice", "failed", "stopped", None);
        let first = sub.live.try_recv().unwrap();
        assert_eq!(first.user.as_deref(), Some("alice"));
        let json = serde_json::to_value(&*first).unwrap();
        assert_eq!(json["state"], "failed");
        assert_eq!(json["previous"], "stopped");
        assert_eq!(json["reason"], "gateway_unavailable");
        assert!(!json.to_string().contains("secret-token"), "{json}");
        let second = serde_json::to_value(&*sub.live.try_recv().unwrap()).unwrap();
        assert_eq!(second["state"], "stopped");
        assert!(second.get("reason").is_none());
        assert!(sub.live.try_recv().is_err(), "one event per change");
        // Without a bus nothing is published (and nothing breaks).
        StateEvents::default().changed("alice", "stopped", "starting", None);
    }
}
