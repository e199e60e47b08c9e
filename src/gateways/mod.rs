//! Where a user's traffic goes. The proxy asks a [`GatewayResolver`] for an address; the
//! Docker lifecycle ([`DockerGateways`]) implements it with per-user containers,
//! [`FixedUpstream`] sends everyone to one gateway.

mod adopt;
mod adopter;
mod agent;
mod availability;
mod background;
mod capacity;
mod claim;
mod deliver;
mod engine;
mod failure;
mod files;
mod fixed;
mod init;
mod lifecycle;
pub mod metrics;
pub use availability::Unavailable;
mod jobs;
pub mod names;
mod network;
mod prepare;
mod probe;
mod pulls;
mod ready;
mod reaper;
mod redact;
mod remove;
mod servers;
mod slot;
mod spec;
mod start;
mod state_events;
mod state_file;
pub mod subnets;
mod teardown;
#[cfg(test)]
mod tests;
mod timing;

pub use fixed::FixedUpstream;
pub use lifecycle::{docker_runtime, gateway_runtime, DockerGateways};
pub use metrics::GatewayMetrics;
pub use names::Naming;
pub use teardown::{remove_instance, Teardown};

use crate::auth::Principal;
use async_trait::async_trait;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// A ready gateway for one request.
pub struct Upstream {
    /// `http://host:port`, no path.
    pub base: http::uri::Authority,
    /// `Bearer <per-gateway token>`, replacing the client's `Authorization` (built once per
    /// gateway, not per request).
    pub authorization: Option<http::HeaderValue>,
    /// Held until the response body ends, so the lifecycle counts open streams as activity.
    pub lease: Option<Box<dyn Any + Send + Sync>>,
    /// What the proxy may do when it cannot connect to this address.
    pub retry: Retry,
}

/// The resolver's word on a connection refused by the gateway it named.
pub enum Retry {
    /// Nothing can replace it: the client gets the 502 (a fixed upstream).
    Never,
    /// Ask whether the gateway is gone; when it was, a request that can be sent again is sent
    /// once more, to the fresh gateway the next `ensure` gives.
    IfGone(Arc<dyn GoneCheck>),
}

/// Looks at a gateway the proxy could not connect to, now rather than when the engine's
/// event arrives (killed moments ago, its die event still on the way).
#[async_trait]
pub trait GoneCheck: Send + Sync {
    /// True when it was gone and the next `ensure` gives a fresh one.
    async fn gone(self: Arc<Self>, principal: &Principal) -> bool;
}

/// The `Authorization` value for a gateway token, marked sensitive so it never shows in debug
/// output; `None` for a token that is not a valid header value.
pub fn bearer(token: &str) -> Option<http::HeaderValue> {
    let mut v = http::HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}

/// Why no gateway could be had; mapped to 503/429 in `error.rs`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
    #[error("too many gateways are running on this server; retry in {} s", retry_after.as_secs().max(1))]
    AtCapacity { retry_after: Duration },
    #[error(
        "no gateway runtime is configured (set gateways.upstream_url or enable the Docker runtime)"
    )]
    NotConfigured,
}

/// Finds or starts the gateway of a user.
#[async_trait]
pub trait GatewayResolver: Send + Sync + 'static {
    /// Returns the address of the principal's gateway once it is ready to serve.
    async fn ensure(&self, principal: &Principal) -> Result<Upstream, GatewayError>;

    /// Whether the runtime can start gateways right now (feeds `/readyz`).
    async fn ready(&self) -> bool {
        true
    }
}

/// The resolver used when nothing is configured: every request gets a clear 503.
pub struct NoRuntime;

#[async_trait]
impl GatewayResolver for NoRuntime {
    async fn ensure(&self, _: &Principal) -> Result<Upstream, GatewayError> {
        Err(GatewayError::NotConfigured)
    }
}

/// A gateway as the API reports it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct GatewayStatus {
    /// The user slug.
    pub user: String,
    /// `stopped`, `starting`, `ready`, `stopping` or `failed`.
    pub state: String,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    pub container: Option<String>,
    pub catalog_hash: Option<String>,
    pub uptime_seconds: Option<u64>,
    /// Seconds since the last request or open stream.
    pub idle_seconds: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub open_streams: u64,
    /// Servers of the user's catalog left out of the gateway (image missing or refused), and why.
    pub unavailable_servers: Vec<Unavailable>,
    /// Names of the MCP server containers the gateway runs now.
    pub server_containers: Vec<String>,
}

/// Operator control of gateways (the REST API's `/gateway` routes). Runtimes that manage
/// per-user gateways implement it; a fixed upstream does not.
#[async_trait]
pub trait GatewayControl: Send + Sync + 'static {
    /// Starts the gateway of `principal` (as the first request would) and reports it.
    async fn start(&self, principal: &Principal) -> Result<GatewayStatus, GatewayError>;
    /// The state of one user's gateway (`stopped` when there is none).
    async fn status(&self, slug: &str) -> Result<GatewayStatus, GatewayError>;
    /// Stops and removes it; true when there was one.
    async fn stop(&self, slug: &str) -> Result<bool, GatewayError>;
    /// The last `tail` lines of its log, each starting with the engine's RFC 3339 time;
    /// `None` when the user has no gateway container.
    async fn logs(&self, slug: &str, tail: usize) -> Result<Option<String>, GatewayError>;
    /// Every gateway this front door manages.
    async fn list(&self) -> Result<Vec<GatewayStatus>, GatewayError>;
    /// Makes sure each image is present on the engine, pulling the missing ones (so a first
    /// request does not wait for a pull). One image's failure does not stop the others.
    async fn pull_images(&self, images: &[String]) -> Result<Vec<ImagePull>, GatewayError>;
}

/// What pulling one image ahead of time did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImagePull {
    pub image: String,
    pub outcome: PullOutcome,
    /// Why it failed (only when it did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What happened to one image of a pre-pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PullOutcome {
    /// Already on the engine; nothing to do.
    Present,
    /// Pulled now.
    Pulled,
    /// Could not be had (`reason` says why).
    Failed,
}
