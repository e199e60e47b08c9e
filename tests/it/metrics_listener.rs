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

#[tokio::test]
async fn the_format_follows_accept_and_process_and_build_metrics_are_there() {
    let fd = Frontdoor::builder().start().await;
    let c = Client::new(&format!("http://{}", fd.metrics_addr), None, Proto::H1);
    // Something in a counter family, so its HELP/TYPE lines are written.
    fd.client(Proto::H1)
        .send(fd.client(Proto::H1).req("GET", "/healthz"))
        .await;
    let prometheus_server = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    for (accept, openmetrics) in [
        (None, false),
        (Some("text/plain;version=0.0.4"), false),
        (Some("*/*"), false),
        (Some("application/openmetrics-text"), true),
        (Some(prometheus_server), true),
    ] {
        let mut req = c.req("GET", "/metrics");
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = c.send(req).await;
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        let text = String::from_utf8(body_bytes(resp).await.to_vec()).unwrap();
        let counter_help = if openmetrics {
            "# HELP mcp_frontdoor_requests Requests"
        } else {
            "# HELP mcp_frontdoor_requests_total Requests"
        };
        assert!(text.contains(counter_help), "{accept:?}:\n{text}");
        assert_eq!(text.ends_with("# EOF\n"), openmetrics, "{accept:?}");
        if openmetrics {
            assert_eq!(
                ct,
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            );
        } else {
            assert_eq!(ct, "text/plain; version=0.0.4; charset=utf-8");
        }
        for family in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(
                text.contains(&format!("\n{family}")),
                "{family} missing:\n{text}"
            );
        }
        let build = format!(
            "mcp_frontdoor_build_info{{version=\"{}\",",
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&build), "{text}");
    }
}
