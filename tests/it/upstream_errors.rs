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

/// A resolver whose first gateway is gone (its port refuses connections) until the proxy's
/// check replaces it, the way the lifecycle replaces a killed container.
mod retry {
    use async_trait::async_trait;
    use mcp_frontdoor::auth::Principal;
    use mcp_frontdoor::gateways::{GatewayError, GatewayResolver, GoneCheck, Retry, Upstream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    pub struct Replacing {
        pub dead: String,
        pub live: String,
        pub replaced: AtomicBool,
        pub checks: Arc<AtomicUsize>,
        pub policy: bool,
        /// Whose gateway the check was asked about.
        pub asked_for: parking_lot::Mutex<Vec<String>>,
    }

    pub struct Check(pub Arc<Replacing>);

    #[async_trait]
    impl GoneCheck for Check {
        async fn gone(self: Arc<Self>, who: &Principal) -> bool {
            self.0.checks.fetch_add(1, Ordering::SeqCst);
            self.0.asked_for.lock().push(who.slug.clone());
            !self.0.replaced.swap(true, Ordering::SeqCst)
        }
    }

    pub struct Resolver(pub Arc<Replacing>);

    #[async_trait]
    impl GatewayResolver for Resolver {
        async fn ensure(&self, _: &Principal) -> Result<Upstream, GatewayError> {
            let r = &self.0;
            let addr = if r.replaced.load(Ordering::SeqCst) {
                &r.live
            } else {
                &r.dead
            };
            Ok(Upstream {
                base: addr.parse().unwrap(),
                authorization: None,
                lease: None,
                retry: if r.policy {
                    Retry::IfGone(Arc::new(Check(r.clone())))
                } else {
                    Retry::Never
                },
            })
        }
    }
}

async fn replacing_frontdoor(
    policy: bool,
) -> (
    crate::support::TestUpstream,
    std::sync::Arc<retry::Replacing>,
    Frontdoor,
) {
    let live = crate::support::TestUpstream::json().await;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let state = std::sync::Arc::new(retry::Replacing {
        dead: format!("127.0.0.1:{dead_port}"),
        live: live.addr.to_string(),
        replaced: false.into(),
        checks: Default::default(),
        policy,
        asked_for: Default::default(),
    });
    let fd = Frontdoor::builder()
        .plain()
        .resolver(std::sync::Arc::new(retry::Resolver(state.clone())))
        .start()
        .await;
    (live, state, fd)
}

/// The resolver's retry policy: a bodiless request to a gateway found gone is sent once more,
/// to the fresh one; a request with a body is not (it streamed), but the check still runs so
/// the next request gets the fresh gateway; a policy of `Never` asks nothing.
#[tokio::test]
async fn a_gone_gateway_is_replaced_and_only_a_bodiless_request_is_sent_again() {
    use std::sync::atomic::Ordering;
    let (live, state, fd) = replacing_frontdoor(true).await;
    let c = fd.client(Proto::H1);
    let resp = c.get_as("alice", "/mcp").await;
    assert_eq!(resp.status(), 200, "sent again to the fresh gateway");
    assert_eq!(state.checks.load(Ordering::SeqCst), 1);
    assert_eq!(*state.asked_for.lock(), ["alice"]);
    assert_eq!(live.seen().len(), 1);

    let (live, state, fd) = replacing_frontdoor(true).await;
    let c = fd.client(Proto::H1);
    let post = c
        .send_body(
            c.req("POST", "/mcp")
                .header("authorization", crate::support::tokens::bearer("bob"))
                .header("content-type", "application/json"),
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#,
        )
        .await;
    assert_eq!(post.status(), 502, "a body is never sent twice");
    assert_eq!(state.checks.load(Ordering::SeqCst), 1, "but the check ran");
    assert!(live.seen().is_empty());
    assert_eq!(
        c.get_as("bob", "/mcp").await.status(),
        200,
        "the next one is served"
    );

    let (live, state, fd) = replacing_frontdoor(false).await;
    let c = fd.client(Proto::H1);
    assert_eq!(c.get_as("alice", "/mcp").await.status(), 502);
    assert_eq!(state.checks.load(Ordering::SeqCst), 0);
    assert!(live.seen().is_empty());
}
