//! Each user reaches the gateway its resolver names, and the gateway lease (how the
//! lifecycle knows a gateway is busy) is held exactly as long as the response is open.

use crate::support::upstream::channel_response;
use crate::support::{Frontdoor, Proto, TestUpstream};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::BodyExt;
use mcp_frontdoor::auth::Principal;
use mcp_frontdoor::gateways::{GatewayError, GatewayResolver, Upstream};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Routes by slug and counts live leases.
struct PerUser {
    routes: HashMap<String, String>,
    leases: Arc<AtomicUsize>,
}

struct Lease(Arc<AtomicUsize>);
impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl GatewayResolver for PerUser {
    async fn ensure(&self, p: &Principal) -> Result<Upstream, GatewayError> {
        let addr = self.routes.get(&p.slug).ok_or(GatewayError::Unavailable {
            message: "no gateway for this user".into(),
            retry_after: Duration::from_secs(1),
        })?;
        self.leases.fetch_add(1, Ordering::SeqCst);
        Ok(Upstream {
            base: addr.parse().unwrap(),
            authorization: mcp_frontdoor::gateways::bearer(&format!("token-of-{}", p.slug)),
            lease: Some(Box::new(Lease(self.leases.clone()))),
            retry: mcp_frontdoor::gateways::Retry::Never,
        })
    }
}

async fn streaming_upstream() -> TestUpstream {
    TestUpstream::start(|_req| async {
        let (tx, resp) = channel_response("text/event-stream");
        tokio::spawn(async move {
            while tx.send(Bytes::from_static(b"data: x\n\n")).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        resp
    })
    .await
}

#[tokio::test]
async fn users_reach_their_own_gateway_and_leases_follow_open_streams() {
    let (alice_gw, bob_gw) = (streaming_upstream().await, TestUpstream::json().await);
    let leases = Arc::new(AtomicUsize::new(0));
    let resolver = PerUser {
        routes: HashMap::from([
            ("alice".to_string(), alice_gw.addr.to_string()),
            ("bob".to_string(), bob_gw.addr.to_string()),
        ]),
        leases: leases.clone(),
    };
    let fd = Frontdoor::builder()
        .plain()
        .resolver(Arc::new(resolver))
        .start()
        .await;
    let c = fd.client(Proto::H1);

    let bob = c.get_as("bob", "/mcp").await;
    assert_eq!(bob.status(), 200);
    crate::support::body_bytes(bob).await;
    assert_eq!(
        bob_gw.seen()[0].headers["authorization"],
        "Bearer token-of-bob"
    );
    assert!(alice_gw.seen().is_empty());

    let mut stream = c.get_as("alice", "/sse").await;
    stream.body_mut().frame().await.unwrap().unwrap();
    assert_eq!(
        alice_gw.seen()[0].headers["authorization"],
        "Bearer token-of-alice"
    );
    assert_eq!(
        leases.load(Ordering::SeqCst),
        1,
        "the open stream holds its lease"
    );
    drop(stream);
    let mut released = false;
    for _ in 0..100 {
        if leases.load(Ordering::SeqCst) == 0 {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(released, "lease released when the client left");

    let carol = c.get_as("carol", "/mcp").await;
    assert_eq!(carol.status(), 503);
    assert_eq!(carol.headers()["retry-after"], "1");
}

/// The proxy path is told apart from the front door's own before any router (`app::Public`):
/// paths that only look like the front door's go to the caller's gateway, with the token
/// checked first; the front door's own never reach a gateway, whatever follows them.
#[tokio::test]
async fn look_alike_paths_go_to_the_gateway_and_own_paths_never_do() {
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    for path in ["/healthz/", "/api/v1x", "/api", "/uix", "/.well-known", "/"] {
        let resp = c.send(c.req("GET", path)).await;
        assert_eq!(resp.status(), 401, "{path}: a gateway path wants a token");
        let resp = c.get_as("alice", path).await;
        assert_eq!(resp.status(), 200, "{path}");
        let seen = up.seen().pop().expect("the gateway got it");
        assert_eq!(seen.uri.path(), path);
    }
    let before = up.seen().len();
    for (path, status) in [
        ("/healthz", 200),
        ("/api/v1/nothing-here", 404),
        ("/.well-known/x", 404),
        ("/ui/none.js", 404),
    ] {
        let resp = c.get_as("alice", path).await;
        assert_eq!(resp.status(), status, "{path}: answered by the front door");
    }
    assert_eq!(up.seen().len(), before, "no own path reached the gateway");
}
