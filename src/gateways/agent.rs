//! Talking to a gateway container itself (not to the engine): handing its init the files
//! ([`super::deliver`]) and probing its health ([`super::probe`]). A trait, so the lifecycle's
//! unit tests can run gateways that exist only in memory.

use super::deliver::{deliver, DeliverError};
use super::files::GatewayFile;
use super::probe::Prober;
use async_trait::async_trait;
use http::uri::Authority;

/// A gateway's own endpoint, as the lifecycle uses it.
#[async_trait]
pub(super) trait GatewayAgent: Send + Sync + 'static {
    /// Sends the files to the init at `base` and waits for its `ok`.
    async fn deliver(
        &self,
        base: &Authority,
        token: &str,
        files: &[GatewayFile],
    ) -> Result<(), DeliverError>;

    /// One health probe: true on a 2xx answer.
    async fn healthy(&self, base: &Authority, token: &str) -> bool;
}

/// The real agent: TCP to the init, HTTP to the gateway.
pub(super) struct InitAgent {
    prober: Prober,
}

impl InitAgent {
    /// Probes `health_path`.
    pub fn new(health_path: &str) -> Self {
        Self {
            prober: Prober::new(health_path),
        }
    }
}

#[async_trait]
impl GatewayAgent for InitAgent {
    async fn deliver(
        &self,
        base: &Authority,
        token: &str,
        files: &[GatewayFile],
    ) -> Result<(), DeliverError> {
        deliver(base, token, files).await
    }

    async fn healthy(&self, base: &Authority, token: &str) -> bool {
        self.prober.healthy(base, token).await
    }
}
