//! Two front door replicas (in-process, own ports, own metrics listeners) on one engine
//! instance and one data dir, nothing shared but the engine, the data dir and the master key
//! (DESIGN.md §8): one gateway per user whoever asks first, sessions that move between
//! replicas, idle stops agreed between them, `max_running` counted on the engine.

use crate::engine::{engine, metric, Engine};
use crate::mcp::Mcp;
use crate::support::{tokens, Frontdoor};
use http::StatusCode;
use serde_json::json;
use std::time::Duration;

/// Two replicas `a` and `b`, each told the other's metrics listener as its peer.
async fn pair(eng: &Engine, gateways: &[&str]) -> (Frontdoor, Frontdoor, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let la = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lb = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (pa, pb) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let one = |id: &str, peer: std::net::SocketAddr, l| {
        eng.builder(gateways, "")
            .data_dir(data.path().to_path_buf())
            .replicas(&format!("id: {id}"))
            .replicas(&format!("peers: [\"{peer}\"]"))
            .metrics_listener(l)
            .start()
    };
    let a = one("a", pb, la).await;
    let b = one("b", pa, lb).await;
    (a, b, data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_first_requests_split_across_two_replicas_make_one_gateway() {
    let Some(eng) = engine("repl20") else { return };
    let (a, b, data) = pair(&eng, &["idle_timeout: 1h"]).await;
    let opens = (0..20).map(|i| Mcp::open(if i % 2 == 0 { &a } else { &b }, "rita"));
    let sessions = futures_util::future::join_all(opens).await;
    let mut instances = Vec::new();
    for s in &sessions {
        let mcp = s.as_ref().expect("every request succeeds");
        instances.push(mcp.instance().await);
    }
    instances.dedup();
    assert_eq!(instances.len(), 1, "one gateway process served all 20");
    assert_eq!(eng.containers(true), [eng.name("rita")]);
    assert_eq!(eng.networks(), [eng.name("rita")]);
    let starts = metric(&a, "mcp_frontdoor_gateway_starts_total").await
        + metric(&b, "mcp_frontdoor_gateway_starts_total").await;
    assert_eq!(starts, 2.0, "each replica began one start: {starts}");
    let adopted = metric(&a, "mcp_frontdoor_gateway_adopted_from_peer_total").await
        + metric(&b, "mcp_frontdoor_gateway_adopted_from_peer_total").await;
    assert_eq!(adopted, 1.0, "the loser adopted the winner's gateway");

    // A session opened on one replica goes on on the other; another user's token with it
    // is refused there too, before any gateway.
    let on_a = sessions[0].as_ref().unwrap();
    let moved = on_a.via(&b, &tokens::bearer("rita"));
    assert_eq!(moved.call("echo", json!({"text": "hi"})).await, "hi");
    let stolen = on_a.via(&b, &tokens::bearer("sam"));
    let refused = stolen.call_with("echo", json!({"text": "x"}), |_| {}).await;
    assert_eq!(refused.unwrap_err().status, StatusCode::NOT_FOUND);
    assert!(
        !eng.containers(true).contains(&eng.name("sam")),
        "the refused request started nothing for sam"
    );

    // Each replica writes its own audit chain.
    assert!(data.path().join("audit/a/audit.log").exists());
    assert!(data.path().join("audit/b/audit.log").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_idle_stop_while_the_other_replica_holds_a_stream() {
    let Some(eng) = engine("replidle") else {
        return;
    };
    let (a, b, _data) = pair(&eng, &["idle_timeout: 1s"]).await;
    let on_a = Mcp::open(&a, "ivy").await.unwrap();
    let instance = on_a.instance().await;
    // A is idle from here; B streams for 4 s, four idle timeouts.
    let on_b = on_a.via(&b, &tokens::bearer("ivy"));
    let mut progress = 0;
    let out = on_b
        .call_with(
            "stream_progress",
            json!({"count": 8, "interval_ms": 500}),
            |m| {
                if m["method"] == "notifications/progress" {
                    progress += 1;
                }
            },
        )
        .await
        .expect("the stream through B is not cut by A's idle stop");
    assert_eq!(out, "sent 8 progress notifications");
    assert_eq!(progress, 8);
    assert_eq!(
        on_a.instance().await,
        instance,
        "the same gateway throughout"
    );
    assert!(
        metric(&a, "mcp_frontdoor_gateway_peer_kept_total").await >= 1.0,
        "A asked B and kept it"
    );
    // Idle on both now: it stops.
    eng.until("agreed idle stop", Duration::from_secs(20), || {
        eng.containers(true).is_empty() && eng.networks().is_empty()
    })
    .await;
    // Stopped by one replica, it is no error on the other: B starts (or adopts) a fresh one,
    // and A serves through that same one.
    let again_b = Mcp::open(&b, "ivy").await.expect("B after A's stop");
    let again_a = Mcp::open(&a, "ivy").await.expect("A too");
    assert_eq!(again_a.instance().await, again_b.instance().await);
    assert_ne!(again_b.instance().await, instance, "a fresh gateway");
    assert_eq!(eng.containers(true), [eng.name("ivy")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_change_waits_for_the_other_replicas_stream() {
    let Some(eng) = engine("replcat") else {
        return;
    };
    let (a, b, _data) = pair(&eng, &["idle_timeout: 1h"]).await;
    let on_a = Mcp::open(&a, "cat").await.unwrap();
    let before = on_a.instance().await;
    let on_b = on_a.via(&b, &tokens::bearer("cat"));
    let stream = on_b.call_with(
        "stream_progress",
        json!({"count": 10, "interval_ms": 400}),
        |_| {},
    );
    let change = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let c = a.client(crate::support::Proto::H1);
        let put = c
            .send_body(
                c.req("PUT", "/api/v1/users/me/catalogs")
                    .header("authorization", tokens::bearer("cat"))
                    .header("content-type", "application/json"),
                r#"{"custom": {"registry": {"own-cat": {"image": "example/cat:1", "title": "cat"}}}}"#,
            )
            .await;
        assert_eq!(put.status(), 200);
    };
    let (out, ()) = tokio::join!(stream, change);
    assert_eq!(
        out.expect("B's stream is not cut by A's catalog replacement"),
        "sent 10 progress notifications"
    );
    assert!(
        metric(&a, "mcp_frontdoor_gateway_peer_kept_total").await >= 1.0,
        "A asked B and waited"
    );
    // Once B's stream ended, A replaces it.
    let start = std::time::Instant::now();
    loop {
        // A session opened just before the replacement may be gone at the next call: retried.
        if let Ok(m) = Mcp::open(&a, "cat").await {
            if let Ok(who) = m.call_with("whoami", json!({}), |_| {}).await {
                let who: serde_json::Value = serde_json::from_str(&who).unwrap();
                if who["instance"] != before.as_str() {
                    break;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "replaced after the stream"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_running_counts_the_other_replicas_gateways() {
    let Some(eng) = engine("replcap") else {
        return;
    };
    let (a, b, _data) = pair(&eng, &["max_running: 1", "idle_timeout: 1h"]).await;
    let _ann = Mcp::open(&a, "ann").await.unwrap();
    let refused = Mcp::open(&b, "ben").await.err().expect("B is at capacity");
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    assert_eq!(eng.containers(true), [eng.name("ann")]);
    // The user whose gateway runs is served on B too (joined, not counted against).
    let ann_on_b = Mcp::open(&b, "ann").await.expect("ann is served on B");
    assert_eq!(ann_on_b.call("echo", json!({"text": "x"})).await, "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_question_needs_the_peer_key_and_is_not_replayable() {
    let Some(eng) = engine("replauth") else {
        return;
    };
    let (a, _b, _data) = pair(&eng, &[]).await;
    let path = "/internal/v1/activity/ivy";
    let get = |authz: Option<String>| {
        let url = format!("http://{}{path}", a.metrics_addr);
        async move {
            let client = crate::support::client::Client::new(
                &format!("http://{}", a.metrics_addr),
                None,
                crate::support::Proto::H1,
            );
            let mut req = client.req("GET", path);
            if let Some(v) = authz {
                req = req.header("authorization", v);
            }
            let _ = url;
            client.send(req).await.status()
        }
    };
    assert_eq!(get(None).await, StatusCode::UNAUTHORIZED);
    let ring =
        mcp_frontdoor::secrets::KeyRing::parse(crate::support::frontdoor::MASTER_KEY, "test")
            .unwrap();
    let other = mcp_frontdoor::secrets::KeyRing::single(
        mcp_frontdoor::secrets::MasterKey::from_bytes([5; 32]),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let wrong = mcp_frontdoor::replicas::auth::PeerAuth::from_keyring(&other);
    assert_eq!(
        get(Some(wrong.sign(path, now).0)).await,
        StatusCode::UNAUTHORIZED,
        "another key"
    );
    let right = mcp_frontdoor::replicas::auth::PeerAuth::from_keyring(&ring);
    let (h, _) = right.sign(path, now);
    assert_eq!(get(Some(h.clone())).await, StatusCode::OK);
    assert_eq!(get(Some(h)).await, StatusCode::UNAUTHORIZED, "replayed");
    let (old, _) = right.sign(path, now - 120_000);
    assert_eq!(get(Some(old)).await, StatusCode::UNAUTHORIZED, "stale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_eviction_of_a_gateway_the_other_replica_streams_through() {
    let Some(eng) = engine("replevict") else {
        return;
    };
    let (a, b, _data) = pair(&eng, &["max_running: 1", "idle_timeout: 1h"]).await;
    let on_a = Mcp::open(&a, "eve").await.unwrap();
    let on_b = on_a.via(&b, &tokens::bearer("eve"));
    let stream = on_b.call_with(
        "stream_progress",
        json!({"count": 8, "interval_ms": 400}),
        |_| {},
    );
    let other = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        Mcp::open(&a, "fay").await.err()
    };
    let (out, refused) = tokio::join!(stream, other);
    assert_eq!(
        out.expect("B's stream is not cut by an eviction on A"),
        "sent 8 progress notifications"
    );
    let refused = refused.expect("A has no gateway it may evict");
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    // Nobody streams now: room is made.
    Mcp::open(&a, "fay")
        .await
        .expect("eve's idle gateway evicted");
    assert_eq!(eng.containers(true), [eng.name("fay")]);
}
