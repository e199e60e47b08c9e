//! Gateway failures map to our own JSON errors; the gateway's text is never echoed.

use crate::support::{body_json, Frontdoor, Proto};

#[tokio::test]
async fn refused_connection_is_a_502() {
    let fd = crate::support::frontdoor_with_dead_upstream().await;
    let c = fd.client(Proto::H1);
    let resp = c.get_as("alice", "/mcp").await;
    assert_eq!(resp.status(), 502);
    let body = body_json(resp).await;
    assert_eq!(crate::support::reason(&body), "upstream_unavailable");
    assert!(
        !crate::support::message(&body)
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "no internals echoed"
    );
    assert!(fd
        .metrics_text()
        .await
        .contains("mcp_frontdoor_upstream_errors_total{reason=\"connect\"} 1"));
}

#[tokio::test]
async fn a_gateway_that_never_answers_is_a_504() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    // Accept and hold connections without ever answering.
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            conns.push(s);
        }
    });
    let fd = Frontdoor::builder()
        .upstream(&format!("http://{addr}"))
        .gateways("response_timeout: 300ms")
        .start()
        .await;
    let c = fd.client(Proto::H2);
    let resp = c.get_as("alice", "/mcp").await;
    assert_eq!(resp.status(), 504);
    assert_eq!(
        crate::support::reason(&body_json(resp).await),
        "upstream_timeout"
    );
    hold.abort();
}

#[tokio::test]
async fn no_runtime_is_a_clear_503() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let resp = c.get_as("alice", "/mcp").await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        crate::support::reason(&body_json(resp).await),
        "no_gateway_runtime"
    );
}

/// docker/mcp-gateway in streaming mode answers `/sse` with a redirect to `/mcp`, which a
/// legacy SSE client cannot follow: the client gets a 410 that says to use `/mcp`, while other
/// routes pass redirects through untouched.
#[tokio::test]
async fn a_gateway_redirecting_sse_to_mcp_is_a_410_that_says_to_use_mcp() {
    use crate::support::upstream::{full, TestUpstream};
    let up = TestUpstream::start(|_req| async {
        http::Response::builder()
            .status(307)
            .header("location", "/mcp")
            .body(full(""))
            .unwrap()
    })
    .await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let resp = c.get_as("alice", "/sse").await;
    assert_eq!(resp.status(), 410);
    let body = body_json(resp).await;
    assert_eq!(crate::support::reason(&body), "sse_not_served");
    assert!(
        crate::support::message(&body)
            .as_str()
            .unwrap()
            .contains("/mcp"),
        "{body}"
    );
    let other = c.get_as("alice", "/somewhere").await;
    assert_eq!(other.status(), 307, "only the SSE routes are translated");
}
