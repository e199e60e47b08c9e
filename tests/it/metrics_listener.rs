//! The metrics listener: `/metrics` behind the optional scrape token, health routes open.

use crate::support::client::Client;
use crate::support::{body_bytes, body_json, Frontdoor, Proto};

#[tokio::test]
async fn metrics_need_the_scrape_token_when_one_is_set_and_health_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("scrape.token");
    std::fs::write(&token_file, "scrape-token-0123456789\n").unwrap();
    let fd = Frontdoor::builder()
        .metrics(&format!("bearer_token_file: {}", token_file.display()))
        .start()
        .await;
    let c = Client::new(&format!("http://{}", fd.metrics_addr), None, Proto::H1);
    let scrape = |auth: Option<&str>| {
        let mut req = c.req("GET", "/metrics");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        c.send(req)
    };
    for auth in [
        None,
        Some("Bearer wrong-token"),
        Some("Bearer scrape-token-012345678"),
        Some("Basic scrape-token-0123456789"),
    ] {
        let resp = scrape(auth).await;
        assert_eq!(resp.status(), 401, "{auth:?}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer realm=\"metrics\""
        );
        let body = body_json(resp).await;
        assert_eq!(body["error"], "unauthorized");
        assert!(!body.to_string().contains("scrape-token"), "{body}");
    }
    let resp = scrape(Some("Bearer scrape-token-0123456789")).await;
    assert_eq!(resp.status(), 200);
    let text = String::from_utf8(body_bytes(resp).await.to_vec()).unwrap();
    assert!(text.contains("mcp_frontdoor_"), "{text}");
    for path in ["/healthz", "/readyz"] {
        let resp = c.send(c.req("GET", path)).await;
        assert_eq!(resp.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn without_a_scrape_token_metrics_are_open() {
    let fd = Frontdoor::builder().start().await;
    assert!(fd.metrics_text().await.contains("mcp_frontdoor_"));
}
