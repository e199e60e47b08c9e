//! Start on the first request, single-flight under concurrency, idle stop (open streams count
//! as activity), a request during stopping, a killed gateway, capacity and eviction.

use crate::engine::{engine, metric, status, wait_state};
use crate::mcp::Mcp;
use http::StatusCode;
use mcp_frontdoor::gateways::GatewayControl;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_request_starts_a_gateway_and_succeeds() {
    let Some(eng) = engine("first") else { return };
    let fd = eng.frontdoor(&[], "").await;
    assert!(eng.containers(true).is_empty());
    let t = Instant::now();
    let mcp = Mcp::open(&fd, "alice").await.expect("first request");
    eprintln!("cold start to first response: {:?}", t.elapsed());
    assert_eq!(mcp.call("echo", json!({"text": "hi"})).await, "hi");

    let name = eng.name("alice");
    assert_eq!(eng.containers(true), std::slice::from_ref(&name));
    assert_eq!(
        eng.networks(),
        std::slice::from_ref(&name),
        "own network, named like the container"
    );
    let labels = eng.inspect(&name, "{{json .Config.Labels}}");
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["mcp-frontdoor.managed"], "true");
    assert_eq!(labels["mcp-frontdoor.user"], "alice");
    assert_eq!(labels["mcp-frontdoor.instance"], eng.instance.as_str());
    assert!(labels["mcp-frontdoor.catalog-hash"].as_str().unwrap().len() > 8);
    let subnet = eng.inspect_network(&name, "{{range .IPAM.Config}}{{.Subnet}}{{end}}");
    assert!(
        subnet.starts_with("10.213.") && subnet.ends_with("/28"),
        "{subnet}"
    );

    let s = status(&fd, "alice").await;
    assert_eq!(s.state, "ready");
    assert_eq!(s.container.as_deref(), Some(name.as_str()));
    assert!(s.memory_bytes.is_some_and(|m| m > 0), "{s:?}");
    let list = fd.gateways.as_ref().unwrap().list().await.unwrap();
    assert_eq!(list.len(), 1);
    let logs = fd
        .gateways
        .as_ref()
        .unwrap()
        .logs("alice", 50)
        .await
        .unwrap()
        .expect("a running gateway has logs");
    assert!(!logs.is_empty(), "docker logs tail");

    let text = fd.metrics_text().await;
    eprintln!("{text}");
    assert!(
        text.contains("mcp_frontdoor_gateways{state=\"ready\"} 1"),
        "{text}"
    );
    assert_eq!(metric(&fd, "mcp_frontdoor_gateway_starts_total").await, 1.0);
    assert!(
        text.contains("mcp_frontdoor_gateway_start_duration_seconds_count{outcome=\"ready\"} 1")
    );
    // A second session reuses the running gateway.
    let again = Mcp::open(&fd, "alice").await.unwrap();
    assert_eq!(again.instance().await, mcp.instance().await);
    assert_eq!(metric(&fd, "mcp_frontdoor_gateway_starts_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_first_requests_share_one_start() {
    let Some(eng) = engine("twenty") else { return };
    let fd = eng.frontdoor(&[], "").await;
    let opens = (0..20).map(|_| Mcp::open(&fd, "bob"));
    let sessions = futures_util::future::join_all(opens).await;
    let mut instances = Vec::new();
    for s in &sessions {
        let mcp = s.as_ref().expect("every request succeeds");
        instances.push(mcp.instance().await);
    }
    instances.dedup();
    assert_eq!(instances.len(), 1, "one gateway process served all 20");
    assert_eq!(eng.containers(true), [eng.name("bob")]);
    assert_eq!(metric(&fd, "mcp_frontdoor_gateway_starts_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_gateways_are_removed_but_open_streams_keep_them() {
    let Some(eng) = engine("idle") else { return };
    let fd = eng.frontdoor(&["idle_timeout: 1s"], "").await;
    let mcp = Mcp::open(&fd, "carol").await.unwrap();
    let name = eng.name("carol");
    // A 3 s stream of progress notifications outlives the 1 s idle timeout.
    let mut progress = 0;
    let out = mcp
        .call_with(
            "stream_progress",
            json!({"count": 6, "interval_ms": 500}),
            |m| {
                if m["method"] == "notifications/progress" {
                    progress += 1;
                }
            },
        )
        .await
        .unwrap();
    let ended = Instant::now();
    assert_eq!(out, "sent 6 progress notifications");
    assert_eq!(progress, 6);
    assert_eq!(
        eng.containers(false),
        std::slice::from_ref(&name),
        "alive while streaming"
    );
    eng.until("idle removal", Duration::from_secs(10), || {
        eng.containers(true).is_empty() && eng.networks().is_empty()
    })
    .await;
    eprintln!("idle stop after stream end: {:?}", ended.elapsed());
    assert!(
        ended.elapsed() >= Duration::from_millis(1000),
        "not before idle_timeout"
    );
    wait_state(&fd, "carol", "stopped", Duration::from_secs(5)).await;
    let text = fd.metrics_text().await;
    assert!(
        text.contains("mcp_frontdoor_gateway_idle_stops_total 1\n"),
        "{text}"
    );
    // And the next request starts a fresh one.
    let again = Mcp::open(&fd, "carol").await.unwrap();
    assert_ne!(again.instance().await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_while_stopping_waits_and_gets_a_fresh_gateway() {
    let Some(eng) = engine("stopping") else {
        return;
    };
    let fd = eng.frontdoor(&[], "").await;
    let first = Mcp::open(&fd, "dave").await.unwrap().instance().await;
    let control = fd.gateways.clone().unwrap();
    let stop = tokio::spawn(async move { control.stop("dave").await });
    wait_state(&fd, "dave", "stopping", Duration::from_secs(5)).await;
    let mcp = Mcp::open(&fd, "dave")
        .await
        .expect("no error while stopping");
    assert_ne!(mcp.instance().await, first, "a fresh gateway");
    assert!(stop.await.unwrap().unwrap());
    assert_eq!(eng.containers(true), [eng.name("dave")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_is_noticed_and_the_next_request_succeeds() {
    let Some(eng) = engine("kill") else { return };
    let fd = eng.frontdoor(&[], "").await;
    let first = Mcp::open(&fd, "erin").await.unwrap().instance().await;
    let name = eng.name("erin");
    assert!(crate::engine::docker(&["kill", &name]).0);
    wait_state(&fd, "erin", "stopped", Duration::from_secs(5)).await;
    assert_eq!(
        metric(&fd, "mcp_frontdoor_gateway_crashes_total").await,
        1.0
    );
    let mcp = Mcp::open(&fd, "erin").await.expect("next request");
    assert_ne!(mcp.instance().await, first);
    assert_eq!(eng.containers(true), [name]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_init_image_is_made_again_without_a_failed_request() {
    let Some(eng) = engine("prune") else { return };
    let fd = eng.frontdoor(&[], "").await;
    Mcp::open(&fd, "pat").await.unwrap();
    let images = eng.images();
    assert_eq!(images.len(), 1, "{images:?}");
    let name = eng.name("pat");
    assert_eq!(eng.inspect(&name, "{{.Image}}"), images[0], "created by id");
    let tag = crate::engine::docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoTags 0}}",
        &images[0],
    ])
    .1;
    assert!(
        tag.trim()
            .starts_with(&format!("mcp-fd-{}-gateway:", eng.instance)),
        "{tag}"
    );
    // What `docker image prune -a` does while no gateway runs.
    assert!(crate::engine::docker(&["rm", "-fv", &name]).0);
    wait_state(&fd, "pat", "stopped", Duration::from_secs(5)).await;
    let (ok, out) = crate::engine::docker(&["image", "rm", "-f", &images[0]]);
    assert!(ok, "{out}");
    let mcp = Mcp::open(&fd, "pat").await.expect("started again");
    assert_eq!(mcp.call("echo", json!({"text": "back"})).await, "back");
    let again = eng.images();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(eng.inspect(&name, "{{.Image}}"), again[0]);
}

/// The attack that once worked: a shared init volume that any container may mount read-write
/// was changed, and other users' gateways ran the changed init as PID 1. Now the init is a
/// layer of an image made by this process and gateways are created by its id, so neither a
/// volume nor an image planted under the init's tag is ever executed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_init_is_never_executed() {
    use crate::engine::docker;
    let Some(eng) = engine("tamper") else { return };
    let fd = eng.frontdoor(&[], "").await;
    Mcp::open(&fd, "ada").await.unwrap();
    let ours = eng.images();
    assert_eq!(ours.len(), 1, "{ours:?}");
    let tag = docker(&[
        "image",
        "inspect",
        "--format",
        "{{index .RepoTags 0}}",
        &ours[0],
    ])
    .1;
    let tag = tag.trim().to_string();

    // A look-alike whose init, if it ever ran, could not start a gateway (a script in an
    // image without a shell), under our tag and labelled as this instance's.
    let plant = format!("mcp-fd-{}-plant", eng.instance);
    assert!(
        docker(&[
            "create",
            "--name",
            &plant,
            "--label",
            &format!("mcp-frontdoor.instance={}", eng.instance),
            &eng.image
        ])
        .0
    );
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join(".mcp-frontdoor");
    std::fs::create_dir(&evil).unwrap();
    std::fs::write(evil.join("init"), "#!/bin/sh\necho planted\n").unwrap();
    let (ok, out) = docker(&["cp", &evil.display().to_string(), &format!("{plant}:/")]);
    assert!(ok, "{out}");
    let (ok, planted) = docker(&["commit", &plant, &tag]);
    assert!(ok, "{planted}");
    assert!(docker(&["rm", "-f", &plant]).0);
    let planted = planted.trim().to_string();
    assert_ne!(planted, ours[0]);
    // And a volume under the name the init once had, holding the same script.
    let vol = format!("mcp-fd-{}-init-{}", eng.instance, &tag[tag.len() - 12..]);
    assert!(
        docker(&[
            "volume",
            "create",
            "--label",
            &format!("mcp-frontdoor.instance={}", eng.instance),
            &vol
        ])
        .0
    );

    // Another user's gateway starts from the verified image, not from the tag.
    let mcp = Mcp::open(&fd, "bea").await.expect("bea's gateway works");
    assert_eq!(mcp.call("echo", json!({"text": "safe"})).await, "safe");
    let name = eng.name("bea");
    assert_eq!(eng.inspect(&name, "{{.Image}}"), ours[0]);
    assert_ne!(eng.inspect(&name, "{{.Image}}"), planted);
    assert_eq!(
        eng.inspect(
            &name,
            "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}} {{end}}{{end}}"
        ),
        "",
        "no volume is mounted into a gateway"
    );
    assert_eq!(
        eng.inspect(&name, "{{json .Config.Entrypoint}}"),
        "[\"/.mcp-frontdoor/init\"]"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_running_the_lru_idle_gateway_is_evicted_else_429() {
    let Some(eng) = engine("capacity") else {
        return;
    };
    let fd = eng.frontdoor(&["max_running: 2"], "").await;
    let a = Mcp::open(&fd, "ann").await.unwrap();
    let _b = Mcp::open(&fd, "ben").await.unwrap();
    // ann is used again, so ben is the least recently used.
    a.call("echo", json!({"text": "x"})).await;
    let _c = Mcp::open(&fd, "cid").await.expect("room is made");
    let mut running = eng.containers(false);
    running.sort();
    assert_eq!(running, [eng.name("ann"), eng.name("cid")]);
    assert_eq!(
        metric(&fd, "mcp_frontdoor_gateway_evictions_total").await,
        1.0
    );

    // With both remaining gateways busy (open streams), a third user is refused.
    let c = Mcp::open(&fd, "cid").await.unwrap();
    let streams = async {
        tokio::join!(
            a.call_with(
                "stream_progress",
                json!({"count": 4, "interval_ms": 500}),
                |_| {}
            ),
            c.call_with(
                "stream_progress",
                json!({"count": 4, "interval_ms": 500}),
                |_| {}
            )
        )
    };
    let refused = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Mcp::open(&fd, "dan")
            .await
            .err()
            .expect("refused at capacity")
    };
    let ((r1, r2), refused) = tokio::join!(streams, refused);
    r1.unwrap();
    r2.unwrap();
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{refused:?}");
    assert!(refused.retry_after.is_some());
}
