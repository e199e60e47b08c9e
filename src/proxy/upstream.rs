//! The client to gateways (hyper's pooled HTTP/1.1 client; event streams on the relay of
//! our own, `proxy::relay`), and how its failures are classified.

use super::relay::{self, RelayBody};
use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Why a gateway could not answer. The client sees only our wording (see `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("your gateway is not accepting connections; retry in a moment")]
    Connect,
    #[error("your gateway did not answer in time; retry, and if it keeps happening ask an admin to read its log")]
    Timeout,
    #[error("the connection to your gateway failed; retry in a moment")]
    Protocol,
}

impl UpstreamError {
    /// A fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Protocol => "protocol",
        }
    }
}

/// The client to gateways: connections are pooled per gateway address, one pool per serving
/// worker (`server::workers`), so a request only uses connections whose task runs on its
/// own thread; pool 0 serves everything off the workers.
#[derive(Clone)]
pub struct UpstreamClient {
    pools: Arc<[Client<HttpConnector, Body>]>,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl UpstreamClient {
    /// `connect_timeout` bounds TCP connect; `response_timeout` bounds the wait for headers;
    /// `workers` is the number of serving workers (0: none, one shared pool).
    pub fn new(connect_timeout: Duration, response_timeout: Duration, workers: usize) -> Self {
        let pool = || {
            let mut http = HttpConnector::new();
            http.set_connect_timeout(Some(connect_timeout));
            http.set_nodelay(true);
            Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(256)
                .build(http)
        };
        Self {
            pools: (0..=workers).map(|_| pool()).collect(),
            connect_timeout,
            response_timeout,
        }
    }

    fn client(&self) -> &Client<HttpConnector, Body> {
        let i = crate::server::workers::current();
        self.pools.get(i).unwrap_or(&self.pools[0])
    }

    /// Sends the request; the body streams as the client sends it. An event-stream `GET`
    /// goes over the relay (`proxy::relay`); the same timeout and failure classes apply.
    pub async fn send(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<UpstreamBody>, UpstreamError> {
        let sent = async {
            if relay::wants(&req) {
                let resp = relay::send(req, self.connect_timeout).await?;
                Ok(resp.map(UpstreamBody::Relayed))
            } else {
                self.pooled(req).await.map(|r| r.map(UpstreamBody::Pooled))
            }
        };
        tokio::time::timeout(self.response_timeout, sent)
            .await
            .unwrap_or(Err(UpstreamError::Timeout))
    }

    /// Over hyper's pooled client, its errors classified.
    async fn pooled(
        &self,
        req: http::Request<Body>,
    ) -> Result<http::Response<Incoming>, UpstreamError> {
        self.client().request(req).await.map_err(|e| {
            tracing::debug!(error = %e, "upstream request failed");
            if !e.is_connect() {
                UpstreamError::Protocol
            } else if is_timeout(&e) {
                UpstreamError::Timeout
            } else {
                UpstreamError::Connect
            }
        })
    }
}

/// A gateway's response body, from either path.
pub enum UpstreamBody {
    Pooled(Incoming),
    Relayed(RelayBody),
}

impl http_body::Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // Both bodies are `Unpin`.
        match self.get_mut() {
            Self::Pooled(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Self::Relayed(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Pooled(b) => b.is_end_stream(),
            Self::Relayed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Pooled(b) => b.size_hint(),
            Self::Relayed(b) => b.size_hint(),
        }
    }
}

/// A connect timeout: the connector's `io::Error` of kind `TimedOut`, somewhere in the chain
/// (`hyper_util`'s `ConnectError` wraps it), recognised by kind, never by its words.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::is_timeout;
    use std::io;

    /// An error wrapping another, as the client's errors wrap the connector's.
    #[derive(Debug)]
    struct Wrapped(&'static str, Option<io::Error>);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_ref().map(|e| e as _)
        }
    }

    #[test]
    fn a_timeout_is_known_by_its_kind_anywhere_in_the_chain() {
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "deadline has elapsed");
        assert!(is_timeout(&Wrapped("tcp connect error", Some(timed_out))));
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "timed out? no");
        assert!(!is_timeout(&Wrapped("tcp connect error", Some(refused))));
        // Words alone say nothing.
        assert!(!is_timeout(&Wrapped("connection timed out", None)));
    }
}
