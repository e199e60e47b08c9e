//! MCP session ids belong to the user who first received them.

use crate::support::upstream::{channel_response, full, Body};
use crate::support::{body_json, tokens, Frontdoor, Proto, TestUpstream};
use bytes::Bytes;
use http::Response;

#[tokio::test]
async fn another_users_session_id_is_a_404_that_never_reaches_the_gateway() {
    let up = TestUpstream::start(|req| async move {
        let mut b = Response::builder().header("content-type", "application/json");
        if req.headers().get("mcp-session-id").is_none() {
            b = b.header("mcp-session-id", "sess-of-alice");
        }
        b.body(full("{}")).unwrap() as Response<Body>
    })
    .await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H2);
    let init = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("alice")),
        )
        .await;
    assert_eq!(init.headers()["mcp-session-id"], "sess-of-alice");
    let before = up.seen().len();

    let stolen = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("bob"))
                .header("mcp-session-id", "sess-of-alice"),
        )
        .await;
    assert_eq!(stolen.status(), 404);
    assert_eq!(body_json(stolen).await["error"], "session_not_found");
    assert_eq!(
        up.seen().len(),
        before,
        "bob's request never reached a gateway"
    );

    let own = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("alice"))
                .header("mcp-session-id", "sess-of-alice"),
        )
        .await;
    assert_eq!(own.status(), 200);

    // Ending the session releases the id.
    let end = c
        .send(
            c.req("DELETE", "/mcp")
                .header("authorization", tokens::bearer("alice"))
                .header("mcp-session-id", "sess-of-alice"),
        )
        .await;
    assert_eq!(end.status(), 200);
    assert_eq!(up.seen().last().unwrap().method, http::Method::DELETE);
    assert!(fd
        .metrics_text()
        .await
        .contains("mcp_frontdoor_bound_sessions 0"));
}

#[tokio::test]
async fn legacy_sse_session_ids_are_bound_from_the_endpoint_event() {
    let up = TestUpstream::start(|req| async move {
        if req.uri().path() == "/sse" {
            let (tx, resp) = channel_response("text/event-stream");
            tokio::spawn(async move {
                let _ = tx
                    .send(Bytes::from_static(
                        b"event: endpoint\ndata: /message?sessionId=leg",
                    ))
                    .await;
                let _ = tx.send(Bytes::from_static(b"acy-1\n\n")).await;
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            });
            resp
        } else {
            Response::builder().status(202).body(full("")).unwrap()
        }
    })
    .await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let mut stream = c.get_as("alice", "/sse").await;
    let mut got = String::new();
    while !got.contains("\n\n") {
        let f = http_body_util::BodyExt::frame(stream.body_mut())
            .await
            .unwrap()
            .unwrap();
        got.push_str(&String::from_utf8_lossy(f.data_ref().unwrap()));
    }
    assert!(got.contains("sessionId=legacy-1"));
    let seen_before = up.seen().len();
    let stolen = c
        .send(
            c.req("POST", "/message?sessionId=legacy-1")
                .header("authorization", tokens::bearer("bob")),
        )
        .await;
    assert_eq!(stolen.status(), 404);
    assert_eq!(up.seen().len(), seen_before);
    let own = c
        .send(
            c.req("POST", "/message?sessionId=legacy-1")
                .header("authorization", tokens::bearer("alice")),
        )
        .await;
    assert_eq!(own.status(), 202);
}
