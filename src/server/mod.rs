//! Listeners: accept, TLS handshake, HTTP/1.1 + HTTP/2 on one port, bounded connections,
//! graceful drain. The bounds (deadlines from accept, idle close, caps) are in [`conns`].

pub mod conns;
pub mod drain;
pub mod edge_metrics;
pub mod scrape_auth;
pub mod tls;
pub mod workers;

use crate::shutdown::Shutdown;
use axum::Router;
use conns::{ConnHandle, ConnState, Conns, Limits, Slot, Tracked};
use edge_metrics::{CloseReason, EdgeMetrics};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub use conns::mark_authenticated;

/// Facts about the connection a request came in on (in request extensions).
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// How one listener serves.
#[derive(Clone)]
pub struct ListenerSpec {
    pub name: &'static str,
    pub tls: Option<TlsAcceptor>,
    pub limits: Limits,
    pub metrics: EdgeMetrics,
}

/// How long a connection asked to close (idle, evicted) may take to say goodbye (an h2
/// GOAWAY) before its socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // A head that started arriving must be complete within this; the time to its first byte
    // is bounded by the connection's first-request or idle deadline.
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    // Pings find dead peers under hours-long streams that carry no data.
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// `accept failed` is logged at most once per this interval (with the count since), so a
/// process out of descriptors does not flood its log.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(5);
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accept errors: back off (doubling, up to a second) and log a summary now and then.
struct AcceptErrors {
    backoff: Duration,
    unlogged: u64,
    last_log: Option<tokio::time::Instant>,
}

impl AcceptErrors {
    fn new() -> Self {
        Self {
            backoff: ACCEPT_BACKOFF_MIN,
            unlogged: 0,
            last_log: None,
        }
    }

    /// Records one error; returns how long to wait before accepting again.
    fn failed(&mut self, listener: &'static str, e: &std::io::Error) -> Duration {
        self.unlogged += 1;
        let now = tokio::time::Instant::now();
        if self.last_log.is_none_or(|t| now - t >= ACCEPT_LOG_EVERY) {
            tracing::warn!(
                listener, error = %e, failures = self.unlogged,
                "accept failed (out of file descriptors? see server.max_connections); backing off"
            );
            self.unlogged = 0;
            self.last_log = Some(now);
        }
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
        wait
    }

    fn succeeded(&mut self) {
        self.backoff = ACCEPT_BACKOFF_MIN;
    }
}

/// Which HTTP a connection speaks, as far as it is known before its first read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    H1,
    H2,
    /// Read the first bytes to tell (hyper-util's detection).
    Unknown,
}

/// HTTP/2 with prior knowledge starts with this.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The version of a plain connection from its first bytes, without consuming them. Known
/// up front, the connection is served without hyper-util's detection, whose first read hands
/// hyper the 24 detected bytes alone: hyper then grows its read buffer to 16 KiB for the rest
/// of the request head and keeps it as long as the connection lives (idle streams included).
async fn sniff(tcp: &TcpStream) -> Version {
    let mut buf = [0u8; 24];
    match tcp.peek(&mut buf).await {
        Ok(n) if n > 0 && buf[..n] != H2_PREFACE[..n] => Version::H1,
        Ok(24) => Version::H2,
        // Closed, broken, or a preface still arriving.
        _ => Version::Unknown,
    }
}

/// The version a TLS connection agreed on by ALPN.
fn negotiated(alpn: Option<&[u8]>) -> Version {
    match alpn {
        Some(b"h2") => Version::H2,
        Some(b"http/1.1") => Version::H1,
        _ => Version::Unknown,
    }
}

/// What every connection task of a listener shares.
struct Shared {
    name: &'static str,
    /// Detects the version; `h1` and `h2` serve a version known up front.
    builder: auto::Builder<TokioExecutor>,
    h1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    metrics: EdgeMetrics,
    /// Cancelled at shutdown: connections finish their requests and close.
    drain: CancellationToken,
    /// Cancelled when the grace period is over: connections are dropped.
    hard_stop: CancellationToken,
}

/// Accepts until `shutdown`, then stops accepting (new connections are refused), lets
/// in-flight requests finish for the grace period, and cuts whatever is left.
pub async fn serve(listener: TcpListener, spec: ListenerSpec, app: Router, shutdown: Shutdown) {
    let conns = Conns::new(spec.limits);
    serve_with(listener, spec, app, shutdown, conns).await
}

/// [`serve`] with a connection table that other listeners may share (the per-core workers
/// of one address share one, so the caps stay global).
pub async fn serve_with(
    listener: TcpListener,
    spec: ListenerSpec,
    app: Router,
    shutdown: Shutdown,
    conns: Arc<Conns>,
) {
    let shared = Arc::new(Shared {
        name: spec.name,
        builder: http_builder(),
        h1: http_builder().http1_only(),
        h2: http_builder().http2_only(),
        app,
        tls: spec.tls,
        limits: spec.limits,
        metrics: spec.metrics,
        drain: CancellationToken::new(),
        hard_stop: CancellationToken::new(),
    });
    let mut errors = AcceptErrors::new();
    let grace = loop {
        let (tcp, peer) = tokio::select! {
            g = shutdown.triggered() => break g,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    shared.metrics.accept_error(shared.name);
                    let wait = errors.failed(shared.name, &e);
                    tokio::select! {
                        g = shutdown.triggered() => break g,
                        _ = tokio::time::sleep(wait) => continue,
                    }
                }
            },
        };
        errors.succeeded();
        shared.metrics.accepted(shared.name);
        let slot = match conns.admit(peer.ip()) {
            Ok((slot, evicted)) => {
                if evicted {
                    shared.metrics.closed(shared.name, CloseReason::Evicted);
                }
                slot
            }
            Err(reason) => {
                // Accepted and closed at once: the backlog does not fill with connections
                // that would wait for nothing, and the client learns at once.
                shared.metrics.closed(shared.name, reason);
                tracing::debug!(listener = shared.name, %peer, reason = reason.as_str(), "connection refused");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_conn(shared.clone(), tcp, peer, slot));
    };
    drop(listener);
    tracing::info!(
        listener = shared.name,
        open = conns.live(),
        "stopped accepting; draining"
    );
    shared.drain.cancel();
    tokio::select! {
        _ = conns.all_closed() => tracing::info!(listener = shared.name, "drained"),
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(listener = shared.name, "grace period over; closing remaining connections");
            shared.hard_stop.cancel();
        }
    }
}

/// One connection from accept to close; the slot is given back when this returns.
async fn serve_conn(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, slot: Slot) {
    shared.metrics.opened(shared.name, 1);
    let state = slot.state.clone();
    let info = ConnInfo {
        peer,
        tls: shared.tls.is_some(),
    };
    match shared.tls.clone() {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(shared.limits.handshake, acceptor.accept(tcp));
            let stream = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => Some(s),
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        shared.metrics.closed(shared.name, CloseReason::HandshakeFailed);
                        None
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        shared.metrics.closed(shared.name, CloseReason::HandshakeTimeout);
                        None
                    }
                },
                // Evicted (counted where it was chosen) or shutting down.
                _ = state.evict.cancelled() => None,
                _ = shared.drain.cancelled() => None,
            };
            if let Some(s) = stream {
                let version = negotiated(s.get_ref().1.alpn_protocol());
                http(&shared, s, info, &state, version).await;
            }
        }
        None => {
            let version = tokio::select! {
                v = sniff(&tcp) => Some(v),
                reason = state.expired() => {
                    shared.metrics.closed(shared.name, reason);
                    None
                }
                _ = state.evict.cancelled() => None,
                _ = shared.drain.cancelled() => None,
            };
            if let Some(v) = version {
                http(&shared, tcp, info, &state, v).await;
            }
        }
    }
    shared.metrics.opened(shared.name, -1);
    drop(slot);
}

/// HTTP on an established connection until it ends, is closed for its deadline, evicted,
/// drained at shutdown, or cut at the end of the grace period.
async fn http<I>(
    shared: &Arc<Shared>,
    io: I,
    info: ConnInfo,
    state: &Arc<ConnState>,
    version: Version,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = shared.app.clone();
    let handle = ConnHandle(state.clone());
    let conn_state = state.clone();
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let in_flight = conn_state.request_started();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(info);
        parts.extensions.insert(handle.clone());
        let (body, rest) = drain::returnable(body);
        let req = http::Request::from_parts(parts, axum::body::Body::new(body));
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await?;
            // Answered before the body was read (it was dropped unread; one still streaming
            // to a gateway is not waited for): read a small rest first (see `drain`).
            let mut rest = rest;
            if let Ok(rest) = rest.try_recv() {
                let _ = drain::drain(rest).await;
            }
            Ok::<_, std::convert::Infallible>(
                resp.map(|b| axum::body::Body::new(Tracked::new(b, in_flight))),
            )
        }
    });
    let builder = match version {
        Version::H1 => &shared.h1,
        Version::H2 => &shared.h2,
        Version::Unknown => &shared.builder,
    };
    // Without upgrades: the proxy strips `Upgrade`, and only this form skips the detection
    // for a version known up front.
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut asked = false;
    // Set when the connection was asked to close for its deadline or an eviction (a drain at
    // shutdown is bounded by the grace period instead).
    let mut closing: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = shared.hard_stop.cancelled() => return,
            _ = until(closing.as_mut()) => return,
            _ = shared.drain.cancelled(), if !asked => {
                conn.as_mut().graceful_shutdown();
                asked = true;
            }
            reason = state.expired(), if !asked => {
                shared.metrics.closed(shared.name, reason);
                conn.as_mut().graceful_shutdown();
                asked = true;
                closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
            _ = state.evict.cancelled(), if !asked => {
                conn.as_mut().graceful_shutdown();
                asked = true;
                closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
        }
    }
}

/// Resolves when `sleep` does; never without one.
async fn until(sleep: Option<&mut std::pin::Pin<Box<tokio::time::Sleep>>>) {
    match sleep {
        Some(s) => s.as_mut().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn sniffed(first: &[u8]) -> Version {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        c.write_all(first).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        let v = sniff(&s).await;
        let mut left = vec![0u8; first.len()];
        assert_eq!(
            s.peek(&mut left).await.unwrap(),
            first.len(),
            "nothing consumed"
        );
        v
    }

    #[tokio::test]
    async fn the_version_is_known_before_the_first_read() {
        assert_eq!(
            sniffed(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await,
            Version::H1
        );
        assert_eq!(sniffed(H2_PREFACE).await, Version::H2);
        assert_eq!(sniffed(&H2_PREFACE[..10]).await, Version::Unknown);
        assert_eq!(negotiated(Some(b"h2")), Version::H2);
        assert_eq!(negotiated(Some(b"http/1.1")), Version::H1);
        assert_eq!(negotiated(None), Version::Unknown);
    }
}
