//! Long-lived event streams to gateways on an HTTP/1.1 exchange of our own.
//!
//! A `GET` that asks for `text/event-stream` (MCP's standalone stream, legacy `/sse`) may stay
//! open for hours and is quiet most of that time. Through hyper's pooled client each one holds
//! a connection task, its dispatch channel and 8 KiB read and write buffers for its whole life
//! (docs/BENCHMARKS.md, issue 15). Here the request head is written once, the answer's head is
//! read into a small buffer that is dropped after parsing, and the body is read only when the
//! socket is readable, into a buffer that leaves with the data: a quiet stream holds a socket
//! and the framing state, nothing more. The connection is not pooled (a stream would keep it
//! for its life anyway) and closes with the stream, which is how the gateway learns the client
//! left.
//!
//! Everything the gateway sends is attacker input (a tenant's servers run behind it): the head
//! is bounded in size and header count and parsed by `httparse` (as hyper does), and the body
//! framing by [`chunked`].

mod chunked;

use super::upstream::UpstreamError;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use chunked::{Chunk, Framing, Malformed};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head accepted from a gateway (hyper's client default is 400 KiB;
/// a gateway's answer to a stream request has a handful of headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most header fields accepted in one response head.
const MAX_HEADERS: usize = 100;
/// The first read of the head, and each read of the body: a buffer of this size exists only
/// while bytes are in flight.
const READ_SIZE: usize = 8 * 1024;

/// Whether `req` is a stream request this relay serves: a bodiless `GET` that accepts an
/// event stream.
pub fn wants(req: &Request<Body>) -> bool {
    use http_body::Body as _;
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

/// Sends the bodiless `req` (headers already cleaned for the gateway, `uri` absolute) and
/// reads the answer's head; the body follows as the gateway sends it.
pub async fn send(
    req: Request<Body>,
    connect_timeout: Duration,
) -> Result<Response<RelayBody>, UpstreamError> {
    let (parts, _) = req.into_parts();
    let authority = parts.uri.authority().ok_or(UpstreamError::Protocol)?;
    let addr = match authority.port_u16() {
        Some(_) => authority.as_str().to_string(),
        None => format!("{}:80", authority.host()),
    };
    let mut io = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => return Err(UpstreamError::Timeout),
        Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => return Err(UpstreamError::Timeout),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "stream relay: connect failed");
            return Err(UpstreamError::Connect);
        }
        Ok(Ok(io)) => io,
    };
    let _ = io.set_nodelay(true);
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let head = request_head(&parts.method, path, authority.as_str(), &parts.headers);
    io.write_all(&head).await.map_err(protocol)?;
    let (status, headers, rest) = read_head(&mut io).await?;
    let framing = framing(&parts.method, status, &headers)?;
    let body = RelayBody {
        io: (!framing.is_done()).then_some(io),
        pending: rest,
        framing,
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    Ok(resp)
}

fn protocol(e: io::Error) -> UpstreamError {
    tracing::debug!(error = %e, "stream relay: gateway connection failed");
    UpstreamError::Protocol
}

/// The request head as written to the gateway. Header values cannot hold CR or LF
/// (`HeaderValue` refuses them), so nothing a client sent can start a line of its own.
fn request_head(method: &Method, path: &str, host: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    for part in [
        method.as_str(),
        " ",
        path,
        " HTTP/1.1\r\nhost: ",
        host,
        "\r\n",
    ] {
        head.extend_from_slice(part.as_bytes());
    }
    // `headers::to_upstream` has already taken these out; checked again because these bytes
    // go out raw (hyper's client would have normalised them): one Host, one Connection.
    for (name, value) in headers {
        if name == header::HOST || name == header::CONNECTION {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    // One exchange per connection: the gateway may close when the stream ends.
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// Reads the gateway's answer head (skipping interim 1xx answers): status, headers, and the
/// body bytes that came with it.
async fn read_head(io: &mut TcpStream) -> Result<(StatusCode, HeaderMap, Bytes), UpstreamError> {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    loop {
        if let Some((status, headers, len)) = parse_head(&buf)? {
            let _ = buf.split_to(len);
            if status.is_informational() {
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    return Err(UpstreamError::Protocol);
                }
                continue;
            }
            // Copied out so the head's buffer is not kept alive by a few body bytes.
            return Ok((status, headers, Bytes::copy_from_slice(&buf)));
        }
        if buf.len() >= MAX_HEAD {
            tracing::debug!("stream relay: gateway answer head over {MAX_HEAD} bytes");
            return Err(UpstreamError::Protocol);
        }
        buf.reserve(READ_SIZE.min(MAX_HEAD - buf.len()));
        if io.read_buf(&mut buf).await.map_err(protocol)? == 0 {
            tracing::debug!("stream relay: gateway closed before its answer head");
            return Err(UpstreamError::Protocol);
        }
    }
}

/// A complete head in `buf`: its status, headers and length; `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(StatusCode, HeaderMap, usize)>, UpstreamError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            tracing::debug!(error = %e, "stream relay: malformed answer head");
            return Err(UpstreamError::Protocol);
        }
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(UpstreamError::Protocol)?;
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for f in resp.headers.iter() {
        let name =
            HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| UpstreamError::Protocol)?;
        let value = HeaderValue::from_bytes(f.value).map_err(|_| UpstreamError::Protocol)?;
        headers.append(name, value);
    }
    Ok(Some((status, headers, len)))
}

/// How the answer's body ends (RFC 9112 section 6.3). Conflicting lengths are refused, as a
/// request-smuggling guard even though nothing else shares this connection.
fn framing(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Framing, UpstreamError> {
    if method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Done);
    }
    if let Some(te) = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()
    {
        let last = te.to_str().ok().and_then(|v| v.rsplit(',').next());
        let chunked = last.is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        return Ok(if chunked {
            Framing::Chunked(Chunk::start())
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().map_err(|_| UpstreamError::Protocol)?.split(',') {
            let n: u64 = part.trim().parse().map_err(|_| UpstreamError::Protocol)?;
            if length.is_some_and(|l| l != n) {
                return Err(UpstreamError::Protocol);
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => Framing::Done,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// The body of a relayed answer: read from the gateway's socket only when it is readable.
pub struct RelayBody {
    /// `None` once the body is over (the connection is closed then).
    io: Option<TcpStream>,
    /// Bytes read and not yet handed on (empty while the stream is quiet).
    pending: Bytes,
    framing: Framing,
}

impl RelayBody {
    /// The body is over: the connection closes, nothing read is kept.
    fn finish(&mut self) {
        self.io = None;
        self.pending = Bytes::new();
    }

    /// The body ends with `e` (the client sees a cut stream).
    fn fail(&mut self, e: impl Into<RelayError>) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        self.finish();
        Poll::Ready(Some(Err(e.into())))
    }
}

/// Why a relayed body stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("reading from the gateway: {0}")]
    Io(#[from] io::Error),
}

impl http_body::Body for RelayBody {
    type Data = Bytes;
    type Error = RelayError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        let this = self.get_mut();
        loop {
            match this.framing.next_data(&mut this.pending) {
                Ok(Some(data)) => {
                    if this.pending.is_empty() {
                        // An empty slice still holds the read buffer.
                        this.pending = Bytes::new();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(None) => this.pending = Bytes::new(),
                Err(e) => return this.fail(e),
            }
            if this.framing.is_done() {
                this.finish();
                return Poll::Ready(None);
            }
            let Some(io) = &this.io else {
                return Poll::Ready(None);
            };
            if let Err(e) = ready!(io.poll_read_ready(cx)) {
                return this.fail(e);
            }
            // The buffer exists from here until its data is handed on.
            let mut buf = BytesMut::with_capacity(READ_SIZE);
            match io.try_read_buf(&mut buf) {
                Ok(0) => {
                    let end = this.framing.at_close();
                    this.finish();
                    return Poll::Ready(end.err().map(|e| Err(e.into())));
                }
                Ok(_) => this.pending = buf.freeze(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return this.fail(e),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done() && self.pending.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.exact() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
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
        assert!(wants(&req(Method::GET, "text/event-stream")));
        assert!(wants(&req(
            Method::GET,
            "application/json, Text/Event-Stream"
        )));
        assert!(!wants(&req(Method::GET, "application/json")));
        assert!(!wants(&req(Method::POST, "text/event-stream")));
        let with_body = Request::builder()
            .header(header::ACCEPT, "text/event-stream")
            .body(Body::from("x"))
            .unwrap();
        assert!(!wants(&with_body));
    }

    #[test]
    fn the_request_head_has_one_host_and_closes() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("client.example"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert("mcp-session-id", HeaderValue::from_static("s1"));
        let head = request_head(&Method::GET, "/mcp?a=1", "10.0.0.2:8811", &h);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET /mcp?a=1 HTTP/1.1\r\nhost: 10.0.0.2:8811\r\nmcp-session-id: s1\r\n\
             connection: close\r\n\r\n"
        );
    }

    #[test]
    fn heads_are_parsed_and_bounded() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nset-cookie: a\r\n\
                   set-cookie: b\r\n\r\ndata";
        let (status, headers, len) = parse_head(ok).unwrap().unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers.get_all(header::SET_COOKIE).iter().count(), 2);
        assert_eq!(&ok[len..], b"data");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-ty")
            .unwrap()
            .is_none());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n").is_err());
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert!(parse_head(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()).is_err());
        assert!(parse_head(b"HTTP/1.1 099 Nope\r\n\r\n").is_err());
    }

    #[test]
    fn framing_follows_rfc_9112_and_refuses_conflicting_lengths() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(*k, HeaderValue::from_static(v));
            }
            m
        };
        let get = Method::GET;
        let ok = StatusCode::OK;
        assert!(matches!(
            framing(
                &get,
                ok,
                &h(&[
                    ("transfer-encoding", "gzip, chunked"),
                    ("content-length", "3")
                ])
            ),
            Ok(Framing::Chunked(_))
        ));
        assert!(matches!(
            framing(&get, ok, &h(&[("transfer-encoding", "gzip")])),
            Ok(Framing::UntilClose)
        ));
        assert!(matches!(
            framing(&get, ok, &h(&[("content-length", "7")])),
            Ok(Framing::Length(7))
        ));
        assert!(matches!(
            framing(&get, ok, &h(&[("content-length", "7, 7")])),
            Ok(Framing::Length(7))
        ));
        assert!(framing(
            &get,
            ok,
            &h(&[("content-length", "7"), ("content-length", "8")])
        )
        .is_err());
        assert!(framing(&get, ok, &h(&[("content-length", "-1")])).is_err());
        assert!(matches!(
            framing(&get, ok, &h(&[])),
            Ok(Framing::UntilClose)
        ));
        assert!(matches!(
            framing(&get, StatusCode::NO_CONTENT, &h(&[("content-length", "7")])),
            Ok(Framing::Done)
        ));
    }
}
