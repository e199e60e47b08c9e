//! Request heads: read (bounded in size, count and time), parsed by `httparse` as hyper does,
//! and judged for what they say about the body's length and the connection's future.

use super::{body, Shared};
use crate::http1::chunked::{Chunk, Framing};
use crate::http1::has_token;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use std::future::Future as _;
use std::pin::Pin;
use std::task::{ready, Poll};
use std::time::Duration;
use tokio::io::AsyncRead;

/// The largest request head accepted (a JWT is a few KiB; hyper allows 400 KiB, nginx 32).
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in one head (hyper's default).
pub(super) const MAX_HEADERS: usize = 100;
/// Fields the proxy adds to a request on its way to a gateway.
const FORWARDING_FIELDS: usize = 4;
/// A head that started arriving must be complete within this; the wait for its first byte is
/// the connection's first-request or idle deadline (`server::conns`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a head is not served. The client gets the status and the words, then the connection
/// closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refusal {
    pub status: StatusCode,
    pub message: &'static str,
}

const fn bad(message: &'static str) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        message,
    }
}

const TOO_LARGE: Refusal = Refusal {
    status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    message: "the request head is too large (at most 64 KiB and 100 header fields)",
};

/// A parsed request head.
pub(super) struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    framing: Framing,
    expect_continue: bool,
    keep_alive: bool,
}

/// What the answer to a request must respect.
pub(super) struct Asked {
    pub head: bool,
    pub http10: bool,
    pub keep_alive: bool,
}

impl Head {
    pub fn asked(&self) -> Asked {
        Asked {
            head: self.method == Method::HEAD,
            http10: self.version == Version::HTTP_10,
            keep_alive: self.keep_alive,
        }
    }

    /// The request, its body read from the connection as the app reads it.
    pub fn into_request<I>(self, core: &Shared<I>) -> http::Request<axum::body::Body>
    where
        I: AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let body = body::start(core, self.framing, self.expect_continue);
        let mut req = http::Request::new(body);
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        req
    }
}

/// The next head; `None` when the client closed (or went silent past the header deadline,
/// or the connection was asked to close) before one was complete.
pub(super) async fn read<I: AsyncRead + Unpin>(core: &Shared<I>) -> Result<Option<Head>, Refusal> {
    // Armed only for a head that did not come in one read (rare; a timer per request is not).
    let mut deadline: Option<Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        let mut c = core.lock();
        loop {
            if !c.buf.is_empty() {
                if let Some((head, len)) = parse(&c.buf)? {
                    c.buf = if len == c.buf.len() {
                        Bytes::new()
                    } else {
                        c.buf.slice(len..)
                    };
                    return Poll::Ready(Ok(Some(head)));
                }
                if c.buf.len() >= MAX_HEAD {
                    return Poll::Ready(Err(TOO_LARGE));
                }
                let sleep = deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(HEADER_READ_TIMEOUT)));
                if sleep.as_mut().poll(cx).is_ready() {
                    tracing::debug!("request head not complete in time; closing");
                    return Poll::Ready(Ok(None));
                }
            }
            if c.closing {
                return Poll::Ready(Ok(None));
            }
            match ready!(c.poll_fill(cx)) {
                Ok(0) | Err(_) => return Poll::Ready(Ok(None)),
                Ok(_) => {}
            }
        }
    })
    .await
}

/// A complete head at the start of `buf` and its length; `None` while incomplete. The target
/// and header values are slices of `buf` (no copy).
fn parse(buf: &Bytes) -> Result<Option<(Head, usize)>, Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(TOO_LARGE),
        Err(_) => return Err(bad("malformed request head")),
    };
    if len > MAX_HEAD {
        return Err(TOO_LARGE);
    }
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(bad("malformed request method"))?;
    let target = req.path.ok_or(bad("no request target"))?;
    let uri = Uri::from_maybe_shared(buf.slice_ref(target.as_bytes()))
        .map_err(|_| bad("malformed request target"))?;
    // Room for the forwarding headers the proxy adds (`proxy::headers::to_upstream`): a map
    // sized to the client's fields alone grew (rehashed and reallocated) on every request.
    let mut headers = HeaderMap::with_capacity(req.headers.len() + FORWARDING_FIELDS);
    for f in req.headers.iter() {
        let name =
            HeaderName::from_bytes(f.name.as_bytes()).map_err(|_| bad("malformed header name"))?;
        let value = HeaderValue::from_maybe_shared(buf.slice_ref(f.value))
            .map_err(|_| bad("malformed header value"))?;
        headers.append(name, value);
    }
    if headers.get_all(header::HOST).iter().nth(1).is_some() {
        return Err(bad("more than one Host header"));
    }
    let framing = framing(version, &headers)?;
    let keep_alive = if version == Version::HTTP_10 {
        has_token(&headers, header::CONNECTION, "keep-alive")
    } else {
        !has_token(&headers, header::CONNECTION, "close")
    };
    let expect_continue = version == Version::HTTP_11
        && !framing.is_done()
        && headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let head = Head {
        method,
        uri,
        version,
        headers,
        framing,
        expect_continue,
        keep_alive,
    };
    Ok(Some((head, len)))
}

/// How the request's body ends (RFC 9112 section 6.3). Where two readings of the head could
/// disagree on it, the request is refused: a front end and a back end that disagree on where
/// a body ends is how a request is smuggled inside another.
pub(super) fn framing(version: Version, headers: &HeaderMap) -> Result<Framing, Refusal> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        if version == Version::HTTP_10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if headers.contains_key(header::CONTENT_LENGTH) {
            return Err(bad("both Content-Length and Transfer-Encoding"));
        }
        let mut codings = headers
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|c| c.trim_ascii())
            .filter(|c| !c.is_empty());
        let only_chunked = codings.next().is_some_and(is_chunked) && codings.next().is_none();
        if !only_chunked {
            return Err(bad("the only Transfer-Encoding taken is chunked, once"));
        }
        return Ok(Framing::Chunked(Chunk::start()));
    }
    let length = crate::http1::content_length(headers)
        .map_err(|_| bad("Content-Length is not one decimal number"))?;
    Ok(match length {
        None | Some(0) => Framing::Done,
        Some(n) => Framing::Length(n),
    })
}

fn is_chunked(coding: &[u8]) -> bool {
    coding.eq_ignore_ascii_case(b"chunked")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_head_in_pieces_is_read_whole_and_must_be_complete_within_its_deadline() {
        let (server, mut client) = tokio::io::duplex(1024);
        let core = super::super::Connection::new(server).0 .0;
        client.write_all(b"GET /a HTTP/1.1\r\nHo").await.unwrap();
        let reading = tokio::spawn({
            let core = core.clone();
            async move { read(&core).await.map(|h| h.map(|h| h.uri)) }
        });
        tokio::time::sleep(HEADER_READ_TIMEOUT / 2).await;
        client
            .write_all(b"st: a\r\n\r\nGET /b HTTP/1.1\r\n")
            .await
            .unwrap();
        assert_eq!(reading.await.unwrap(), Ok(Some(Uri::from_static("/a"))));
        // The pipelined start of the next head waits in the buffer, and its deadline runs.
        let t0 = tokio::time::Instant::now();
        assert!(
            matches!(read(&core).await, Ok(None)),
            "closed at the deadline"
        );
        assert!(t0.elapsed() >= HEADER_READ_TIMEOUT);
        assert!(core.lock().buf.starts_with(b"GET /b"));
    }

    fn parsed(wire: &str) -> Result<Option<(Head, usize)>, Refusal> {
        parse(&Bytes::copy_from_slice(wire.as_bytes()))
    }

    fn refused(wire: &str) -> StatusCode {
        match parsed(wire) {
            Err(r) => r.status,
            Ok(Some(_)) => panic!("accepted: {wire:?}"),
            Ok(None) => panic!("incomplete: {wire:?}"),
        }
    }

    #[test]
    fn a_head_is_parsed_with_its_framing_and_keep_alive() {
        let wire = "POST /mcp?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        let (head, len) = parsed(wire).unwrap().unwrap();
        assert_eq!(len, wire.len() - 5);
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri, "/mcp?x=1");
        assert!(matches!(head.framing, Framing::Length(5)));
        assert!(head.keep_alive && !head.expect_continue);
        assert!(parsed("GET / HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());

        let (head, _) = parsed("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!head.keep_alive && head.framing.is_done());
        let (head, _) = parsed("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(head.keep_alive);
        let (head, _) = parsed("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
        let (head, _) =
            parsed("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\ntransfer-encoding: Chunked\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(head.expect_continue && matches!(head.framing, Framing::Chunked(_)));
    }

    #[test]
    fn ambiguous_body_lengths_are_refused() {
        for te in [
            "Content-Length: 3\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: gzip",
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Content-Length: abc",
            "Content-Length: +5",
            "Content-Length: -1",
            "Content-Length: 5 5",
            "Content-Length: 1,2",
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: 99999999999999999999",
            "Content-Length: ",
        ] {
            let wire = format!("POST / HTTP/1.1\r\nHost: a\r\n{te}\r\n\r\n");
            assert_eq!(refused(&wire), StatusCode::BAD_REQUEST, "{te}");
        }
        assert_eq!(
            refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            StatusCode::BAD_REQUEST
        );
        for same in [
            "Content-Length: 5\r\nContent-Length: 5",
            "Content-Length: 5, 5",
        ] {
            let wire = format!("POST / HTTP/1.1\r\n{same}\r\n\r\n");
            let (head, _) = parsed(&wire).unwrap().unwrap();
            assert!(matches!(head.framing, Framing::Length(5)), "{same}");
        }
    }

    #[test]
    fn malformed_and_oversized_heads_are_refused() {
        for wire in [
            "GET /a b HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nFoo : bar\r\n\r\n",
            "GET / HTTP/1.1\r\nFoo: bar\r\n baz\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "G\0T / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(refused(wire), StatusCode::BAD_REQUEST, "{wire:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        assert_eq!(
            refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        let big = "a".repeat(MAX_HEAD);
        assert_eq!(
            refused(&format!("GET / HTTP/1.1\r\nx: {big}\r\n\r\n")),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(refused("GET / HTTP/2.0\r\n\r\n"), StatusCode::BAD_REQUEST);
    }
}
