//! Live events: what changed (a gateway's state, a catalog, a user's secrets), published by
//! the lifecycle and the API's audit step, kept in a bounded history and fanned out to the
//! `GET /api/v1/events` streams ([`crate::api`]).
//!
//! An event is built only from closed types and validated names (slugs, catalog and team
//! names, fixed error codes): there is no field a secret value or free error text could
//! travel in.

mod audit;
mod bus;
mod model;

pub use audit::publish_change;

pub use bus::{EventBus, Resume, StreamGuard, Subscription, TooManyStreams};
pub use model::{CatalogAction, Event, EventBody, Scope};
