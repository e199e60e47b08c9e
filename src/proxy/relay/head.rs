//! The heads of an exchange: the request head as written to a gateway, and the answer's head
//! as read from it (bounded, parsed by `httparse` as hyper does), with what they say about the
//! body's framing and whether the connection can carry another request.

use super::Failure;
use super::UpstreamError;
use crate::http1::chunked::{Chunk, Framing};
use crate::http1::has_token;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use std::cell::RefCell;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

/// The largest answer head accepted from a gateway (hyper's client default is 400 KiB; a
/// gateway's answers have a handful of headers).
const MAX_HEAD: usize = 64 * 1024;
/// The most header fields accepted in one answer head.
pub(super) const MAX_HEADERS: usize = 100;
/// Each read of a head: a buffer of this size exists only while the head is in flight.
pub(super) const READ_SIZE: usize = 8 * 1024;

/// How the request's body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyLength {
    /// No body (and no length: a GET, a HEAD, ...).
    None,
    /// `Content-Length`.
    Exact(u64),
    /// `Transfer-Encoding: chunked`: the length is not known up front.
    Chunked,
}

/// The request head as written to the gateway. Header values cannot hold CR or LF
/// (`HeaderValue` refuses them), so nothing a client sent can start a line of its own; the
/// framing headers are ours, whatever the client's said.
pub(super) fn request_head(
    method: &Method,
    path: &str,
    host: &str,
    headers: &HeaderMap,
    body: BodyLength,
    close: bool,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
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
    // `headers::to_upstream` has already taken the hop-by-hop ones out; checked again because
    // these bytes go out raw: one Host, one Connection, one framing of the body.
    for (name, value) in headers {
        if name == header::HOST
            || name == header::CONNECTION
            || name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    match body {
        BodyLength::Exact(n) => {
            // Into the Vec itself: no string per request.
            let _ = write!(head, "content-length: {n}\r\n");
        }
        BodyLength::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        BodyLength::None => {}
    }
    if close {
        // One exchange on this connection: the gateway may close when the answer ends.
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// An answer's head.
pub(super) struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// HTTP/1.1 without `Connection: close`: the connection may carry the next request.
    pub keep_alive: bool,
    /// Body bytes that arrived with the head.
    pub rest: Bytes,
}

thread_local! {
    /// The buffer answer heads are read into, one per thread. It is only ever borrowed within
    /// one poll (a read, then the parse), so every exchange on the thread shares it: no
    /// request allocates 8 KiB for a 200-byte head.
    static HEAD_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads the gateway's answer head (skipping interim 1xx answers). A connection that ends
/// before the first byte is [`Failure::Ended`]: on a reused connection that is a gateway
/// that closed it while idle, and the request may go again on a fresh one.
pub(super) async fn read_head(io: &mut TcpStream) -> Result<Head, Failure> {
    // A head that arrives in pieces waits here for its next piece (rare: a gateway's head
    // comes in one segment).
    let mut held = Vec::new();
    let mut any = false;
    std::future::poll_fn(|cx| {
        if !held.is_empty() {
            return poll_head(io, cx, &mut held, &mut any);
        }
        HEAD_BUF.with_borrow_mut(|buf| {
            buf.clear();
            let step = poll_head(io, cx, buf, &mut any);
            if step.is_pending() {
                held.extend_from_slice(buf);
            }
            if buf.capacity() > 2 * READ_SIZE {
                *buf = Vec::new();
            }
            step
        })
    })
    .await
}

/// Reads until `buf` holds the final head. Reads go through `AsyncRead`, which marks the
/// socket not ready after a short read: the next exchange on a kept connection then waits
/// for the reactor instead of trying a read that finds nothing.
fn poll_head(
    io: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
    any: &mut bool,
) -> Poll<Result<Head, Failure>> {
    loop {
        buf.reserve(READ_SIZE.min(MAX_HEAD - buf.len()));
        match ready!(poll_read_buf(Pin::new(&mut *io), cx, buf)) {
            Ok(0) | Err(_) if !*any => return Poll::Ready(Err(Failure::Ended)),
            Ok(0) => {
                tracing::debug!("gateway closed in the middle of its answer head");
                return Poll::Ready(Err(UpstreamError::Protocol.into()));
            }
            Ok(_) => *any = true,
            Err(e) => return Poll::Ready(Err(super::protocol(e).into())),
        }
        let mut at = 0;
        loop {
            match parse_head(&buf[at..]) {
                Err(e) => return Poll::Ready(Err(e.into())),
                Ok(Some((head, len))) if head.status.is_informational() => {
                    if head.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Poll::Ready(Err(UpstreamError::Protocol.into()));
                    }
                    at += len;
                }
                Ok(Some((head, _))) => return Poll::Ready(Ok(head)),
                Ok(None) => break,
            }
        }
        buf.drain(..at);
        if buf.len() >= MAX_HEAD {
            tracing::debug!("gateway answer head over {MAX_HEAD} bytes");
            return Poll::Ready(Err(UpstreamError::Protocol.into()));
        }
    }
}

/// A complete head at the start of `buf` and its length; `None` while incomplete. `buf` is
/// copied once: the header values and the body bytes that came with the head (`rest`) are
/// slices of that copy.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, UpstreamError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => {
            tracing::debug!(error = %e, "malformed gateway answer head");
            return Err(UpstreamError::Protocol);
        }
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(UpstreamError::Protocol)?;
    let copy = Bytes::copy_from_slice(buf);
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for f in resp.headers.iter() {
        let name =
            HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| UpstreamError::Protocol)?;
        // `f.value` lies inside `buf[..len]`: the same bytes of the copy.
        let start = f.value.as_ptr() as usize - buf.as_ptr() as usize;
        let value = HeaderValue::from_maybe_shared(copy.slice(start..start + f.value.len()))
            .map_err(|_| UpstreamError::Protocol)?;
        headers.append(name, value);
    }
    let keep_alive = resp.version == Some(1) && !has_token(&headers, header::CONNECTION, "close");
    let head = Head {
        status,
        headers,
        keep_alive,
        rest: copy.slice(len..),
    };
    Ok(Some((head, len)))
}

/// How the answer's body ends (RFC 9112 section 6.3). Conflicting lengths are refused, as a
/// request-smuggling guard: a pooled connection carries other requests of the same user.
pub(super) fn framing(
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
    let length = crate::http1::content_length(headers).map_err(|_| UpstreamError::Protocol)?;
    Ok(match length {
        Some(0) => Framing::Done,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_head_has_one_host_one_framing_and_closes_when_asked() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("client.example"));
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("mcp-session-id", HeaderValue::from_static("s1"));
        let head = |body, close| {
            String::from_utf8(request_head(
                &Method::POST,
                "/mcp?a=1",
                "10.0.0.2:8811",
                &h,
                body,
                close,
            ))
            .unwrap()
        };
        assert_eq!(
            head(BodyLength::None, true),
            "POST /mcp?a=1 HTTP/1.1\r\nhost: 10.0.0.2:8811\r\nmcp-session-id: s1\r\n\
             connection: close\r\n\r\n"
        );
        assert_eq!(
            head(BodyLength::Exact(12), false),
            "POST /mcp?a=1 HTTP/1.1\r\nhost: 10.0.0.2:8811\r\nmcp-session-id: s1\r\n\
             content-length: 12\r\n\r\n"
        );
        assert_eq!(
            head(BodyLength::Chunked, false),
            "POST /mcp?a=1 HTTP/1.1\r\nhost: 10.0.0.2:8811\r\nmcp-session-id: s1\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn heads_are_parsed_and_bounded() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nset-cookie: a\r\n\
                   set-cookie: b\r\n\r\ndata";
        let (head, len) = parse_head(ok).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.headers.get_all(header::SET_COOKIE).iter().count(), 2);
        assert!(head.keep_alive);
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
    fn only_http_1_1_without_close_keeps_the_connection() {
        let keeps = |wire: &[u8]| parse_head(wire).unwrap().unwrap().0.keep_alive;
        assert!(keeps(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(!keeps(b"HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n"));
        assert!(!keeps(b"HTTP/1.1 200 OK\r\nconnection: x-a, close\r\n\r\n"));
        assert!(!keeps(b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n"));
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
        assert!(
            framing(&get, ok, &h(&[("content-length", "+5")])).is_err(),
            "digits only, as a client's length is read"
        );
        assert!(matches!(
            framing(&get, ok, &h(&[])),
            Ok(Framing::UntilClose)
        ));
        assert!(matches!(
            framing(&get, StatusCode::NO_CONTENT, &h(&[("content-length", "7")])),
            Ok(Framing::Done)
        ));
        assert!(matches!(
            framing(&Method::HEAD, ok, &h(&[("content-length", "7")])),
            Ok(Framing::Done)
        ));
    }
}
