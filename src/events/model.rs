//! The events' shape on the wire (the README's "Events" section documents it).

use serde::Serialize;
use std::sync::Arc;

/// One event as streams send it (`data:` is its JSON).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// Process-wide, strictly increasing; also the SSE `id`.
    pub seq: u64,
    /// When it was published (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// The event type (`gateway.state`, `catalog.changed`, `secrets.changed`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The user it concerns; null for base and team catalogs (admins only).
    pub user: Option<String>,
    #[serde(flatten)]
    #[schema(inline)]
    pub body: EventBody,
}

/// What happened: the fields each type adds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EventBody {
    /// `gateway.state`: the user's gateway moved from `previous` to `state`.
    GatewayState {
        /// `starting`, `ready`, `stopping`, `stopped` or `failed`.
        state: &'static str,
        previous: &'static str,
        /// For `failed`: the fixed error code (`gateway_unavailable`, `at_capacity`, ...).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    /// `catalog.changed`.
    Catalog {
        /// `base`, `team` or `user`.
        scope: Scope,
        /// The base catalog's name (scope `base`).
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The team (scope `team`).
        #[serde(skip_serializing_if = "Option::is_none")]
        team: Option<String>,
        action: CatalogAction,
    },
    /// `secrets.changed`: how many of the user's secrets were stored or deleted (never
    /// their values; names are not sent either, the secrets list has them).
    Secrets {
        /// `put` or `delete`.
        action: &'static str,
        count: usize,
    },
}

/// Which catalog layer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Base,
    Team,
    User,
}

/// How a catalog changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogAction {
    /// Created or replaced.
    Put,
    Delete,
    /// Servers enabled or disabled in bulk.
    Servers,
    /// A whole configuration imported.
    Import,
}

impl Event {
    /// Who may see it: its user, and admins. Events without a user are for admins only.
    pub fn visible_to(&self, slug: &str, admin: bool) -> bool {
        admin || self.user.as_deref() == Some(slug)
    }
}

/// A published event (shared by the history and every stream).
pub type Shared = Arc<Event>;
