//! Streams pass through as they are sent: SSE timing over h1 and h2 with TLS, keep-alive
//! comments on quiet streams, and a client that goes away cancels the gateway's request.

use crate::support::upstream::channel_response;
use crate::support::{tokens, Frontdoor, Proto, TestUpstream};
use bytes::Bytes;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENTS: usize = 10;
const SPACING: Duration = Duration::from_millis(100);

/// An upstream that sends EVENTS events SPACING apart and records when it sent each.
async fn ticking_upstream() -> (TestUpstream, Arc<Mutex<Vec<Instant>>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sent2 = sent.clone();
    let up = TestUpstream::start(move |_req| {
        let sent = sent2.clone();
        async move {
            let (tx, resp) = channel_response("text/event-stream");
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SPACING);
                for i in 0..EVENTS {
                    tick.tick().await;
                    sent.lock().push(Instant::now());
                    let ev = format!("id: {i}\nevent: message\ndata: {{\"n\":{i}}}\n\n");
                    if tx.send(Bytes::from(ev)).await.is_err() {
                        return;
                    }
                }
            });
            resp
        }
    })
    .await;
    (up, sent)
}

#[tokio::test]
async fn sse_events_arrive_as_they_are_sent_over_h1_and_h2_with_tls() {
    for proto in [Proto::H1, Proto::H2] {
        let (up, sent) = ticking_upstream().await;
        let fd = Frontdoor::builder().upstream(&up.url()).start().await;
        let c = fd.client(proto);
        let mut resp = c
            .send(
                c.req("GET", "/sse")
                    .header("authorization", tokens::bearer("alice"))
                    .header("accept", "text/event-stream"),
            )
            .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-accel-buffering"], "no");
        let mut arrived = Vec::new();
        let mut text = String::new();
        while let Some(frame) = resp.body_mut().frame().await {
            let frame = frame.unwrap();
            if let Some(d) = frame.data_ref() {
                let chunk = String::from_utf8_lossy(d);
                for _ in 0..chunk.matches("data:").count() {
                    arrived.push(Instant::now());
                }
                text.push_str(&chunk);
            }
        }
        let sent = sent.lock().clone();
        assert_eq!(
            arrived.len(),
            EVENTS,
            "{proto:?}: every event arrived:\n{text}"
        );
        assert_eq!(sent.len(), EVENTS);
        for i in 0..EVENTS {
            let delay = arrived[i].duration_since(sent[i]);
            assert!(
                delay < Duration::from_millis(50),
                "{proto:?}: event {i} held back {delay:?} (buffering?)"
            );
            if i > 0 {
                let gap = arrived[i].duration_since(arrived[i - 1]);
                assert!(
                    gap > SPACING / 2 && gap < SPACING * 3 / 2,
                    "{proto:?}: gap before event {i} was {gap:?}, sent {SPACING:?} apart"
                );
            }
        }
    }
}

#[tokio::test]
async fn quiet_streams_get_keepalive_comments_between_events_only() {
    let up = TestUpstream::start(|_req| async {
        let (tx, resp) = channel_response("text/event-stream");
        tokio::spawn(async move {
            // Half an event, a pause, the rest: no comment may land inside the event.
            let _ = tx
                .send(Bytes::from_static(b"event: message\ndata: {\"a\""))
                .await;
            tokio::time::sleep(Duration::from_millis(450)).await;
            let _ = tx.send(Bytes::from_static(b":1}\n\n")).await;
            tokio::time::sleep(Duration::from_millis(450)).await;
            let _ = tx.send(Bytes::from_static(b"data: end\n\n")).await;
        });
        resp
    })
    .await;
    let fd = Frontdoor::builder()
        .upstream(&up.url())
        .server("sse_keepalive: 100ms")
        .start()
        .await;
    let c = fd.client(Proto::H1);
    let resp = c.get_as("alice", "/sse").await;
    let body = crate::support::body_bytes(resp).await;
    let text = String::from_utf8_lossy(&body);
    let (first_event, rest) = text
        .trim_start_matches(": keep-alive\n")
        .split_once("\n\n")
        .unwrap();
    assert_eq!(
        first_event, "event: message\ndata: {\"a\":1}",
        "event split by a comment:\n{text}"
    );
    assert!(
        rest.matches(": keep-alive\n").count() >= 2,
        "keep-alives in the quiet gap:\n{text}"
    );
    assert!(rest.ends_with("data: end\n\n"));
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    for proto in [Proto::H1, Proto::H2] {
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<Instant>();
        let closed_tx = Arc::new(Mutex::new(Some(closed_tx)));
        let up = TestUpstream::start(move |_req| {
            let closed_tx = closed_tx.clone();
            async move {
                let (tx, resp) = channel_response("text/event-stream");
                tokio::spawn(async move {
                    loop {
                        if tx
                            .send(Bytes::from_static(b"data: tick\n\n"))
                            .await
                            .is_err()
                        {
                            if let Some(s) = closed_tx.lock().take() {
                                let _ = s.send(Instant::now());
                            }
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                });
                resp
            }
        })
        .await;
        let fd = Frontdoor::builder().upstream(&up.url()).start().await;
        let c = fd.client(proto);
        let mut resp = c.get_as("alice", "/sse").await;
        for _ in 0..3 {
            resp.body_mut().frame().await.unwrap().unwrap();
        }
        let dropped_at = Instant::now();
        drop(resp);
        drop(c);
        let closed = tokio::time::timeout(Duration::from_secs(5), closed_rx)
            .await
            .unwrap_or_else(|_| {
                panic!("{proto:?}: upstream stream still running 5 s after the client left")
            })
            .unwrap();
        assert!(
            closed.duration_since(dropped_at) < Duration::from_secs(2),
            "{proto:?}"
        );
    }
}
