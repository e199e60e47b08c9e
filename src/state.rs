//! What every handler shares (the app state), apart from the routers that use it so the API
//! and the routers can both name it without importing each other.

use crate::gate::AuthGate;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use std::sync::Arc;

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub proxy: Arc<Proxy>,
    /// Authentication for the proxy path and the API alike.
    pub gate: Arc<AuthGate>,
    pub metrics: Arc<Metrics>,
    pub public_url: Arc<str>,
    pub authorization_servers: Arc<[String]>,
    pub services: crate::services::Services,
    pub control: Option<Arc<dyn crate::gateways::GatewayControl>>,
    /// Largest API request body accepted.
    pub max_body: usize,
    /// The per-user gateway image (pulled ahead of time with the catalogs' images).
    pub gateway_image: Option<String>,
    /// The catalog regeneration job.
    pub regenerate: Arc<crate::api::job::RegenerateJob>,
    /// Answers other replicas' activity questions (the per-user lifecycle only).
    pub peer_server: Option<Arc<crate::replicas::PeerServer>>,
}

/// Filled in by the API's `Caller` extractor so the request log line can name the user, and
/// their teams can be recorded once the request succeeded.
#[derive(Clone, Default)]
pub struct CallerSlot(pub Arc<std::sync::OnceLock<Arc<crate::auth::Principal>>>);
