//! Requests to gateways on HTTP/1.1 exchanges of our own, on connections kept per serving
//! worker.
//!
//! The request's own task writes its head and body to the gateway's socket and reads the
//! answer's head; the body is read as the client takes it (`body`). There is no connection
//! task, dispatch channel or per-request spawn between the two sides, which hyper's pooled
//! client had (docs/BENCHMARKS.md, issue 15): a request and both its sockets stay on one task
//! of one worker, as in nginx's event loop. After an answer read to its framed end the
//! connection goes back to the worker's pool (`pool`) for the next request to that gateway.
//!
//! A `GET` that asks for `text/event-stream` (MCP's standalone stream, legacy `/sse`) may stay
//! open for hours and is quiet most of that time: it gets a connection of its own, asked to
//! close with the stream (which is how the gateway learns the client left), and holds only
//! its socket and framing state while quiet.
//!
//! Everything the gateway sends is attacker input (a tenant's servers run behind it): the head
//! is bounded in size and header count and parsed by `httparse` (as hyper does), the body
//! framing by [`chunked`], and a connection whose answer did not end exactly where its framing
//! said is never used again.

mod body;

mod head;
mod pool;

pub use body::RelayBody;
pub use pool::Pools;

use crate::http1::chunked::Framing;
use axum::body::Body;
use body::Home;
use bytes::{Buf, Bytes};
use head::BodyLength;
use http::header;
use http::uri::Authority;
use http::{Method, Request, Response};
use http_body::Body as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

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

/// Whether `req` is a long-lived stream request: a bodiless `GET` that accepts an event
/// stream.
pub fn is_stream(req: &Request<Body>) -> bool {
    req.method() == Method::GET
        && req.body().is_end_stream()
        && req.headers().get_all(header::ACCEPT).iter().any(|v| {
            // Asked on every GET: a scan without an allocation.
            const SSE: &[u8] = b"text/event-stream";
            v.as_bytes()
                .windows(SSE.len())
                .any(|w| w.eq_ignore_ascii_case(SSE))
        })
}

/// How an exchange failed.
pub(super) enum Failure {
    /// The connection ended (closed, reset) before the first byte of an answer: on a pooled
    /// connection, a gateway that closed it while it was idle.
    Ended,
    Upstream(UpstreamError),
}

impl Failure {
    /// What the client is told once the request will not be tried again.
    fn into_upstream(self) -> UpstreamError {
        match self {
            Failure::Ended => {
                tracing::debug!("gateway closed the connection before its answer");
                UpstreamError::Protocol
            }
            Failure::Upstream(e) => e,
        }
    }
}

impl From<UpstreamError> for Failure {
    fn from(e: UpstreamError) -> Self {
        Failure::Upstream(e)
    }
}

fn protocol(e: io::Error) -> UpstreamError {
    tracing::debug!(error = %e, "gateway connection failed");
    UpstreamError::Protocol
}

/// Sends `req` (headers already cleaned for the gateway, `uri` absolute) and reads the
/// answer's head; the body follows as the gateway sends it. A request whose body is in hand
/// (none, or a small one read before forwarding) that finds its pooled connection closed by
/// the gateway goes once more on a fresh connection.
pub async fn send(
    req: Request<Body>,
    pools: &Arc<Pools>,
    connect_timeout: Duration,
) -> Result<Response<RelayBody>, UpstreamError> {
    let stream = is_stream(&req);
    let (parts, body) = req.into_parts();
    let gateway = parts
        .uri
        .authority()
        .ok_or(UpstreamError::Protocol)?
        .clone();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut out = Outgoing::of(body).await?;
    let length = out.length(&parts.method);
    let head = head::request_head(
        &parts.method,
        path,
        gateway.as_str(),
        &parts.headers,
        length,
        stream,
    );
    let x = Exchange {
        method: &parts.method,
        head,
        pools: (!stream).then_some(pools),
        gateway: &gateway,
    };
    // A stream holds its connection for its life: always a fresh one.
    if let Some(io) = (!stream).then(|| pools.take(&gateway)).flatten() {
        match x.run(io, &mut out).await {
            Err(Failure::Ended) if out.replayable() => {
                tracing::debug!("pooled gateway connection was closed; sending on a fresh one");
            }
            done => return done.map_err(Failure::into_upstream),
        }
    }
    let io = fresh(&gateway, connect_timeout).await?;
    x.run(io, &mut out).await.map_err(Failure::into_upstream)
}

/// A new connection, in a box of its own: connecting (a resolver, a timer) is a few hundred
/// bytes of state that a request on a kept connection, the usual case, would otherwise carry.
async fn fresh(gateway: &Authority, timeout: Duration) -> Result<TcpStream, UpstreamError> {
    Box::pin(connect(gateway, timeout)).await
}

async fn connect(gateway: &Authority, timeout: Duration) -> Result<TcpStream, UpstreamError> {
    let addr = match gateway.port_u16() {
        Some(_) => std::borrow::Cow::Borrowed(gateway.as_str()),
        None => std::borrow::Cow::Owned(format!("{}:80", gateway.host())),
    };
    let io = match tokio::time::timeout(timeout, TcpStream::connect(&*addr)).await {
        Err(_) => return Err(UpstreamError::Timeout),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => return Err(UpstreamError::Timeout),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "gateway connect failed");
            return Err(UpstreamError::Connect);
        }
        Ok(Ok(io)) => io,
    };
    // Heads and small bodies go out in one write each; Nagle would hold the next.
    let _ = io.set_nodelay(true);
    Ok(io)
}

/// One request's exchange, on whichever connection it gets.
struct Exchange<'a> {
    method: &'a Method,
    head: Vec<u8>,
    /// Where the connection goes after a clean answer; `None` for a stream.
    pools: Option<&'a Arc<Pools>>,
    gateway: &'a Authority,
}

impl Exchange<'_> {
    async fn run(
        &self,
        mut io: TcpStream,
        out: &mut Outgoing,
    ) -> Result<Response<RelayBody>, Failure> {
        out.write(&mut io, &self.head).await?;
        let head = head::read_head(&mut io).await?;
        let framing = head::framing(self.method, head.status, &head.headers)?;
        // Only a body that ends by its framing leaves the connection fit for the next request.
        let home = match (self.pools, head.keep_alive, &framing) {
            (Some(pools), true, Framing::Length(_) | Framing::Chunked(_) | Framing::Done) => {
                Some(Home {
                    pools: pools.clone(),
                    gateway: self.gateway.clone(),
                })
            }
            _ => None,
        };
        let mut resp = Response::new(RelayBody::new(io, head.rest, framing, home));
        *resp.status_mut() = head.status;
        *resp.headers_mut() = head.headers;
        Ok(resp)
    }
}

/// The request body on its way to the gateway.
enum Outgoing {
    /// No body.
    Empty,
    /// All of it, already in hand (a small MCP body read before forwarding): written with the
    /// head in one write, and again on a fresh connection if need be.
    Whole(Bytes),
    /// Streamed as the client sends it: written once, on one connection.
    Streaming {
        body: Body,
        first: Option<Bytes>,
        length: Option<u64>,
        /// Set once the body has been (partly) taken.
        spent: bool,
    },
}

impl Outgoing {
    /// Takes what of `body` has already arrived, without waiting for more.
    async fn of(mut body: Body) -> Result<Self, UpstreamError> {
        if body.is_end_stream() {
            return Ok(Outgoing::Empty);
        }
        let length = body.size_hint().exact();
        let first =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        let first = match first {
            Poll::Ready(None) => return Ok(Outgoing::Whole(Bytes::new())),
            Poll::Ready(Some(Err(e))) => {
                tracing::debug!(error = %e, "client request body failed");
                return Err(UpstreamError::Protocol);
            }
            // Trailers are not forwarded.
            Poll::Ready(Some(Ok(frame))) => frame.into_data().ok(),
            Poll::Pending => None,
        };
        if body.is_end_stream() {
            return Ok(Outgoing::Whole(first.unwrap_or_default()));
        }
        Ok(Outgoing::Streaming {
            body,
            first,
            length,
            spent: false,
        })
    }

    /// How the body is framed for the gateway.
    fn length(&self, method: &Method) -> BodyLength {
        match self {
            // As hyper's client: an empty POST still says so.
            Outgoing::Empty if matches!(*method, Method::POST | Method::PUT | Method::PATCH) => {
                BodyLength::Exact(0)
            }
            Outgoing::Empty => BodyLength::None,
            Outgoing::Whole(b) => BodyLength::Exact(b.len() as u64),
            Outgoing::Streaming { length, .. } => {
                length.map_or(BodyLength::Chunked, BodyLength::Exact)
            }
        }
    }

    /// Whether the request can be written again on another connection.
    fn replayable(&self) -> bool {
        match self {
            Outgoing::Empty | Outgoing::Whole(_) => true,
            Outgoing::Streaming { spent, .. } => !spent,
        }
    }

    /// Writes `head` and the body. A connection that fails before all of it is written is
    /// [`Failure::Ended`] (the caller knows whether it may be tried again).
    async fn write(&mut self, io: &mut TcpStream, head: &[u8]) -> Result<(), Failure> {
        let ended = |_| Failure::Ended;
        match self {
            // Head and body in one vectored write, neither copied.
            Outgoing::Whole(b) => io
                .write_all_buf(&mut head.chain(&b[..]))
                .await
                .map_err(ended),
            Outgoing::Empty => io.write_all(head).await.map_err(ended),
            Outgoing::Streaming {
                body,
                first,
                length,
                spent,
            } => {
                io.write_all(head).await.map_err(ended)?;
                *spent = true;
                let chunked = length.is_none();
                let mut sent = 0u64;
                let mut next = first.take();
                loop {
                    if let Some(data) = next.take() {
                        sent += data.len() as u64;
                        write_data(io, &data, chunked).await?;
                    }
                    match std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
                        None => break,
                        Some(Ok(frame)) => next = frame.into_data().ok(),
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "client request body failed");
                            return Err(UpstreamError::Protocol.into());
                        }
                    }
                }
                if chunked {
                    io.write_all(b"0\r\n\r\n").await.map_err(protocol)?;
                } else if Some(sent) != *length {
                    // The client's body did not match its own length: the gateway would wait
                    // for the rest, or read the excess as a request.
                    tracing::debug!("client request body did not match its Content-Length");
                    return Err(UpstreamError::Protocol.into());
                }
                Ok(())
            }
        }
    }
}

/// One piece of a streamed body, as a chunk when the length is not known: size line, data and
/// CRLF in one vectored write.
async fn write_data(io: &mut TcpStream, data: &[u8], chunked: bool) -> Result<(), Failure> {
    if data.is_empty() {
        return Ok(());
    }
    let mut size = std::io::Cursor::new([0u8; 20]);
    if chunked {
        use std::io::Write as _;
        let _ = write!(size, "{:x}\r\n", data.len());
    }
    let size_len = size.position() as usize;
    let end: &[u8] = if chunked { b"\r\n" } else { b"" };
    let mut wire = (&size.get_ref()[..size_len]).chain(data).chain(end);
    io.write_all_buf(&mut wire)
        .await
        .map_err(|e| protocol(e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bodiless_gets_for_an_event_stream_are_relayed() {
        let req = |m: Method, accept: &str| {
            Request::builder()
                .method(m)
                .header(header::ACCEPT, accept)
                .body(Body::empty())
                .unwrap()
        };
        assert!(is_stream(&req(Method::GET, "text/event-stream")));
        assert!(is_stream(&req(
            Method::GET,
            "application/json, Text/Event-Stream"
        )));
        assert!(!is_stream(&req(Method::GET, "application/json")));
        assert!(!is_stream(&req(Method::POST, "text/event-stream")));
        let with_body = Request::builder()
            .header(header::ACCEPT, "text/event-stream")
            .body(Body::from("x"))
            .unwrap();
        assert!(!is_stream(&with_body));
    }
}
