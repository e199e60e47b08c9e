//! Response bodies pass through frame by frame: nothing is collected, each chunk is handed to
//! the client the moment the gateway sends it. The wrapper counts bytes, adds keep-alive
//! comments to quiet event streams, learns legacy SSE session ids, and, when dropped (stream
//! done or client gone), drops the gateway response too, which cancels the upstream request.

use super::exchange::Exchange;
use super::sessions::SessionBindings;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

/// Keep-alive comments for quiet event streams. A comment is only inserted at a line start,
/// so it can never split an event's line; a comment line never dispatches an event.
pub struct Keepalive {
    interval: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    at_line_start: bool,
}

impl Keepalive {
    /// Sends `: keep-alive` after `interval` without data.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            sleep: Box::pin(tokio::time::sleep(interval)),
            at_line_start: true,
        }
    }

    fn reset(&mut self) {
        let next = tokio::time::Instant::now() + self.interval;
        self.sleep.as_mut().reset(next);
    }
}

/// Watches the first bytes of a legacy `/sse` stream for the `endpoint` event's session id.
pub struct EndpointSniffer {
    seen: Vec<u8>,
    bindings: Arc<SessionBindings>,
}

const SNIFF_LIMIT: usize = 4096;

impl EndpointSniffer {
    /// Binds the session id it finds to the exchange's user.
    pub fn new(bindings: Arc<SessionBindings>) -> Self {
        Self {
            seen: Vec::new(),
            bindings,
        }
    }

    /// Feeds a chunk; returns true when done (found, or gave up after [`SNIFF_LIMIT`] bytes).
    fn feed(&mut self, data: &[u8], slug: &str) -> bool {
        let room = SNIFF_LIMIT.saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&data[..data.len().min(room)]);
        if let Some(id) = find_session_id(&self.seen) {
            self.bindings.bind(&id, slug);
            return true;
        }
        self.seen.len() >= SNIFF_LIMIT
    }
}

/// The session id in the URL of an SSE `endpoint` event (`data: /message?sessionId=...`,
/// the key spelled any way a gateway spells it), once its line is complete.
pub fn find_session_id(buf: &[u8]) -> Option<String> {
    let complete = &buf[..buf.iter().rposition(|b| *b == b'\n')?];
    complete.split(|b| *b == b'\n').find_map(|line| {
        let data = line.strip_prefix(b"data:")?;
        let url = std::str::from_utf8(data).ok()?.trim();
        let query = url.split_once('?')?.1.split('#').next()?;
        super::session_ids::from_query(query)
            .ok()
            .flatten()
            .filter(|id| !id.is_empty())
    })
}

pin_project! {
    /// The gateway's response body on its way to the client.
    pub struct ProxyBody<B> {
        #[pin]
        inner: B,
        exchange: Exchange,
        keepalive: Option<Keepalive>,
        sniffer: Option<EndpointSniffer>,
    }
}

impl<B> ProxyBody<B> {
    /// Wraps `inner`; `keepalive` and `sniffer` only for event streams.
    pub fn new(
        inner: B,
        exchange: Exchange,
        keepalive: Option<Keepalive>,
        sniffer: Option<EndpointSniffer>,
    ) -> Self {
        Self {
            inner,
            exchange,
            keepalive,
            sniffer,
        }
    }
}

impl<B> Body for ProxyBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.exchange.sent(data.len());
                    if let Some(k) = this.keepalive.as_mut() {
                        if let Some(last) = data.last() {
                            k.at_line_start = *last == b'\n';
                        }
                        k.reset();
                    }
                    if let Some(s) = this.sniffer.as_mut() {
                        if s.feed(data, this.exchange.user()) {
                            *this.sniffer = None;
                        }
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.exchange.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Pending => {
                let Some(k) = this.keepalive.as_mut() else {
                    return Poll::Pending;
                };
                ready!(k.sleep.as_mut().poll(cx));
                k.reset();
                // Re-arm the timer's waker after the reset.
                let _ = k.sleep.as_mut().poll(cx);
                if !k.at_line_start {
                    return Poll::Pending;
                }
                const COMMENT: &[u8] = b": keep-alive\n";
                this.exchange.sent(COMMENT.len());
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(COMMENT)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// Counts request body bytes as they stream to the gateway.
    pub struct Counted<B> {
        #[pin]
        inner: B,
        count: Arc<AtomicU64>,
    }
}

impl<B> Counted<B> {
    /// Adds every data frame's length to `count`.
    pub fn new(inner: B, count: Arc<AtomicU64>) -> Self {
        Self { inner, count }
    }
}

impl<B: Body<Data = Bytes>> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if let Some(d) = f.data_ref() {
                this.count.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::find_session_id;

    #[test]
    fn session_id_found_only_when_its_line_is_complete() {
        let found = |b: &[u8]| find_session_id(b);
        assert_eq!(
            found(b"event: endpoint\ndata: /message?sessionId=abc-123\n\n").as_deref(),
            Some("abc-123")
        );
        assert_eq!(
            found(b"event: endpoint\ndata: /message?sessionId=abc"),
            None
        );
        assert_eq!(
            found(b"data: /m?x=1&sessionId=z9&y=2\r\n").as_deref(),
            Some("z9")
        );
    }

    #[test]
    fn every_gateway_spelling_of_the_endpoint_key_is_found() {
        for (event, id) in [
            (
                &b"event: endpoint\ndata: /message?sessionid=GO7SDK\n\n"[..],
                "GO7SDK",
            ),
            (
                &b"event: endpoint\ndata: /messages/?session_id=py1\n\n"[..],
                "py1",
            ),
            (
                &b"event: endpoint\ndata: http://gw:8811/m?SessionId=x%2Dy\n\n"[..],
                "x-y",
            ),
        ] {
            assert_eq!(find_session_id(event).as_deref(), Some(id));
        }
        // Two different ids in one endpoint: nothing a client could use, nothing bound.
        assert_eq!(find_session_id(b"data: /m?sessionid=a&sessionId=b\n"), None);
    }
}
