//! The real engine behind the policed endpoints: one fresh connection per call (a unix socket
//! connect costs microseconds, and a hijacked attach stream owns its connection anyway), with
//! HTTP upgrades, so `docker run -i`'s attach stream is bridged byte for byte.

use super::Body;
use crate::config::EngineHost;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::{TcpStream, UnixStream};
use tokio_util::either::Either;

/// Why the engine could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("connecting to the engine: {0}")]
    Connect(std::io::Error),
    #[error("talking to the engine: {0}")]
    Http(#[from] hyper::Error),
    #[error("the engine did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the engine's answer was too large or broken")]
    Body,
}

/// A client of the engine; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    addr: EngineHost,
    /// Limit of the front door's own lookups (inspects); forwarded calls have none, as
    /// `wait` and `logs --follow` are long polls.
    pub lookup_timeout: Duration,
}

impl Engine {
    pub fn new(addr: EngineHost, lookup_timeout: Duration) -> Self {
        Self {
            addr,
            lookup_timeout,
        }
    }

    async fn connect(&self) -> Result<Either<UnixStream, TcpStream>, EngineError> {
        match &self.addr {
            EngineHost::Unix(p) => UnixStream::connect(p).await.map(Either::Left),
            EngineHost::Tcp(a) => TcpStream::connect(a.as_str()).await.map(|s| {
                let _ = s.set_nodelay(true);
                Either::Right(s)
            }),
        }
        .map_err(EngineError::Connect)
    }

    /// Sends one request on a fresh connection; the connection lives as long as the response
    /// (and its upgrade, if any).
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Incoming>, EngineError> {
        let io = TokioIo::new(self.connect().await?);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "engine connection ended");
            }
        });
        Ok(sender.send_request(req).await?)
    }

    /// `GET path` for the front door's own lookups: status and body (at most 4 MiB).
    pub async fn get(&self, path: &str) -> Result<(http::StatusCode, Bytes), EngineError> {
        let req = Request::get(path)
            .header(http::header::HOST, "docker")
            .body(Empty::new().map_err(|never| match never {}).boxed())
            .map_err(|_| EngineError::Body)?;
        let limit = self.lookup_timeout;
        tokio::time::timeout(limit, async {
            let resp = self.send(req).await?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), 4 << 20)
                .collect()
                .await
                .map_err(|_| EngineError::Body)?
                .to_bytes();
            Ok((status, body))
        })
        .await
        .map_err(|_| EngineError::Timeout(limit))?
    }
}
