//! Answers on the wire: the head, then the body framed by its length or in chunks (or, for an
//! HTTP/1.0 client, until the connection closes), each piece written as the app hands it over
//! and flushed, so an event reaches the client when the gateway sent it.

use super::head::{Asked, Refusal};
use super::Shared;
use bytes::{Buf, Bytes};
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;
use http_body::Body;
use std::cell::RefCell;
use std::io::{self, IoSlice, Write as _};
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};

/// How the answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// HTTP/1.0 and no length: the body ends with the connection.
    Close,
}

/// One write: the head (first time only), a chunk's size line, its data, and what follows.
struct Out {
    head: Bytes,
    size_line: [u8; 18],
    size_at: usize,
    data: Bytes,
    tail: &'static [u8],
}

impl Out {
    fn new(head: Bytes) -> Self {
        Self {
            head,
            size_line: [0; 18],
            size_at: 18,
            data: Bytes::new(),
            tail: b"",
        }
    }

    /// `data` as the next chunk (its size line in front, CRLF behind).
    fn chunk(&mut self, data: Bytes) {
        let mut line = [0u8; 18];
        let mut w = &mut line[..];
        let _ = write!(w, "{:x}\r\n", data.len());
        let len = 18 - w.len();
        self.size_line[18 - len..].copy_from_slice(&line[..len]);
        self.size_at = 18 - len;
        self.data = data;
        self.tail = b"\r\n";
    }

    fn is_empty(&self) -> bool {
        self.head.is_empty() && !self.has_piece()
    }

    /// A piece of the body is staged behind the head.
    fn has_piece(&self) -> bool {
        self.size_at != 18 || !self.data.is_empty() || !self.tail.is_empty()
    }

    fn advance(&mut self, mut n: usize) {
        let k = n.min(self.head.len());
        self.head.advance(k);
        if self.head.is_empty() {
            // An empty slice still holds the head's allocation.
            self.head = Bytes::new();
        }
        n -= k;
        let k = n.min(18 - self.size_at);
        self.size_at += k;
        n -= k;
        let k = n.min(self.data.len());
        self.data.advance(k);
        n -= k;
        self.tail = &self.tail[n.min(self.tail.len())..];
    }

    /// Writes all of it and flushes.
    fn poll_write<I: AsyncWrite + Unpin>(
        &mut self,
        io: &mut I,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.is_empty() {
            let slices = [
                IoSlice::new(&self.head),
                IoSlice::new(&self.size_line[self.size_at..]),
                IoSlice::new(&self.data),
                IoSlice::new(self.tail),
            ];
            let n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(n);
        }
        Pin::new(io).poll_flush(cx)
    }
}

async fn send<I: AsyncWrite + Unpin>(core: &Shared<I>, out: &mut Out) -> io::Result<()> {
    std::future::poll_fn(|cx| out.poll_write(&mut core.lock().io, cx)).await
}

/// Writes `resp` as the answer to a request that `asked`; whether the connection may carry
/// another request afterwards.
pub(super) async fn response<I, B>(core: &Shared<I>, resp: http::Response<B>, asked: &Asked) -> bool
where
    I: AsyncRead + AsyncWrite + Unpin,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (mut parts, body) = resp.into_parts();
    let status = parts.status;
    let bodiless = asked.head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let headers = &mut parts.headers;
    // Framing and the connection's fate are this layer's to say, whatever the app put there.
    let closing_asked = crate::http1::has_token(headers, header::CONNECTION, "close");
    headers.remove(header::CONNECTION);
    headers.remove(header::TRANSFER_ENCODING);
    let declared = declared_length(headers);
    let framing = if bodiless {
        if status.is_informational() || status == StatusCode::NO_CONTENT {
            headers.remove(header::CONTENT_LENGTH);
        }
        Framing::None
    } else if let Some(n) = declared.or(body.size_hint().exact()) {
        if declared.is_none() {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        }
        Framing::Length(n)
    } else if asked.http10 {
        Framing::Close
    } else {
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        Framing::Chunked
    };
    let (body_keeps, continue_rest, closing) = {
        let mut c = core.lock();
        let (keeps, rest) = c.body.answer_started();
        (keeps, rest, c.closing)
    };
    let keep =
        asked.keep_alive && body_keeps && !closing_asked && framing != Framing::Close && !closing;
    let head = head_bytes(status, headers, keep, asked.http10, continue_rest);
    // The head is in bytes now: its map (and the gateway's head it points into) is not kept
    // for the life of a stream.
    drop(parts);
    let mut out = Out::new(head);
    if framing == Framing::None {
        return send(core, &mut out).await.is_ok() && keep;
    }
    body_out(core, body, framing, out).await && keep
}

/// Streams the body after the head in `out`; whether it went out whole.
async fn body_out<I, B>(core: &Shared<I>, body: B, framing: Framing, mut out: Out) -> bool
where
    I: AsyncRead + AsyncWrite + Unpin,
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut body = pin!(body);
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => u64::MAX,
    };
    loop {
        // The head waits for the first piece when it is ready at once (one write for a small
        // answer); otherwise it goes out alone, and every piece after it as it comes.
        let frame = match ready_now(body.as_mut()) {
            Poll::Ready(f) => f,
            Poll::Pending => {
                // One piece at a time behind the head: the one staged goes out first.
                if out.has_piece() && send(core, &mut out).await.is_err() {
                    return false;
                }
                match next_frame(core, body.as_mut()).await {
                    Some(f) => f,
                    None => return false,
                }
            }
        };
        match frame {
            None => {
                if framing == Framing::Chunked {
                    out.tail = if out.tail.is_empty() {
                        b"0\r\n\r\n"
                    } else {
                        b"\r\n0\r\n\r\n"
                    };
                }
                // A length the body did not fill cannot be told apart from a cut answer.
                let whole = !matches!(framing, Framing::Length(_)) || left == 0;
                if !whole {
                    tracing::debug!("answer body shorter than its Content-Length; closing");
                }
                return send(core, &mut out).await.is_ok() && whole;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "answer body failed; closing the connection");
                let _ = send(core, &mut out).await;
                return false;
            }
            Some(Ok(frame)) => {
                let Ok(mut data) = frame.into_data() else {
                    continue; // trailers: not sent over HTTP/1.1
                };
                if data.is_empty() {
                    continue;
                }
                // One piece at a time behind the head: the one staged goes out first.
                if out.has_piece() && send(core, &mut out).await.is_err() {
                    return false;
                }
                match framing {
                    Framing::Chunked => out.chunk(data),
                    Framing::Length(_) => {
                        if data.len() as u64 > left {
                            tracing::debug!("answer body longer than its Content-Length; cut");
                            data.truncate(left as usize);
                            out.data = data;
                            let _ = send(core, &mut out).await;
                            return false;
                        }
                        left -= data.len() as u64;
                        out.data = data;
                    }
                    _ => out.data = data,
                }
            }
        }
    }
}

/// What polling a body gives.
type Next<B> = Option<Result<http_body::Frame<<B as Body>::Data>, <B as Body>::Error>>;

/// The body's next frame if it is there without waiting.
fn ready_now<B: Body>(body: Pin<&mut B>) -> Poll<Next<B>> {
    body.poll_frame(&mut Context::from_waker(std::task::Waker::noop()))
}

/// The body's next frame while watching the client; `None` when the client left.
async fn next_frame<I, B>(core: &Shared<I>, mut body: Pin<&mut B>) -> Option<Next<B>>
where
    I: AsyncRead + Unpin,
    B: Body<Data = Bytes>,
{
    super::unless_gone(core, |cx| body.as_mut().poll_frame(cx)).await
}

/// The `Content-Length` the app set, if it is one number.
fn declared_length(headers: &mut HeaderMap) -> Option<u64> {
    let v = headers.get(header::CONTENT_LENGTH)?;
    match v.to_str().ok().and_then(|s| s.trim().parse().ok()) {
        Some(n) => Some(n),
        None => {
            headers.remove(header::CONTENT_LENGTH);
            None
        }
    }
}

fn head_bytes(
    status: StatusCode,
    headers: &HeaderMap,
    keep: bool,
    http10: bool,
    before: &[u8],
) -> Bytes {
    let size: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    let mut head = Vec::with_capacity(before.len() + size + 128);
    head.extend_from_slice(before);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        head.extend_from_slice(b"date: ");
        date(&mut head);
        head.extend_from_slice(b"\r\n");
    }
    if !keep {
        head.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        head.extend_from_slice(b"connection: keep-alive\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Bytes::from(head)
}

thread_local! {
    /// The `Date` of this second, formatted once per second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((0, [0; 29])) };
}

fn date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now();
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            let s = httpdate::fmt_http_date(now);
            if s.len() == 29 {
                text.copy_from_slice(s.as_bytes());
                *at = secs;
            }
        }
        out.extend_from_slice(text);
    });
}

/// Refuses a head: the status and a JSON body that says why, then the connection closes.
pub(super) async fn refusal<I: AsyncRead + AsyncWrite + Unpin>(core: &Shared<I>, r: Refusal) {
    tracing::debug!(status = %r.status, reason = r.message, "request refused");
    let code = if r.status == StatusCode::BAD_REQUEST {
        "bad_request"
    } else {
        "too_large"
    };
    let resp = crate::error::json_error(r.status, code, r.message);
    let asked = Asked {
        head: false,
        http10: false,
        keep_alive: false,
    };
    response(core, resp, &asked).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use tokio::io::AsyncReadExt;

    /// What a client reads of the answer (without its `date` line), and whether the
    /// connection was kept. The pipe holds 7 bytes: every write is a partial one.
    async fn wire<B>(resp: http::Response<B>, asked: Asked) -> (String, bool)
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display + Send,
    {
        let (server, mut client) = tokio::io::duplex(7);
        let core = super::super::Connection::new(server).0 .0;
        let writer = tokio::spawn(async move { response(&core, resp, &asked).await });
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let kept = writer.await.unwrap();
        let text = String::from_utf8(got).unwrap();
        let without_date: Vec<&str> = text
            .split("\r\n")
            .filter(|l| !l.starts_with("date: "))
            .collect();
        assert!(text.contains("\r\ndate: "), "{text}");
        (without_date.join("\r\n"), kept)
    }

    fn pieces(
        parts: &[&'static str],
    ) -> http::Response<impl Body<Data = Bytes, Error = io::Error>> {
        let frames = parts
            .iter()
            .map(|p| Ok(http_body::Frame::data(Bytes::from_static(p.as_bytes()))));
        http::Response::new(StreamBody::new(futures_util::stream::iter(
            frames.collect::<Vec<_>>(),
        )))
    }

    const KEEP: Asked = Asked {
        head: false,
        http10: false,
        keep_alive: true,
    };

    #[tokio::test]
    async fn bodies_go_out_framed_by_length_or_in_chunks_through_partial_writes() {
        let (text, kept) = wire(pieces(&["hello", "", "world!"]), KEEP).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
             5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"
        );
        assert!(kept);

        let (text, kept) = wire(http::Response::new(Full::new(Bytes::from("abc"))), KEEP).await;
        assert_eq!(text, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc");
        assert!(kept);

        let http10 = Asked {
            http10: true,
            ..KEEP
        };
        let (text, kept) = wire(pieces(&["a", "b"]), http10).await;
        assert_eq!(text, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nab");
        assert!(
            !kept,
            "an HTTP/1.0 body of unknown length ends with the connection"
        );

        let head = Asked { head: true, ..KEEP };
        let mut resp = http::Response::new(Full::new(Bytes::from("abc")));
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(3));
        let (text, kept) = wire(resp, head).await;
        assert_eq!(text, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n");
        assert!(kept);
    }

    #[tokio::test]
    async fn an_answer_that_breaks_its_length_or_says_close_ends_the_connection() {
        let mut short = pieces(&["abc"]);
        short
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(10));
        let (text, kept) = wire(short, KEEP).await;
        assert!(text.ends_with("\r\n\r\nabc"), "{text}");
        assert!(!kept, "a short body cannot be told from a cut one");

        let mut long = pieces(&["abc", "def"]);
        long.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(4));
        let (text, kept) = wire(long, KEEP).await;
        assert!(text.ends_with("\r\n\r\nabcd"), "cut at its length: {text}");
        assert!(!kept);

        let mut close = pieces(&["x"]);
        close
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        close
            .headers_mut()
            .insert(header::TRANSFER_ENCODING, HeaderValue::from_static("gzip"));
        let (text, kept) = wire(close, KEEP).await;
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             1\r\nx\r\n0\r\n\r\n",
            "the app's framing and Connection headers are replaced by the writer's"
        );
        assert!(!kept);
    }
}
