//! A request's body, read from the connection as whoever holds it reads it (the proxy streams
//! it to a gateway), and what becomes of it when the answer is out before its end.

use super::{Core, Shared};
use crate::http1::chunked::{Framing, Malformed};
use crate::server::drain::{DRAIN_MAX_BYTES, DRAIN_MAX_TIME};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Where the body of the request in progress is.
pub(super) enum State {
    /// No body, or read to its end.
    Done,
    Reading {
        framing: Framing,
        /// Bytes of `100 Continue` still to send before the first read (`Expect:
        /// 100-continue`); cleared when the answer goes out first.
        continue_left: usize,
        /// The holder dropped it before its end.
        dropped: bool,
    },
    /// Cut: the answer went out while someone still held it, or it broke its framing, or the
    /// client closed in the middle. The connection closes after the answer.
    Broken,
}

impl State {
    pub fn is_done(&self) -> bool {
        matches!(self, State::Done)
    }

    /// The answer's head goes out now: whether the connection may still be kept for the body,
    /// and the end of a `100 Continue` that must go out before the head (one cut in the middle
    /// of a write). A `100 Continue` not started by then never is: the client may then never
    /// send the body, so the connection is not kept.
    pub fn answer_started(&mut self) -> (bool, &'static [u8]) {
        match self {
            State::Reading { continue_left, .. } if *continue_left > 0 => {
                let left = std::mem::take(continue_left);
                if left == CONTINUE.len() {
                    (false, b"")
                } else {
                    (false, &CONTINUE[CONTINUE.len() - left..])
                }
            }
            State::Reading {
                framing: Framing::Length(n),
                ..
            } => (*n <= DRAIN_MAX_BYTES, b""),
            _ => (true, b""),
        }
    }
}

/// Why a request body stopped early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("the client closed its connection in the middle of the request body")]
    Closed,
    #[error("reading the request body: {0}")]
    Io(#[from] io::Error),
    #[error("the request was answered before its body was read")]
    Cut,
}

/// The request body handed to the app.
struct Incoming<I>(Shared<I>);

/// The body of the request whose head was just read.
pub(super) fn start<I>(
    core: &Shared<I>,
    framing: Framing,
    expect_continue: bool,
) -> axum::body::Body
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if framing.is_done() {
        core.lock().body = State::Done;
        return axum::body::Body::empty();
    }
    core.lock().body = State::Reading {
        framing,
        continue_left: if expect_continue { CONTINUE.len() } else { 0 },
        dropped: false,
    };
    axum::body::Body::new(Incoming(core.clone()))
}

impl<I: AsyncRead + AsyncWrite + Unpin> http_body::Body for Incoming<I> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut core = self.0.lock();
        poll_data(&mut core, cx).map(|r| r.map(|d| d.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().body.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0.lock().body {
            State::Reading { framing, .. } => match framing.exact() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
            _ => SizeHint::with_exact(0),
        }
    }
}

impl<I> Drop for Incoming<I> {
    fn drop(&mut self) {
        if let State::Reading { dropped, .. } = &mut self.0.lock().body {
            *dropped = true;
        }
    }
}

/// The next piece of the body; `None` at its end.
fn poll_data<I: AsyncRead + AsyncWrite + Unpin>(
    core: &mut Core<I>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Bytes, BodyError>>> {
    loop {
        let State::Reading {
            framing,
            continue_left,
            ..
        } = &mut core.body
        else {
            return Poll::Ready(match core.body {
                State::Done => None,
                _ => Some(Err(BodyError::Cut)),
            });
        };
        if framing.is_done() {
            core.body = State::Done;
            return Poll::Ready(None);
        }
        if *continue_left > 0 {
            // The client waits for this before it sends the body.
            let at = CONTINUE.len() - *continue_left;
            let io = Pin::new(&mut core.io);
            match ready!(io.poll_write(cx, &CONTINUE[at..])) {
                Ok(n) if n > 0 => *continue_left -= n,
                Ok(_) => return fail(core, io::Error::from(io::ErrorKind::WriteZero).into()),
                Err(e) => return fail(core, e.into()),
            }
            if *continue_left == 0 {
                if let Err(e) = ready!(Pin::new(&mut core.io).poll_flush(cx)) {
                    return fail(core, e.into());
                }
            }
            continue;
        }
        match framing.next_data(&mut core.buf) {
            Ok(Some(data)) => {
                if framing.is_done() {
                    // Over with this piece: the holder learns it now (`is_end_stream`), so a
                    // body that came whole goes to a gateway in one write with its head, and
                    // may be sent again on a fresh connection.
                    core.body = State::Done;
                }
                if core.buf.is_empty() {
                    // An empty slice still holds the read's allocation.
                    core.buf = Bytes::new();
                }
                return Poll::Ready(Some(Ok(data)));
            }
            Ok(None) if framing.is_done() => continue,
            Ok(None) => {}
            Err(e) => return fail(core, e.into()),
        }
        core.buf = Bytes::new();
        match ready!(core.poll_fill(cx)) {
            Ok(0) => return fail(core, BodyError::Closed),
            Ok(_) => {}
            Err(e) => return fail(core, e.into()),
        }
    }
}

fn fail<I>(core: &mut Core<I>, e: BodyError) -> Poll<Option<Result<Bytes, BodyError>>> {
    tracing::debug!(error = %e, "request body cut");
    core.body = State::Broken;
    Poll::Ready(Some(Err(e)))
}

/// After the answer: whether the connection can read its next request. A body dropped before
/// its end is read and thrown away if what is left is small and arrives soon (nginx's
/// discard, bounded as `server::drain`); one still held by someone is cut, and the
/// connection closes.
pub(super) async fn settle<I: AsyncRead + AsyncWrite + Unpin>(core: &Shared<I>) -> bool {
    {
        let mut c = core.lock();
        match &c.body {
            State::Done => return true,
            State::Broken => return false,
            State::Reading { dropped: false, .. } => {
                c.body = State::Broken;
                return false;
            }
            State::Reading { dropped: true, .. } => {}
        }
    }
    let discard = async {
        let mut thrown = 0u64;
        loop {
            let piece = std::future::poll_fn(|cx| poll_data(&mut core.lock(), cx)).await;
            match piece {
                None => return true,
                Some(Ok(data)) => {
                    thrown += data.len() as u64;
                    if thrown > DRAIN_MAX_BYTES {
                        return false;
                    }
                }
                Some(Err(_)) => return false,
            }
        }
    };
    let done = tokio::time::timeout(DRAIN_MAX_TIME, discard)
        .await
        .unwrap_or(false);
    if !done {
        core.lock().body = State::Broken;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_body_is_over_with_its_last_piece_and_a_broken_one_says_so() {
        let (server, mut client) = tokio::io::duplex(1024);
        let core = super::super::Connection::new(server).0 .0;
        core.lock().buf = Bytes::from_static(b"hello");
        let mut body = start(&core, Framing::Length(5), false);
        assert!(!body.is_end_stream());
        let piece = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(piece, "hello");
        assert!(
            body.is_end_stream(),
            "known to be over without another poll"
        );
        drop(body);
        assert!(
            settle(&core).await,
            "a body read to its end keeps the connection"
        );

        let mut body = start(
            &core,
            Framing::Chunked(crate::http1::chunked::Chunk::start()),
            false,
        );
        client.write_all(b"3\r\nabc\r\nzz\r\n").await.unwrap();
        let piece = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(piece, "abc");
        assert!(
            body.frame().await.unwrap().is_err(),
            "a chunk size that is no number"
        );
        drop(body);
        assert!(!settle(&core).await, "a broken body closes the connection");
    }

    #[tokio::test]
    async fn a_body_still_held_when_the_answer_is_out_is_cut() {
        let (server, _client) = tokio::io::duplex(1024);
        let core = super::super::Connection::new(server).0 .0;
        let mut body = start(&core, Framing::Length(5), false);
        assert!(
            !settle(&core).await,
            "someone still reads it: the connection closes"
        );
        let e = body.frame().await.unwrap().unwrap_err().into_inner();
        assert!(
            matches!(e.downcast_ref::<BodyError>(), Some(BodyError::Cut)),
            "{e:?}"
        );
    }
}
