//! Header hygiene on the way in and out.

use crate::support::upstream::{full, Body};
use crate::support::{body_json, tokens, Frontdoor, Proto, TestUpstream};
use http::Response;

#[tokio::test]
async fn request_headers_are_cleaned_and_mcp_headers_kept() {
    let up = TestUpstream::start(|_req| async {
        Response::builder()
            .header("content-type", "application/json")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("connection", "x-upstream-hop")
            .header("x-upstream-hop", "secret")
            .header("keep-alive", "timeout=5")
            .body(full("{}"))
            .unwrap() as Response<Body>
    })
    .await;
    let fd = Frontdoor::builder()
        .upstream(&up.url())
        .server("allowed_origins: [\"https://app.example.com\"]")
        .start()
        .await;
    // A POST goes over a kept gateway connection, an event-stream GET over one of its own
    // (`proxy::relay`): the same hygiene both ways.
    let cases = [Proto::H1, Proto::H2]
        .into_iter()
        .flat_map(|p| [(p, "POST"), (p, "GET")]);
    for (proto, method) in cases {
        let c = fd.client(proto);
        let mut req = c
            .req(method, "/mcp?x=1")
            .header("authorization", tokens::bearer("alice"))
            .header("origin", "https://app.example.com")
            .header(
                "mcp-session-id",
                crate::support::sealed_session("alice", "sess-42"),
            )
            .header("mcp-protocol-version", "2025-06-18")
            .header("last-event-id", "evt-7")
            .header("accept", "application/json, text/event-stream")
            .header("x-forwarded-for", "6.6.6.6")
            .header("forwarded", "for=6.6.6.6")
            .header("x-real-ip", "6.6.6.6")
            .header("x-custom", "kept");
        if proto == Proto::H1 {
            req = req
                .header("connection", "x-client-hop")
                .header("x-client-hop", "1")
                .header("keep-alive", "timeout=5")
                .header("proxy-authorization", "Basic Zm9vOmJhcg==");
        }
        let resp = if method == "POST" {
            c.send_body(req, "{\"jsonrpc\":\"2.0\"}").await
        } else {
            c.send(req).await
        };
        let proto = format!("{proto:?} {method}");
        assert_eq!(resp.status(), 200, "{proto:?}");
        let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"], "{proto:?}: repeated headers kept");
        assert!(resp.headers().get("x-upstream-hop").is_none(), "{proto:?}");
        assert!(resp.headers().get("keep-alive").is_none(), "{proto:?}");

        let seen = up.seen().pop().unwrap();
        let h = &seen.headers;
        assert_eq!(seen.method.as_str(), method);
        assert_eq!(seen.uri.path_and_query().unwrap(), "/mcp?x=1");
        assert_eq!(h.get_all("host").iter().count(), 1, "{proto}");
        assert_eq!(h["host"], up.addr.to_string().as_str(), "{proto}");
        assert_eq!(
            h["authorization"], "Bearer gw-token",
            "client credentials replaced"
        );
        assert!(h.get("origin").is_none());
        assert!(
            h.get("forwarded").is_none(),
            "client forwarding claims dropped"
        );
        assert!(
            h.get("x-real-ip").is_none(),
            "client forwarding claims dropped"
        );
        assert!(h.get("x-client-hop").is_none());
        assert!(h.get("proxy-authorization").is_none());
        assert!(h.get("keep-alive").is_none());
        assert_eq!(h["mcp-session-id"], "sess-42");
        assert_eq!(h["mcp-protocol-version"], "2025-06-18");
        assert_eq!(h["last-event-id"], "evt-7");
        assert_eq!(h["accept"], "application/json, text/event-stream");
        assert_eq!(h["x-custom"], "kept");
        assert_eq!(h["x-forwarded-for"], "127.0.0.1", "client XFF not trusted");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["x-forwarded-host"],
            format!("localhost:{}", fd.addr.port()).as_str()
        );
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_before_the_gateway() {
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder()
        .upstream(&up.url())
        .server("allowed_origins: [\"https://app.example.com\"]")
        .start()
        .await;
    let c = fd.client(Proto::H1);
    let resp = c
        .send(
            c.req("POST", "/mcp")
                .header("authorization", tokens::bearer("alice"))
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        crate::support::reason(&body_json(resp).await),
        "forbidden_origin"
    );
    assert!(up.seen().is_empty());
}
