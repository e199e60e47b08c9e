//! The client to gateways: HTTP/1.1 exchanges of our own on per-worker connection pools
//! (`proxy::relay`, which also says how a failure to reach a gateway is classified).

use super::relay::{self, Pools};
use std::sync::Arc;
use std::time::Duration;

pub use relay::RelayBody as UpstreamBody;
pub use relay::UpstreamError;

/// How long an idle gateway connection is kept for the next request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most idle connections kept per gateway and serving worker.
const POOL_MAX_IDLE: usize = 256;

/// The client to gateways: connections are kept per gateway address, one pool per serving
/// worker (`server::workers`), so a request only uses connections registered with its own
/// thread's runtime; pool 0 serves everything off the workers.
#[derive(Clone)]
pub struct UpstreamClient {
    pools: Arc<Pools>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl UpstreamClient {
    /// `connect_timeout` bounds TCP connect; `response_timeout` bounds the wait for headers;
    /// `workers` is the number of serving workers (0: none, one shared pool).
    pub fn new(connect_timeout: Duration, response_timeout: Duration, workers: usize) -> Self {
        Self {
            pools: Pools::new(workers, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE),
            connect_timeout,
            response_timeout,
        }
    }

    /// Sends the request; the body streams as the client sends it, the answer's body as the
    /// gateway sends it. The response timeout bounds everything up to the answer's head.
    ///
    /// A plain fn: an `async fn` would keep room for the request it has handed on.
    pub fn send(
        &self,
        req: http::Request<axum::body::Body>,
    ) -> impl std::future::Future<Output = Result<http::Response<UpstreamBody>, UpstreamError>> + Send + '_
    {
        use futures_util::FutureExt as _;
        // A combinator, not an `async` block: awaiting a future an `async` block captured
        // holds it twice.
        tokio::time::timeout(
            self.response_timeout,
            relay::send(req, &self.pools, self.connect_timeout),
        )
        .map(|r| r.unwrap_or(Err(UpstreamError::Timeout)))
    }
}
