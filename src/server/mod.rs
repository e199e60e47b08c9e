//! Listeners: accept, TLS handshake, HTTP/1.1 + HTTP/2 on one port, bounded connections,
//! graceful drain. The bounds (deadlines from accept, idle close, caps) are in [`conns`].

pub mod conns;
mod detach;
pub mod drain;
pub mod edge_metrics;
mod h1;
pub mod scrape_auth;
pub mod tls;
pub mod workers;

use crate::shutdown::Shutdown;
use axum::body::Body;
use axum::response::Response;
use axum::Router;
use conns::{ConnState, Conns, Limits, Slot, Tracked};
use edge_metrics::{CloseReason, EdgeMetrics};
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

pub use conns::mark_authenticated;

/// Facts about the connection a request came in on (in request extensions: one entry, so
/// one allocation per request).
#[derive(Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
    /// So the authentication step can mark the connection as a user's.
    pub(crate) state: Arc<ConnState>,
}

/// What answers a listener's requests: a router, or the public listener's front
/// (`crate::app::Public`), which sends the proxy path past the router.
pub trait App: Clone + Send + Sync + 'static {
    fn call(&self, req: http::Request<Body>) -> impl Future<Output = Response> + Send + use<Self>;
}

impl App for Router {
    fn call(&self, req: http::Request<Body>) -> impl Future<Output = Response> + Send + use<> {
        use futures_util::FutureExt as _;
        self.clone().oneshot(req).map(|r| match r {
            Ok(resp) => resp,
            Err(never) => match never {},
        })
    }
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

/// A head that started arriving must be complete within this; the time to its first byte is
/// bounded by the connection's first-request or idle deadline.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pings find dead peers under hours-long streams that carry no data.
const H2_PING_EVERY: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The HTTP/2 server of a connection known to speak it.
fn http2_builder() -> http2::Builder<TokioExecutor> {
    let mut b = http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    b
}

/// Either, told apart by the connection's first bytes, with the same settings.
fn auto_builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
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
        // HTTP/2 over TLS is negotiated by ALPN and never assumed (RFC 9113 section 3.3): a
        // client that offers no ALPN (wrk, older curl builds) speaks HTTP/1.1, served without
        // hyper-util's detection.
        Some(b"http/1.1") | None => Version::H1,
        Some(_) => Version::Unknown,
    }
}

/// What every connection task of a listener shares.
struct Shared<A> {
    name: &'static str,
    /// Detects the version; `h2` serves HTTP/2 known up front, [`h1`] HTTP/1.1.
    auto: auto::Builder<TokioExecutor>,
    h2: http2::Builder<TokioExecutor>,
    app: A,
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
pub async fn serve<A: App>(listener: TcpListener, spec: ListenerSpec, app: A, shutdown: Shutdown) {
    let conns = Conns::new(spec.limits);
    serve_with(listener, spec, app, shutdown, conns).await
}

/// [`serve`] with a connection table that other listeners may share (the per-core workers
/// of one address share one, so the caps stay global).
pub async fn serve_with<A: App>(
    listener: TcpListener,
    spec: ListenerSpec,
    app: A,
    shutdown: Shutdown,
    conns: Arc<Conns>,
) {
    let shared = Arc::new(Shared {
        name: spec.name,
        auto: auto_builder(),
        h2: http2_builder(),
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
async fn serve_conn<A: App>(shared: Arc<Shared<A>>, tcp: TcpStream, peer: SocketAddr, slot: Slot) {
    shared.metrics.opened(shared.name, 1);
    let state = slot.state.clone();
    let info = ConnInfo {
        peer,
        tls: shared.tls.is_some(),
        state: state.clone(),
    };
    // Only the served connection's box is held across its await: a TLS stream or handshake
    // held in this task was room that every plain connection's task paid for.
    let served = match shared.tls.clone() {
        Some(acceptor) => Box::pin(handshake(&shared, acceptor, tcp, peer, &state))
            .await
            .map(|s| {
                let version = negotiated(s.get_ref().1.alpn_protocol());
                http(&shared, s, info, &state, version)
            }),
        None => first_bytes(&shared, &tcp, &state)
            .await
            .map(|version| http(&shared, tcp, info, &state, version)),
    };
    if let Some(served) = served {
        served.await;
    }
    shared.metrics.opened(shared.name, -1);
    drop(slot);
}

/// The TLS handshake, within its deadline; `None` when it failed, timed out, or the
/// connection was evicted or the server is shutting down first.
async fn handshake<A>(
    shared: &Shared<A>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    state: &ConnState,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let handshake = tokio::time::timeout(shared.limits.handshake, acceptor.accept(tcp));
    tokio::select! {
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
    }
}

/// The version a plain connection speaks, once its first bytes arrived; `None` when its
/// deadline passed, or it was evicted or the server is shutting down first.
async fn first_bytes<A>(shared: &Shared<A>, tcp: &TcpStream, state: &ConnState) -> Option<Version> {
    tokio::select! {
        v = sniff(tcp) => Some(v),
        reason = state.expired() => {
            shared.metrics.closed(shared.name, reason);
            None
        }
        _ = state.evict.cancelled() => None,
        _ = shared.drain.cancelled() => None,
    }
}

/// HTTP on an established connection until it ends, is closed for its deadline, evicted,
/// drained at shutdown, or cut at the end of the grace period.
///
/// Each version's connection (with its stream) lives in a box of its own size, made here
/// before anything is awaited: inline, the connection task was sized for the largest of them
/// (the detecting connection, an h2 connection, a TLS stream) and every idle plain HTTP/1.1
/// stream carried several KiB it never touched (docs/BENCHMARKS.md, issue 15 step 3).
fn http<'a, A: App, I>(
    shared: &'a Shared<A>,
    io: I,
    info: ConnInfo,
    state: &'a Arc<ConnState>,
    version: Version,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Without upgrades: the proxy strips `Upgrade`.
    match version {
        Version::H1 => {
            let (conn, handle) = h1::Connection::new(io);
            let app = shared.app.clone();
            let served = conn.serve(move |req| answer(&app, &info, req));
            Box::pin(drive(shared, state, served, move |_| handle.close()))
        }
        Version::H2 => {
            let conn = shared
                .h2
                .serve_connection(TokioIo::new(io), service(&shared.app, info));
            Box::pin(drive(shared, state, conn, |c| c.graceful_shutdown()))
        }
        Version::Unknown => {
            let conn = shared
                .auto
                .serve_connection(TokioIo::new(io), service(&shared.app, info));
            Box::pin(drive(shared, state, conn, |c| c.graceful_shutdown()))
        }
    }
}

/// The service of one connection: the app, with the connection's facts in every request and
/// the body bookkeeping of `drain` and `conns` around it.
fn service<A: App>(
    app: &A,
    info: ConnInfo,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<Tracked<Body>>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<Tracked<Body>>, std::convert::Infallible>>
                 + Send
                 + 'static,
> + Clone
       + Send
       + 'static {
    let app = app.clone();
    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        use http_body::Body as _;
        let (mut parts, body) = req.into_parts();
        detach::head(&mut parts);
        // A request without a body has nothing to hand back or discard.
        let (body, rest) = if body.is_end_stream() {
            (Body::empty(), None)
        } else {
            let (body, rest) = drain::returnable(body);
            (Body::new(body), Some(rest))
        };
        // Combinators, not an `async` block around `answer`: awaiting a future an `async`
        // block captured holds it twice, and hyper keeps this future's room in a box for the
        // connection's whole life (every idle stream's).
        use futures_util::FutureExt as _;
        answer(&app, &info, http::Request::from_parts(parts, body)).then(move |resp| async move {
            // Answered before the body was read (it was dropped unread; one still streaming
            // to a gateway is not waited for): read a small rest first (see `drain`).
            if let Some(mut rest) = rest {
                if let Ok(rest) = rest.try_recv() {
                    let _ = drain::drain(rest).await;
                }
            }
            Ok(resp)
        })
    })
}

/// The app's answer to one request of a connection, which is in flight until the answer's
/// body ends; the request carries the connection's facts.
fn answer<A: App>(
    app: &A,
    info: &ConnInfo,
    mut req: http::Request<Body>,
) -> impl Future<Output = http::Response<Tracked<Body>>> + Send + use<A> {
    use futures_util::FutureExt as _;
    let in_flight = info.state.request_started();
    req.extensions_mut().insert(info.clone());
    app.call(req)
        .map(move |resp| resp.map(|b| Tracked::new(b, in_flight)))
}

/// Runs `conn` until it ends or the connection's bounds or the server's shutdown end it;
/// `close_gracefully` asks it to finish its requests and close (each connection type of
/// hyper has that method of its own, with its own bounds; `h1` has its handle).
async fn drive<A, C: Future>(
    shared: &Shared<A>,
    state: &ConnState,
    conn: C,
    mut close_gracefully: impl FnMut(Pin<&mut C>),
) {
    tokio::pin!(conn);
    let mut asked = false;
    // Set when the connection was asked to close for its deadline or an eviction (a drain at
    // shutdown is bounded by the grace period instead).
    let mut closing: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = shared.hard_stop.cancelled() => return,
            _ = until(closing.as_mut()) => return,
            _ = shared.drain.cancelled(), if !asked => {
                close_gracefully(conn.as_mut());
                asked = true;
            }
            reason = state.expired(), if !asked => {
                shared.metrics.closed(shared.name, reason);
                close_gracefully(conn.as_mut());
                asked = true;
                closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
            _ = state.evict.cancelled(), if !asked => {
                close_gracefully(conn.as_mut());
                asked = true;
                closing = Some(Box::pin(tokio::time::sleep(CLOSE_GRACE)));
            }
        }
    }
}

/// Resolves when `sleep` does; never without one.
async fn until(sleep: Option<&mut Pin<Box<tokio::time::Sleep>>>) {
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
        assert_eq!(negotiated(None), Version::H1);
    }
}
