//! A lean HTTP/1.1 reverse proxy (plain, no auth, no header work) whose connections hold no
//! buffer while they wait: heads are read and parsed in a per-thread buffer borrowed within
//! one poll, bodies are copied through the same buffer. A measuring prototype for issue 15
//! (how much of the front door's per-idle-stream memory and per-request CPU is hyper's h1
//! server side, which keeps an 8 KiB read and an 8 KiB write buffer per connection), not a
//! product server: it knows exactly what the bench sends (`GET`, `POST` with
//! `Content-Length`) and the framings its upstreams answer with (length, chunked).

use std::cell::RefCell;
use std::sync::Arc;
use tokio::io::Interest;
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
/// hands `f` the buffer and the parsed head. Only a head split over reads is kept between
/// polls, in `carry`.
async fn read_head<R>(
    io: &TcpStream,
    carry: &mut Vec<u8>,
    request: bool,
    mut f: impl FnMut(&[u8], &Head) -> R,
) -> anyhow::Result<Option<R>> {
    loop {
        if carry.is_empty() {
            io.readable().await?;
        }
        let done = SCRATCH.with(|s| -> anyhow::Result<Option<Option<R>>> {
            let mut buf = s.borrow_mut();
            let have = carry.len();
            buf[..have].copy_from_slice(carry);
            let n = match io.try_read(&mut buf[have..]) {
                Ok(0) if have == 0 => return Ok(Some(None)),
                Ok(0) => anyhow::bail!("closed inside a head"),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && have > 0 => 0,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let filled = &buf[..have + n];
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
            match parsed {
                None => {
                    carry.clear();
                    carry.extend_from_slice(filled);
                    anyhow::ensure!(carry.len() < BUF, "head too large");
                    Ok(None)
                }
                Some((len, count)) => {
                    let default = if request {
                        Framing::Length(0)
                    } else {
                        Framing::Close
                    };
                    let (framing, close) = framing_of(&fields[..count], default)
                        .map_err(|_| anyhow::anyhow!("bad framing"))?;
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
            }
        })?;
        if let Some(out) = done {
            return Ok(out);
        }
        if !carry.is_empty() {
            io.readable().await?;
        }
    }
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
    from: &TcpStream,
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
        match watch {
            Some(client) => {
                tokio::select! {
                    r = from.readable() => r?,
                    r = client.ready(Interest::READABLE) => {
                        // A client that sends while its answer streams is closing or
                        // misbehaving: either way the answer ends.
                        if r?.is_read_closed() { anyhow::bail!("client gone"); }
                        let mut one = [0u8; 1];
                        match client.try_read(&mut one) {
                            Ok(0) => anyhow::bail!("client gone"),
                            Ok(_) => anyhow::bail!("client sent during an answer"),
                            Err(_) => continue,
                        }
                    }
                }
            }
            None => from.readable().await?,
        }
        let rest = SCRATCH.with(|s| -> std::io::Result<Option<Vec<u8>>> {
            let mut buf = s.borrow_mut();
            let cap = buf.len().min(progress.left);
            let n = match from.try_read(&mut buf[..cap]) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Ok(Some(Vec::new()))
                }
                Err(e) => return Err(e),
            };
            let n = progress.take(&buf[..n]);
            let w = match to.try_write(&buf[..n]) {
                Ok(w) => w,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
                Err(e) => return Err(e),
            };
            Ok(Some(buf[w..n].to_vec()))
        })?;
        match rest {
            None if matches!(framing, Framing::Close) => return Ok(false),
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

async fn conn(client: TcpStream, upstream: &str) -> anyhow::Result<()> {
    let mut carry = Vec::new();
    loop {
        // The request head, forwarded as it came (the bench's clients send what the upstream
        // accepts); a pooled connection or a new one.
        let Some((req_head, req)) = read_head(&client, &mut carry, true, |b, h| {
            (b[..h.len].to_vec(), (h.framing, h.close))
        })
        .await?
        else {
            return Ok(());
        };
        let pooled = POOL.with(|p| p.borrow_mut().pop());
        let up = match pooled {
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
        body(&client, &up, std::mem::take(&mut carry), req_framing, None).await?;
        let mut up_carry = Vec::new();
        let (resp_head, resp) = read_head(&up, &mut up_carry, false, |b, h| {
            (b[..h.len].to_vec(), (h.framing, h.close))
        })
        .await?
        .ok_or_else(|| anyhow::anyhow!("upstream closed"))?;
        write_all(&client, &resp_head).await?;
        drop(resp_head);
        let (resp_framing, up_close) = resp;
        let ended = body(&up, &client, up_carry, resp_framing, Some(&client)).await?;
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
