//! Front door replicas agreeing on idle stops (DESIGN.md §8). The engine knows which gateways
//! run but not which connections use them: open streams and the last request live only in
//! the replica that proxies them. So before the reaper stops a gateway, it asks every peer
//! (`replicas.peers`) `GET /internal/v1/activity/{user}` on the peer's metrics listener,
//! authenticated both ways ([`auth`]). Any peer with an open stream, or with activity younger
//! than the idle timeout, keeps the gateway (its time becomes ours). A peer that refuses the
//! connection is a dead replica and holds no streams; a peer that does not answer in time, or
//! answers wrongly, keeps the gateway for this sweep.

pub mod auth;

use auth::PeerAuth;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The path of the question, before the user slug.
pub const ACTIVITY_PATH: &str = "/internal/v1/activity/";
/// The answer's MAC header.
const ANSWER_MAC: &str = "x-frontdoor-peer-mac";
/// Largest answer read.
const MAX_ANSWER: usize = 4096;

/// What a replica knows of one user's gateway.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ActivityAnswer {
    /// The answering process (random per start): a replica that reaches itself through a
    /// name of all replicas skips its own answer.
    pub replica: String,
    pub user: String,
    pub open_streams: u64,
    /// Last request start or end (ms since the epoch); `None` when it serves no gateway of
    /// the user.
    pub last_active_ms: Option<u64>,
}

/// The lifecycle's side of the answer.
pub trait Activity: Send + Sync + 'static {
    /// Open streams and last activity (ms) of `slug`'s gateway here, if it serves one.
    fn activity(&self, slug: &str) -> Option<(u64, u64)>;
}

/// What the peers said about a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No peer uses it: it may stop.
    Idle,
    /// A peer uses it (or could not tell): keep it; `last_active_ms` is the most recent
    /// activity a peer reported, if any.
    Keep {
        last_active_ms: Option<u64>,
        why: String,
    },
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// This replica's identity and its peers.
pub struct Peers {
    /// Random per process.
    pub replica: String,
    pub auth: Arc<PeerAuth>,
    specs: Vec<String>,
    timeout: Duration,
}

enum AskError {
    /// Nothing listens there: a dead replica.
    Refused,
    Other(String),
}

impl Peers {
    pub fn from_config(config: &crate::config::Config, ring: &crate::secrets::KeyRing) -> Self {
        Self::new(
            config.replicas.peers.clone(),
            config.replicas.peer_timeout.0,
            ring,
        )
    }

    /// Peers at `specs` (`host:port`), each given `timeout` to answer.
    pub fn new(specs: Vec<String>, timeout: Duration, ring: &crate::secrets::KeyRing) -> Self {
        Self {
            replica: (0..16)
                .map(|_| format!("{:x}", rand::random::<u8>() % 16))
                .collect(),
            auth: Arc::new(PeerAuth::from_keyring(ring)),
            specs,
            timeout,
        }
    }

    /// True when there are peers to ask.
    pub fn any(&self) -> bool {
        !self.specs.is_empty()
    }

    /// Asks every peer (every address of every name) about `slug`'s gateway.
    pub async fn ask(&self, slug: &str, idle: Duration) -> Verdict {
        let mut addrs = Vec::new();
        for spec in &self.specs {
            match tokio::time::timeout(self.timeout, tokio::net::lookup_host(spec.as_str())).await {
                Ok(Ok(found)) => addrs.extend(found),
                Ok(Err(e)) => {
                    return Verdict::Keep {
                        last_active_ms: None,
                        why: format!("peer {spec} not resolved: {e}"),
                    }
                }
                Err(_) => {
                    return Verdict::Keep {
                        last_active_ms: None,
                        why: format!("peer {spec} not resolved in time"),
                    }
                }
            }
        }
        addrs.sort();
        addrs.dedup();
        let answers = futures_util::future::join_all(
            addrs
                .iter()
                .map(|a| tokio::time::timeout(self.timeout, self.ask_one(*a, slug))),
        )
        .await;
        let idle_ms = idle.as_millis() as u64;
        let mut keep: Option<Verdict> = None;
        let mut latest = None;
        for (addr, r) in addrs.iter().zip(answers) {
            let why = match r {
                Err(_) => Some(format!("peer {addr} did not answer in time")),
                Ok(Err(AskError::Refused)) => None,
                Ok(Err(AskError::Other(e))) => Some(format!("peer {addr}: {e}")),
                Ok(Ok(a)) if a.replica == self.replica => None,
                Ok(Ok(a)) => {
                    latest = latest.max(a.last_active_ms);
                    let recent = a
                        .last_active_ms
                        .is_some_and(|t| now_ms().saturating_sub(t) < idle_ms);
                    (a.open_streams > 0 || recent).then(|| {
                        format!(
                            "peer {addr} has {} open streams, last active {:?} ms ago",
                            a.open_streams,
                            a.last_active_ms.map(|t| now_ms().saturating_sub(t))
                        )
                    })
                }
            };
            if let (Some(why), None) = (why, &keep) {
                keep = Some(Verdict::Keep {
                    last_active_ms: None,
                    why,
                });
            }
        }
        match keep {
            Some(Verdict::Keep { why, .. }) => Verdict::Keep {
                last_active_ms: latest,
                why,
            },
            _ => Verdict::Idle,
        }
    }

    async fn ask_one(&self, addr: SocketAddr, slug: &str) -> Result<ActivityAnswer, AskError> {
        let other = |e: &dyn std::fmt::Display| AskError::Other(e.to_string());
        let tcp = match tokio::net::TcpStream::connect(addr).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(AskError::Refused)
            }
            Err(e) => return Err(other(&e)),
        };
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|e| other(&e))?;
        tokio::spawn(conn);
        let path = format!("{ACTIVITY_PATH}{slug}");
        let (authz, nonce) = self.auth.sign(&path, now_ms());
        let req = http::Request::get(&path)
            .header(http::header::HOST, addr.to_string())
            .header(http::header::AUTHORIZATION, authz)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| other(&e))?;
        let resp = send.send_request(req).await.map_err(|e| other(&e))?;
        if resp.status() != StatusCode::OK {
            return Err(AskError::Other(format!("answered {}", resp.status())));
        }
        let mac = resp
            .headers()
            .get(ANSWER_MAC)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| other(&e))?
            .to_bytes();
        if !self.auth.verify_answer(&nonce, &body, &mac) {
            return Err(AskError::Other("answer not authenticated".into()));
        }
        let a: ActivityAnswer = serde_json::from_slice(&body).map_err(|e| other(&e))?;
        if a.user != slug {
            return Err(AskError::Other("answer about another user".into()));
        }
        Ok(a)
    }
}

/// Serves the question on the metrics listener.
pub struct PeerServer {
    pub peers: Arc<Peers>,
    pub source: Arc<dyn Activity>,
}

impl PeerServer {
    /// Answers `GET /internal/v1/activity/{user}`: 401 unless authenticated and fresh.
    pub fn answer(&self, slug: &str, authorization: Option<&str>) -> Response {
        let path = format!("{ACTIVITY_PATH}{slug}");
        let nonce = match self.peers.auth.verify(authorization, &path, now_ms()) {
            Ok(n) => n,
            Err(why) => {
                tracing::warn!(?why, "activity question refused");
                return crate::error::Error::PeerUnauthorized.into_response();
            }
        };
        let (open_streams, last_active_ms) = match self.source.activity(slug) {
            Some((streams, last)) => (streams, Some(last)),
            None => (0, None),
        };
        let answer = ActivityAnswer {
            replica: self.peers.replica.clone(),
            user: slug.to_string(),
            open_streams,
            last_active_ms,
        };
        let body = serde_json::to_vec(&answer).unwrap_or_default();
        let mac = self.peers.auth.sign_answer(&nonce, &body);
        let mut resp = ([(http::header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Ok(v) = HeaderValue::from_str(&mac) {
            resp.headers_mut().insert(ANSWER_MAC, v);
        }
        resp
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
