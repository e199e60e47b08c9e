//! A lean HTTP/1.1 reverse proxy (plain, no auth, no header work) whose connections hold no
//! buffer while they wait: heads are read and parsed in a per-thread buffer borrowed within
//! one poll, bodies are copied through the same buffer. A measuring prototype for issue 15
//! (how much of the front door's per-idle-stream memory and per-request CPU is hyper's h1
//! server side, which keeps an 8 KiB read and an 8 KiB write buffer per connection), not a
//! product server: it knows exactly what the bench sends (`GET`, `POST` with
//! `Content-Length`) and the framings its upstreams answer with (length, chunked).

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

const BUF: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; BUF]);
    /// Idle upstream connections, per thread (as the front door's per-worker pools).
    static POOL: RefCell<Vec<TcpStream>> = const { RefCell::new(Vec::new()) };
}

pub async fn serve(port: u16, upstream: String) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("fd-load lean listening on {}", listener.local_addr()?);
    let upstream: Arc<str> = upstream.into();
    loop {
        let tcp = crate::net::accept(&listener).await;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let _ = conn(tcp, &upstream).await;
        });
    }
}

/// What the proxy needs of a parsed head: its length, its body length, and whether a body
/// of unknown length follows (chunked), or the message ends with the connection.
#[derive(Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

struct Head {
    len: usize,
    framing: Framing,
    close: bool,
}

fn framing_of(headers: &[httparse::Header<'_>], default: Framing) -> Result<(Framing, bool), ()> {
    let mut framing = default;
    let mut close = false;
    for h in headers {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .map_err(|_| ())?
                .trim()
                .parse()
                .map_err(|_| ())?;
            framing = Framing::Length(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = h.value.eq_ignore_ascii_case(b"close");
        }
    }
    Ok((framing, close))
}

/// Reads one head into the per-thread buffer (after `carry`, what the last read left) and
/// hands `f` the buffer and the parsed head, all within one poll. Only a head split over
/// reads, or what came after one, is kept between polls, in `carry`. Reads go through
/// `AsyncRead`, which marks the socket not ready after a short read (`readable()` +
/// `try_read` would cost an extra `EAGAIN` read per request).
async fn read_head<R>(
    io: &mut TcpStream,
    carry: &mut Vec<u8>,
    request: bool,
    mut f: impl FnMut(&[u8], &Head) -> R,
) -> anyhow::Result<Option<R>> {
    // Bytes left from the last message may hold a whole head: parsed once without new bytes.
    let mut left_over = !carry.is_empty();
    loop {
        let step = std::future::poll_fn(|cx| {
            SCRATCH.with(|s| {
                let mut buf = s.borrow_mut();
                let have = carry.len();
                buf[..have].copy_from_slice(carry);
                let mut rb = ReadBuf::new(&mut buf[have..]);
                match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                    Poll::Pending if !left_over => return Poll::Pending,
                    Poll::Pending => left_over = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Ready(Ok(())) if rb.filled().is_empty() && have == 0 => {
                        return Poll::Ready(Ok(Some(None)))
                    }
                    Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                        return Poll::Ready(Err(anyhow::anyhow!("closed inside a head")))
                    }
                    Poll::Ready(Ok(())) => {}
                }
                let n = rb.filled().len();
                Poll::Ready(parse(&buf[..have + n], carry, request, &mut f))
            })
        })
        .await?;
        if let Some(out) = step {
            return Ok(out);
        }
    }
}

/// One parse of `filled`: `Some(Some(_))` when a head was complete, `None` when more is
/// needed (then `filled` is kept in `carry`).
fn parse<R>(
    filled: &[u8],
    carry: &mut Vec<u8>,
    request: bool,
    f: &mut impl FnMut(&[u8], &Head) -> R,
) -> anyhow::Result<Option<Option<R>>> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let parsed = if request {
        let mut r = httparse::Request::new(&mut fields);
        match r.parse(filled)? {
            httparse::Status::Complete(len) => Some((len, r.headers.len())),
            httparse::Status::Partial => None,
        }
    } else {
        let mut r = httparse::Response::new(&mut fields);
        match r.parse(filled)? {
            httparse::Status::Complete(len) => Some((len, r.headers.len())),
            httparse::Status::Partial => None,
        }
    };
    let Some((len, count)) = parsed else {
        anyhow::ensure!(filled.len() < BUF, "head too large");
        carry.clear();
        carry.extend_from_slice(filled);
        return Ok(None);
    };
    let default = if request {
        Framing::Length(0)
    } else {
        Framing::Close
    };
    let (framing, close) =
        framing_of(&fields[..count], default).map_err(|_| anyhow::anyhow!("bad framing"))?;
    let out = f(
        filled,
        &Head {
            len,
            framing,
            close,
        },
    );
    carry.clear();
    carry.extend_from_slice(&filled[len..]);
    carry.shrink_to_fit();
    Ok(Some(Some(out)))
}

/// Writes all of `b`, waiting for room as needed.
async fn write_all(io: &TcpStream, mut b: &[u8]) -> std::io::Result<()> {
    while !b.is_empty() {
        io.writable().await?;
        match io.try_write(b) {
            Ok(n) => b = &b[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Copies a body of `framing` from `from` to `to`, `first` being bytes already read past the
/// head. Chunked bodies pass through as they are; their sizes are followed to find the end.
/// Each read is written within the same poll from the per-thread buffer; only what the peer
/// does not take at once is kept (and freed once written). While waiting for `from`, a close
/// of `watch` (the client, during an answer) ends the copy. `Ok(false)`: ended by a close.
async fn body(
    from: &mut TcpStream,
    to: &TcpStream,
    first: Vec<u8>,
    framing: Framing,
    watch: Option<&TcpStream>,
) -> anyhow::Result<bool> {
    let mut progress = Progress::new(framing);
    let n = progress.take(&first);
    write_all(to, &first[..n]).await?;
    drop(first);
    loop {
        if progress.done() {
            return Ok(true);
        }
        let step = std::future::poll_fn(|cx| {
            if let Some(client) = watch {
                // A client that sends while its answer streams is closing or misbehaving:
                // either way the answer ends.
                while let Poll::Ready(r) = client.poll_read_ready(cx) {
                    r?;
                    let mut one = [0u8; 1];
                    match client.try_read(&mut one) {
                        Ok(0) => return Poll::Ready(Err(anyhow::anyhow!("client gone"))),
                        Ok(_) => return Poll::Ready(Err(anyhow::anyhow!("client sent"))),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(e.into())),
                    }
                }
            }
            // Read and write within one poll when the peer takes it, as the front door's
            // relay does; only what it does not take at once is kept.
            SCRATCH.with(|s| {
                let mut buf = s.borrow_mut();
                let cap = buf.len().min(progress.left);
                let mut rb = ReadBuf::new(&mut buf[..cap]);
                match Pin::new(&mut *from).poll_read(cx, &mut rb) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Ready(Ok(())) => {}
                }
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(None));
                }
                let n = progress.take(&buf[..n]);
                let w = match to.try_write(&buf[..n]) {
                    Ok(w) => w,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                    Err(e) => return Poll::Ready(Err(e.into())),
                };
                Poll::Ready(Ok(Some(buf[w..n].to_vec())))
            })
        })
        .await?;
        match step {
            None if matches!(progress.framing, Framing::Close) => return Ok(false),
            None => anyhow::bail!("closed inside a body"),
            Some(rest) => write_all(to, &rest).await?,
        }
    }
}

/// Where a body passing through is.
struct Progress {
    framing: Framing,
    /// Bytes left of a body of known length (`usize::MAX` otherwise).
    left: usize,
    chunked: Chunked,
}

impl Progress {
    fn new(framing: Framing) -> Self {
        let left = match framing {
            Framing::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        Self {
            framing,
            left,
            chunked: Chunked::default(),
        }
    }

    /// How much of `b` belongs to the body.
    fn take(&mut self, b: &[u8]) -> usize {
        match self.framing {
            Framing::Length(_) => {
                let n = b.len().min(self.left);
                self.left -= n;
                n
            }
            Framing::Chunked => self.chunked.feed(b),
            Framing::Close => b.len(),
        }
    }

    fn done(&self) -> bool {
        match self.framing {
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.chunked.done(),
            Framing::Close => false,
        }
    }
}

/// Follows chunk sizes in a chunked body passing through (RFC 9112 section 7.1), enough for
/// the bench's upstreams: no trailers.
#[derive(Default)]
struct Chunked {
    state: State,
    size: u64,
}

#[derive(Default, PartialEq)]
enum State {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    EndCr,
    EndLf,
    Done,
}

impl Chunked {
    /// How many bytes of `b` belong to the body (all, until its end).
    fn feed(&mut self, b: &[u8]) -> usize {
        let mut i = 0;
        while i < b.len() && self.state != State::Done {
            let c = b[i];
            match self.state {
                State::Size => match (c as char).to_digit(16) {
                    Some(d) => self.size = self.size * 16 + d as u64,
                    None if c == b'\r' => self.state = State::SizeLf,
                    None => self.state = State::Ext,
                },
                State::Ext if c == b'\r' => self.state = State::SizeLf,
                State::Ext => {}
                State::SizeLf => {
                    self.state = if self.size == 0 {
                        State::EndCr
                    } else {
                        State::Data
                    };
                }
                State::Data => {
                    let take = ((b.len() - i) as u64).min(self.size) as usize;
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::DataCr => self.state = State::DataLf,
                State::DataLf => self.state = State::Size,
                State::EndCr => self.state = State::EndLf,
                State::EndLf => self.state = State::Done,
                State::Done => {}
            }
            i += 1;
        }
        i
    }

    fn done(&self) -> bool {
        self.state == State::Done
    }
}

async fn conn(mut client: TcpStream, upstream: &str) -> anyhow::Result<()> {
    let mut carry = Vec::new();
    loop {
        // The request head, forwarded as it came (the bench's clients send what the upstream
        // accepts); a pooled connection or a new one.
        let Some((req_head, req)) = read_head(&mut client, &mut carry, true, |b, h| {
            (b[..h.len].to_vec(), (h.framing, h.close))
        })
        .await?
        else {
            return Ok(());
        };
        let pooled = POOL.with(|p| p.borrow_mut().pop());
        let mut up = match pooled {
            Some(c) => c,
            None => {
                let c = TcpStream::connect(upstream).await?;
                c.set_nodelay(true)?;
                c
            }
        };
        write_all(&up, &req_head).await?;
        drop(req_head);
        let (req_framing, client_close) = req;
        anyhow::ensure!(
            matches!(req_framing, Framing::Length(_)),
            "request body framing"
        );
        body(
            &mut client,
            &up,
            std::mem::take(&mut carry),
            req_framing,
            None,
        )
        .await?;
        let mut up_carry = Vec::new();
        let (resp_head, resp) = read_head(&mut up, &mut up_carry, false, |b, h| {
            (b[..h.len].to_vec(), (h.framing, h.close))
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("upstream closed"))?;
        write_all(&client, &resp_head).await?;
        drop(resp_head);
        let (resp_framing, up_close) = resp;
        let ended = body(&mut up, &client, up_carry, resp_framing, Some(&client)).await?;
        if ended && !up_close {
            POOL.with(|p| p.borrow_mut().push(up));
        }
        if !ended || client_close {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_ends_at_its_last_chunk_however_it_is_split() {
        let wire = b"5;x=y\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\n\r\nNEXT";
        let body = wire.len() - 4;
        for split in 0..wire.len() {
            let mut c = Chunked::default();
            let a = c.feed(&wire[..split]);
            assert_eq!(a, split.min(body));
            let b = c.feed(&wire[split..]);
            assert_eq!(a + b, body, "split at {split}");
            assert!(c.done());
        }
    }

    #[test]
    fn a_length_body_takes_its_length_and_no_more() {
        let mut p = Progress::new(Framing::Length(6));
        assert_eq!(p.take(b"abcd"), 4);
        assert!(!p.done());
        assert_eq!(p.take(b"efGET /"), 2);
        assert!(p.done());
    }
}
