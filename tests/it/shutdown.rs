//! Graceful shutdown: in-flight requests finish, new connections are refused, and streams
//! that would never end are cut at the deadline.

use crate::support::upstream::{channel_response, json_response};
use crate::support::{tokens, Frontdoor, Proto, TestUpstream};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::time::{Duration, Instant};

#[tokio::test]
async fn in_flight_request_completes_and_new_connections_are_refused() {
    let up = TestUpstream::start(|_req| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        json_response("{\"slow\":true}")
    })
    .await;
    let mut fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let in_flight = tokio::spawn({
        let c = c.clone();
        async move { c.get_as("alice", "/mcp").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    fd.shutdown.trigger(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = tokio::net::TcpStream::connect(fd.addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted during shutdown"
    );

    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        &crate::support::body_bytes(resp).await[..],
        b"{\"slow\":true}"
    );
    tokio::time::timeout(Duration::from_secs(5), fd.join())
        .await
        .expect("run returned after draining")
        .unwrap();
}

#[tokio::test]
async fn open_streams_are_cut_at_the_deadline() {
    let up = TestUpstream::start(|_req| async {
        let (tx, resp) = channel_response("text/event-stream");
        tokio::spawn(async move {
            while tx.send(Bytes::from_static(b"data: x\n\n")).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        resp
    })
    .await;
    let mut fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H2);
    let mut stream = c
        .send(
            c.req("GET", "/sse")
                .header("authorization", tokens::bearer("alice")),
        )
        .await;
    stream.body_mut().frame().await.unwrap().unwrap();
    let t0 = Instant::now();
    fd.shutdown.trigger(Duration::from_millis(300));
    tokio::time::timeout(Duration::from_secs(5), fd.join())
        .await
        .expect("run returned at the deadline")
        .unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "stream cut before the grace period: {took:?}"
    );
    // The client sees the stream end (cleanly or with an error) soon after.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.body_mut().frame().await {}
    })
    .await;
    assert!(ended.is_ok(), "stream still open after shutdown");
}

#[tokio::test]
async fn idle_keepalive_connections_do_not_delay_shutdown() {
    for proto in [Proto::H1, Proto::H2] {
        let up = TestUpstream::json().await;
        let mut fd = Frontdoor::builder().upstream(&up.url()).start().await;
        let c = fd.client(proto);
        assert_eq!(c.get_as("alice", "/mcp").await.status(), 200);
        // `c` stays alive: its pooled connection is idle but open.
        let t0 = Instant::now();
        fd.shutdown.trigger(Duration::from_secs(20));
        tokio::time::timeout(Duration::from_secs(10), fd.join())
            .await
            .unwrap_or_else(|_| panic!("{proto:?}: an idle connection held shutdown"))
            .unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{proto:?}: took {:?}",
            t0.elapsed()
        );
        drop(c);
    }
}
