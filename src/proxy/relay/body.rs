//! The body of a gateway's answer, read from its socket only when the socket is readable,
//! into a buffer that leaves with the data: a quiet event stream holds a socket and its
//! framing state, nothing more. Once the body has been read to its framed end with nothing
//! left over, the connection goes back to its pool (see [`super::pool`]).

use super::head::READ_SIZE;
use super::pool::Pools;
use crate::http1::chunked::{Framing, Malformed};
use bytes::{Bytes, BytesMut};
use http::uri::Authority;
use http_body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

/// Where a connection goes back to when its answer ended cleanly.
pub(super) struct Home {
    pub pools: Arc<Pools>,
    pub gateway: Authority,
}

/// The body of a relayed answer.
pub struct RelayBody {
    /// `None` once the body is over.
    io: Option<TcpStream>,
    /// Bytes read and not yet handed on (empty while the stream is quiet).
    pending: Bytes,
    framing: Framing,
    /// Set when the connection may carry another request after this answer.
    home: Option<Home>,
}

impl RelayBody {
    pub(super) fn new(io: TcpStream, rest: Bytes, framing: Framing, home: Option<Home>) -> Self {
        let mut body = Self {
            io: Some(io),
            pending: rest,
            framing,
            home,
        };
        if body.framing.is_done() {
            body.finish();
        }
        body
    }

    /// The body is over: the connection goes back to its pool if the answer ended exactly
    /// where its framing said (nothing past it), else it closes; nothing read is kept.
    fn finish(&mut self) {
        let clean = self.framing.is_done() && self.pending.is_empty();
        if let (true, Some(home), Some(io)) = (clean, self.home.take(), self.io.take()) {
            home.pools.put(home.gateway, io);
        }
        self.io = None;
        self.home = None;
        self.pending = Bytes::new();
    }

    /// The body ends with `e` (the client sees a cut stream); the connection closes.
    fn fail(&mut self, e: impl Into<RelayError>) -> Poll<Option<Result<Frame<Bytes>, RelayError>>> {
        self.home = None;
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
            if this.framing.is_done() {
                this.finish();
                return Poll::Ready(None);
            }
            match this.framing.next_data(&mut this.pending) {
                Ok(Some(data)) => {
                    if this.framing.is_done() {
                        // The last bytes: the connection is free before the client has them
                        // (a client may not ask for the end once it knows it has them all).
                        this.finish();
                    } else if this.pending.is_empty() {
                        // An empty slice still holds the read buffer.
                        this.pending = Bytes::new();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(None) if this.framing.is_done() => continue,
                Ok(None) => this.pending = Bytes::new(),
                Err(e) => return this.fail(e),
            }
            let Some(io) = this.io.as_mut() else {
                return Poll::Ready(None);
            };
            if let Err(e) = ready!(io.poll_read_ready(cx)) {
                return this.fail(e);
            }
            // The buffer exists from here until its data is handed on. The read goes through
            // `AsyncRead`, which marks the socket not ready after a short read (a `try_read`
            // would leave it ready, and the next poll would find nothing with a system call).
            let mut buf = BytesMut::with_capacity(READ_SIZE);
            match poll_read_buf(Pin::new(io), cx, &mut buf) {
                Poll::Ready(Ok(0)) => {
                    if let Err(e) = this.framing.at_close() {
                        return this.fail(e);
                    }
                    // Ended by the close: nothing to give back.
                    this.home = None;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => this.pending = buf.freeze(),
                Poll::Ready(Err(e)) => return this.fail(e),
                // The readiness was stale: the reactor wakes this body when data arrives.
                Poll::Pending => return Poll::Pending,
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
