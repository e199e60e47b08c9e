//! HTTP/1.1 connections served by the front door itself (HTTP/2 stays hyper's).
//!
//! Why not hyper's h1 server: it keeps an 8 KiB read and an 8 KiB write buffer per
//! connection for as long as the connection lives, and an MCP client's event stream is a
//! connection that is quiet for hours (docs/BENCHMARKS.md, issue 15). Here a connection holds
//! its socket, the bytes it was sent and has not used yet (usually none) and the state of its
//! request; reads go through one per-thread buffer borrowed within a poll ([`Core::poll_fill`]),
//! writes hand the response's own bytes to the socket.
//!
//! Everything a client sends is attacker input. The head is bounded and parsed by `httparse`
//! ([`head`]); a request whose body length is ambiguous (both lengths, a length that is not one
//! number, a coding other than `chunked`) is refused with 400 and the connection closes, so no
//! byte of one request can be read as the start of another ([`head::framing`]).
//!
//! One request at a time: a pipelined request waits in [`Core::buf`] until the answer before
//! it has gone out. The connection is closed after an answer when the client asked
//! (`Connection: close`, HTTP/1.0 without keep-alive), when the listener asked
//! ([`Handle::close`]), or when the request's body was not read to its end and cannot be
//! skipped cheaply ([`body::settle`]).

mod body;
mod head;
mod write;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Each read from a client: a buffer of this size exists once per thread.
const READ_SIZE: usize = 16 * 1024;
/// After a refusal, how long the client's unread bytes are read and dropped before the socket
/// closes (closing with unread bytes sends a reset, which can destroy the refusal on its way).
const LINGER: Duration = Duration::from_millis(500);
/// ... and how many bytes at most.
const LINGER_MAX: usize = 64 * 1024;

thread_local! {
    /// The buffer every connection of the thread reads into. It is only ever borrowed within
    /// one poll, then what was read is copied into a buffer of its exact size.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_SIZE].into_boxed_slice());
}

/// What the parts of one connection share: the loop, the request body it handed out, and
/// the listener's [`Handle`].
struct Core<I> {
    io: I,
    /// Read and not used yet: the start of a head, body bytes, a pipelined request. Empty,
    /// without an allocation, while the connection is quiet.
    buf: Bytes,
    body: body::State,
    /// Asked to close: no further request is read, and an answer in progress says so.
    closing: bool,
}

type Shared<I> = Arc<Mutex<Core<I>>>;

impl<I: AsyncRead + Unpin> Core<I> {
    /// Reads what the socket has onto the end of `buf`; `Ok(0)` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        SCRATCH.with_borrow_mut(|scratch| {
            let mut rb = ReadBuf::new(scratch);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
            let got = rb.filled();
            if !got.is_empty() {
                self.buf = if self.buf.is_empty() {
                    Bytes::copy_from_slice(got)
                } else {
                    // Rare: a head in pieces, or a pipelined request behind a read's end.
                    let mut joined = BytesMut::with_capacity(self.buf.len() + got.len());
                    joined.extend_from_slice(&self.buf);
                    joined.extend_from_slice(got);
                    joined.freeze()
                };
            }
            Poll::Ready(Ok(got.len()))
        })
    }

    /// Ready when the client has gone (its end of the connection closed or broke) while its
    /// request is answered. Bytes it sends meanwhile (a pipelined request) are kept, and then
    /// nothing more is read until the answer is out.
    fn poll_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.buf.is_empty() || !self.body.is_done() {
            // The body's reader owns the reading, or a next request is already waiting.
            return Poll::Pending;
        }
        match self.poll_fill(cx) {
            Poll::Ready(Ok(0) | Err(_)) => Poll::Ready(()),
            Poll::Ready(Ok(_)) | Poll::Pending => Poll::Pending,
        }
    }
}

/// The listener's hold on a connection: it can ask it to close.
#[derive(Clone)]
pub struct Handle<I>(Shared<I>);

impl<I> Handle<I> {
    /// Finish the request in progress (its answer says `connection: close`) and close; an
    /// idle connection closes when next polled.
    pub fn close(&self) {
        self.0.lock().closing = true;
    }
}

/// A connection to serve with [`Connection::serve`].
pub struct Connection<I>(Shared<I>);

impl<I> Connection<I>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub fn new(io: I) -> (Self, Handle<I>) {
        let core = Arc::new(Mutex::new(Core {
            io,
            buf: Bytes::new(),
            body: body::State::Done,
            closing: false,
        }));
        (Self(core.clone()), Handle(core))
    }

    /// Serves requests with `call` until the client closes, a request is refused, an answer
    /// ends the connection, or the [`Handle`] asks it to close.
    pub async fn serve<F, Fut, B>(self, mut call: F)
    where
        F: FnMut(http::Request<Body>) -> Fut,
        Fut: Future<Output = http::Response<B>>,
        B: http_body::Body<Data = Bytes>,
        B::Error: std::fmt::Display,
    {
        let core = self.0;
        // Whether the close reads what the client still sends (a refusal, a body left unread).
        let linger = loop {
            let head = match head::read(&core).await {
                Ok(Some(head)) => head,
                Ok(None) => break false,
                Err(refusal) => {
                    write::refusal(&core, refusal).await;
                    break true;
                }
            };
            let asked = head.asked();
            let req = head.into_request(&core);
            // In a box of its own while it runs: inline, the app's future (routing, the
            // gateway lookup, the exchange) would size this connection's future, which an
            // idle event stream keeps for hours (issue 15: 3.7 KiB of its 7.9).
            let Some(resp) = answered(&core, Box::pin(call(req))).await else {
                tracing::debug!("client left before its answer");
                break false;
            };
            let kept = write::response(&core, resp, &asked).await;
            if !(kept && body::settle(&core).await) {
                break true;
            }
        };
        close(&core, linger).await;
    }
}

/// The app's answer, or `None` when the client left before it was ready (the app's work
/// is dropped with it: a gateway start it was waiting for goes on, the request does not).
async fn answered<I, R>(core: &Shared<I>, answer: impl Future<Output = R>) -> Option<R>
where
    I: AsyncRead + Unpin,
{
    let mut answer = pin!(answer);
    unless_gone(core, |cx| answer.as_mut().poll(cx)).await
}

/// Polls with `poll` until it is ready, or `None` once the client has gone
/// ([`Core::poll_gone`]).
async fn unless_gone<I, T>(
    core: &Shared<I>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Option<T>
where
    I: AsyncRead + Unpin,
{
    std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = poll(cx) {
            return Poll::Ready(Some(r));
        }
        // Not while `poll` ran: it may read the request body, which locks too.
        core.lock().poll_gone(cx).map(|()| None)
    })
    .await
}

/// Ends the connection: TLS close_notify and FIN, and after a refusal or a body left unread,
/// a short read of what the client still sends so the refusal is not lost to a reset.
async fn close<I>(core: &Shared<I>, linger: bool)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let bye = async {
        std::future::poll_fn(|cx| Pin::new(&mut core.lock().io).poll_shutdown(cx)).await?;
        if linger {
            let mut dropped = 0;
            while dropped < LINGER_MAX {
                let n = std::future::poll_fn(|cx| {
                    let mut c = core.lock();
                    c.buf = Bytes::new();
                    c.poll_fill(cx)
                })
                .await?;
                if n == 0 {
                    break;
                }
                dropped += n;
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(LINGER, bye).await;
}
