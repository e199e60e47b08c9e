//! Early answers every client can read. A response sent before the request body was read (a
//! 401 before a POST body, a 413 by Content-Length) ends an HTTP/2 stream with
//! RST_STREAM(NO_ERROR), which some clients (curl 7.88, Debian 12's) report as a framing
//! error instead of showing the status; over HTTP/1.1 it costs the keep-alive connection.
//! Like nginx's body discard, a small rest of the body is read and thrown away before the
//! response goes out; a larger one (or one that does not arrive in time) is left, and the
//! answer goes out as before.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;

/// The most body bytes read and discarded before an early answer.
pub const DRAIN_MAX_BYTES: u64 = 64 * 1024;
/// The longest an early answer waits for the rest of a body.
pub const DRAIN_MAX_TIME: Duration = Duration::from_secs(1);

pin_project! {
    /// A request body that, when dropped before its end, hands what is left back to the
    /// connection (so the rest can be discarded before the answer).
    pub struct Returnable<B> {
        inner: Option<B>,
        back: Option<oneshot::Sender<B>>,
    }

    impl<B> PinnedDrop for Returnable<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let (Some(rest), Some(back)) = (this.inner.take(), this.back.take()) {
                let _ = back.send(rest);
            }
        }
    }
}

/// Wraps `body`; the receiver gets the unread rest if the body is dropped before its end.
pub fn returnable<B: Body>(body: B) -> (Returnable<B>, oneshot::Receiver<B>) {
    let (tx, rx) = oneshot::channel();
    (
        Returnable {
            inner: Some(body),
            back: Some(tx),
        },
        rx,
    )
}

impl<B: Body<Data = Bytes> + Unpin> Body for Returnable<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let r = Pin::new(inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            // Read to its end (or broken): nothing to hand back.
            this.back.take();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

/// How reading the rest of a body went.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Read to its end; these are the bytes (at most [`DRAIN_MAX_BYTES`]).
    Whole(Bytes),
    /// Larger than the bound, slower than the time, or broken: left unread.
    Left,
}

/// Reads the rest of `body` within [`DRAIN_MAX_BYTES`] and [`DRAIN_MAX_TIME`]. A body whose
/// announced size is over the bound is not read at all.
pub async fn drain<B>(body: B) -> Drained
where
    B: Body<Data = Bytes> + Unpin,
{
    if body.size_hint().lower() > DRAIN_MAX_BYTES {
        return Drained::Left;
    }
    tokio::time::timeout(DRAIN_MAX_TIME, whole(body, DRAIN_MAX_BYTES))
        .await
        .ok()
        .flatten()
        .map_or(Drained::Left, Drained::Whole)
}

/// `body` read to its end in one piece when it is at most `max` bytes: its one data frame as
/// it came (the usual case: no copy), or the frames joined; `None` when it is larger or
/// breaks. Trailers are dropped.
pub async fn whole<B>(mut body: B, max: u64) -> Option<Bytes>
where
    B: Body<Data = Bytes> + Unpin,
{
    let mut first: Option<Bytes> = None;
    let mut joined: Option<bytes::BytesMut> = None;
    let mut len = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue;
        };
        len += data.len() as u64;
        if len > max {
            return None;
        }
        match (&mut joined, first.take()) {
            (Some(j), _) => j.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(f)) => {
                let mut j = bytes::BytesMut::with_capacity(f.len() + data.len());
                j.extend_from_slice(&f);
                j.extend_from_slice(&data);
                joined = Some(j);
            }
        }
    }
    Some(joined.map_or_else(|| first.unwrap_or_default(), bytes::BytesMut::freeze))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    #[tokio::test]
    async fn a_dropped_unread_body_comes_back_and_a_read_one_does_not() {
        let (b, rx) = returnable(Full::new(Bytes::from_static(b"{\"id\":1}")));
        drop(b);
        let rest = rx.await.expect("handed back");
        assert_eq!(
            drain(rest).await,
            Drained::Whole(Bytes::from_static(b"{\"id\":1}"))
        );

        let (b, rx) = returnable(Full::new(Bytes::from_static(b"x")));
        let _ = b.collect().await;
        assert!(
            rx.await.is_err(),
            "a body read to its end is not handed back"
        );
    }

    #[tokio::test]
    async fn a_body_in_one_frame_is_taken_as_it_came_and_frames_are_joined() {
        let one = Bytes::from_static(b"{\"id\":1}");
        let got = whole(Full::new(one.clone()), 64).await.unwrap();
        assert_eq!(got.as_ptr(), one.as_ptr(), "no copy of a single frame");
        let parts = || {
            futures_util::stream::iter(["ab", "c", "de"].map(|p| {
                Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(p.as_bytes())))
            }))
        };
        assert_eq!(
            whole(StreamBody::new(parts()), 5).await.as_deref(),
            Some(&b"abcde"[..])
        );
        assert_eq!(
            whole(StreamBody::new(parts()), 4).await,
            None,
            "over the bound"
        );
    }

    #[tokio::test]
    async fn over_the_bound_or_too_slow_is_left() {
        let big = Full::new(Bytes::from(vec![0u8; DRAIN_MAX_BYTES as usize + 1]));
        assert_eq!(drain(big).await, Drained::Left);
        let chunks = (0..20).map(|_| {
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![0u8; 8 * 1024])))
        });
        let unsized_big = StreamBody::new(futures_util::stream::iter(chunks));
        assert_eq!(drain(unsized_big).await, Drained::Left);
        let never = StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, std::convert::Infallible>,
        >());
        assert_eq!(drain(never).await, Drained::Left);
    }
}
