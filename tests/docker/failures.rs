//! Failures a client sees as 503 + Retry-After, quickly and without leftovers: the engine is
//! unreachable, the image cannot be pulled, the gateway never becomes healthy, it exits.

use crate::engine::{engine, metric, status};
use crate::mcp::Mcp;
use crate::support::client::Proto;
use crate::support::Frontdoor;
use http::StatusCode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_unreachable_is_a_quick_503_with_retry_after() {
    // No engine needed: the socket does not exist.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dead.sock");
    let fd = Frontdoor::builder()
        .plain()
        .lifecycle()
        .gateways(&format!(
            "docker: {{ instance: unreach, host: \"unix://{}\" }}",
            sock.display()
        ))
        .start()
        .await;
    for _ in 0..3 {
        let t = Instant::now();
        let err = Mcp::open(&fd, "alice").await.err().expect("503");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE, "{err:?}");
        assert!(err.retry_after.is_some());
        assert!(err.body.contains("Docker"), "{}", err.body);
    }
    let c = fd.client(Proto::H1);
    let ready = c.send(c.req("GET", "/readyz")).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let s = status(&fd, "alice").await;
    assert!(s.state == "stopped" || s.state == "failed", "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_that_cannot_be_pulled_is_a_503_naming_it() {
    let Some(eng) = engine("pull") else { return };
    let image = format!("mcp-frontdoor-test/absent-{}:v1", eng.instance);
    let fd = crate::support::Frontdoor::builder()
        .plain()
        .lifecycle()
        .gateways(&format!(
            "docker: {{ instance: {}, image: \"{image}\", pull_timeout: 20s }}",
            eng.instance
        ))
        .start()
        .await;
    let err = Mcp::open(&fd, "alice").await.err().expect("503");
    assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE, "{err:?}");
    assert!(err.body.contains(&image), "{}", err.body);
    assert!(err.retry_after.is_some());
    assert!(eng.containers(true).is_empty() && eng.networks().is_empty());
    let text = fd.metrics_text().await;
    assert!(
        text.contains("mcp_frontdoor_gateway_start_duration_seconds_count{outcome=\"image\"} 1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_never_becomes_healthy_times_out_and_is_removed() {
    let Some(eng) = engine("slow") else { return };
    let slow = "args: [\"--port={port}\", \"--catalog={catalog}\", \"--servers={servers}\", \"--secrets={secrets}\", \"--health-delay-ms=60000\"]";
    let fd = eng.frontdoor(&["spawn_timeout: 2s"], slow).await;
    let t = Instant::now();
    let err = Mcp::open(&fd, "lou").await.err().expect("503");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.body.contains("did not become ready"), "{}", err.body);
    assert!(err.retry_after.is_some());
    eng.until("clean-up", Duration::from_secs(10), || {
        eng.containers(true).is_empty() && eng.networks().is_empty()
    })
    .await;
    assert_eq!(
        metric(&fd, "mcp_frontdoor_gateway_starts_total").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_exits_at_start_fails_fast() {
    let Some(eng) = engine("exits") else { return };
    let bad = "args: [\"--no-such-flag\"]";
    let fd = eng.frontdoor(&[], bad).await;
    let t = Instant::now();
    let err = Mcp::open(&fd, "max").await.err().expect("503");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.body.contains("exited"), "{}", err.body);
    eng.until("clean-up", Duration::from_secs(10), || {
        eng.containers(true).is_empty() && eng.networks().is_empty()
    })
    .await;
}
