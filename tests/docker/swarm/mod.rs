//! The gateway lifecycle on a one-node Docker Swarm (`gateways.runtime: swarm`), with the
//! front door on the host reaching each task through `docker_gwbridge`: lazy start, one
//! start under concurrency, idle stop with an open stream, a killed task, adoption by a
//! restarted front door, no reach between users, and the clean-up guard.

mod gateway_api;
mod guard;
mod in_container;
mod isolation;
mod measure;

use crate::engine::{metric, status, wait_state};
use crate::mcp::Mcp;
use guard::{swarm_engine, SwarmEngine};
use serde_json::json;
use std::time::{Duration, Instant};

/// The `gateways` line that selects the Swarm runtime.
pub const SWARM: &str = "runtime: swarm";

async fn frontdoor(eng: &SwarmEngine, gateways: &[&str]) -> crate::support::Frontdoor {
    let mut g = vec![SWARM];
    g.extend_from_slice(gateways);
    eng.frontdoor(&g, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_first_request_starts_a_service_and_mcp_works_through_it() {
    let Some(eng) = swarm_engine("swfirst") else {
        return;
    };
    let fd = frontdoor(&eng, &[]).await;
    assert!(
        eng.services().is_empty(),
        "nothing before the first request"
    );
    let t = Instant::now();
    let mcp = Mcp::open(&fd, "alice").await.expect("first request");
    eprintln!("swarm cold start to first response: {:?}", t.elapsed());
    assert_eq!(mcp.call("echo", json!({"text": "hi"})).await, "hi");

    let name = eng.name("alice");
    assert_eq!(eng.services(), std::slice::from_ref(&name));
    assert_eq!(eng.networks(), std::slice::from_ref(&name));
    assert_eq!(eng.inspect_network(&name, "{{.Driver}}"), "overlay");
    let subnet = eng.inspect_network(&name, "{{range .IPAM.Config}}{{.Subnet}}{{end}}");
    assert!(
        subnet.starts_with("10.213.") && subnet.ends_with("/28"),
        "{subnet}"
    );
    // Labels on the service and on its task's container (local events carry those).
    let labels: serde_json::Value =
        serde_json::from_str(&eng.inspect_service(&name, "{{json .Spec.Labels}}")).unwrap();
    assert_eq!(labels["mcp-frontdoor.user"], "alice");
    assert_eq!(labels["mcp-frontdoor.instance"], eng.instance.as_str());
    let task = eng.running_task("alice");
    let labels: serde_json::Value =
        serde_json::from_str(&eng.inspect(&task, "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels["mcp-frontdoor.user"], "alice");
    // From the derived image by id, never restarted by Swarm, hardened as far as API 1.41 goes.
    let image = eng.inspect_service(&name, "{{.Spec.TaskTemplate.ContainerSpec.Image}}");
    assert!(image.starts_with("sha256:"), "{image}");
    assert_eq!(
        eng.inspect_service(&name, "{{.Spec.TaskTemplate.RestartPolicy.Condition}}"),
        "none"
    );
    // On the host it reaches tasks through this node's docker_gwbridge: they stay here.
    let node = crate::engine::docker(&["info", "--format", "{{.Swarm.NodeID}}"]).1;
    assert_eq!(
        eng.inspect_service(&name, "{{json .Spec.TaskTemplate.Placement.Constraints}}"),
        format!("[\"node.id=={node}\"]")
    );
    assert_eq!(
        eng.inspect(&task, "{{json .HostConfig.CapDrop}}"),
        "[\"ALL\"]"
    );
    assert_eq!(eng.inspect(&task, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(eng.inspect(&task, "{{.HostConfig.PidsLimit}}"), "64");
    assert_eq!(
        eng.inspect(&task, "{{.HostConfig.Memory}}"),
        (64u64 << 20).to_string()
    );
    let sec = crate::engine::security(&fd, &name).await;
    assert_eq!(sec.cap_drop, ["ALL"]);
    assert!(sec.read_only_root && sec.pids == Some(64));

    let s = status(&fd, "alice").await;
    assert_eq!(s.state, "ready");
    assert!(s.memory_bytes.is_some_and(|m| m > 0), "{s:?}");
    let logs = {
        use mcp_frontdoor::gateways::GatewayControl;
        fd.gateways
            .as_ref()
            .unwrap()
            .logs("alice", 50)
            .await
            .unwrap()
    };
    assert!(logs.is_some_and(|l| !l.is_empty()), "the task's log");
    assert_eq!(metric(&fd, "mcp_frontdoor_gateway_starts_total").await, 1.0);
    let again = Mcp::open(&fd, "alice").await.unwrap();
    assert_eq!(again.instance().await, mcp.instance().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_twenty_concurrent_first_requests_make_one_service() {
    let Some(eng) = swarm_engine("swtwenty") else {
        return;
    };
    let fd = frontdoor(&eng, &[]).await;
    let opens = (0..20).map(|_| Mcp::open(&fd, "bob"));
    let sessions = futures_util::future::join_all(opens).await;
    let mut instances = Vec::new();
    for s in &sessions {
        instances.push(s.as_ref().expect("every request succeeds").instance().await);
    }
    instances.dedup();
    assert_eq!(instances.len(), 1, "one gateway process served all 20");
    assert_eq!(eng.services(), [eng.name("bob")]);
    assert_eq!(eng.task_containers(&eng.name("bob")).len(), 1);
    assert_eq!(metric(&fd, "mcp_frontdoor_gateway_starts_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_idle_services_are_removed_but_open_streams_keep_them() {
    let Some(eng) = swarm_engine("swidle") else {
        return;
    };
    let fd = frontdoor(&eng, &["idle_timeout: 1s"]).await;
    let mcp = Mcp::open(&fd, "carol").await.unwrap();
    let name = eng.name("carol");
    let out = mcp
        .call_with(
            "stream_progress",
            json!({"count": 6, "interval_ms": 500}),
            |_| {},
        )
        .await
        .unwrap();
    let ended = Instant::now();
    assert_eq!(out, "sent 6 progress notifications");
    assert_eq!(
        eng.services(),
        std::slice::from_ref(&name),
        "alive while streaming"
    );
    eng.until("idle removal", Duration::from_secs(20), || {
        eng.services().is_empty()
            && eng.networks().is_empty()
            && eng.task_containers(&name).is_empty()
    })
    .await;
    assert!(
        ended.elapsed() >= Duration::from_millis(1000),
        "not before idle_timeout"
    );
    wait_state(&fd, "carol", "stopped", Duration::from_secs(5)).await;
    let again = Mcp::open(&fd, "carol").await.expect("a fresh one");
    assert_eq!(again.call("echo", json!({"text": "x"})).await, "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_a_killed_task_is_noticed_and_the_next_request_starts_a_new_one() {
    let Some(eng) = swarm_engine("swkill") else {
        return;
    };
    let fd = frontdoor(&eng, &[]).await;
    let first = Mcp::open(&fd, "erin").await.unwrap().instance().await;
    let task = eng.running_task("erin");
    assert!(crate::engine::docker(&["kill", &task]).0);
    wait_state(&fd, "erin", "stopped", Duration::from_secs(10)).await;
    assert_eq!(
        metric(&fd, "mcp_frontdoor_gateway_crashes_total").await,
        1.0
    );
    let mcp = Mcp::open(&fd, "erin").await.expect("next request");
    assert_ne!(mcp.instance().await, first);
    assert_eq!(eng.services(), [eng.name("erin")], "one service, not two");
    assert_ne!(eng.running_task("erin"), task, "a new task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_a_restarted_front_door_adopts_the_running_service() {
    let Some(eng) = swarm_engine("swadopt") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let gw = [SWARM, "idle_timeout: 1h"];
    let fd = eng.frontdoor_in(data.path(), &gw, "").await;
    let first = Mcp::open(&fd, "ida").await.unwrap();
    let instance = first.instance().await;
    let service_id = eng.inspect_service(&eng.name("ida"), "{{.ID}}");
    let task = eng.running_task("ida");
    drop(first);
    let mut fd = fd;
    fd.shutdown.trigger(Duration::ZERO);
    fd.join().await.unwrap();
    drop(fd);

    // An overlay a crashed front door left behind (removed by id at the reconcile).
    let orphan = eng.name("kim");
    let inst = format!("mcp-frontdoor.instance={}", eng.instance);
    let (ok, out) = crate::engine::docker(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--attachable",
        "--subnet",
        "10.213.250.0/28",
        "--label",
        "mcp-frontdoor.managed=true",
        "--label",
        &inst,
        "--label",
        "mcp-frontdoor.user=kim",
        &orphan,
    ]);
    assert!(ok, "{out}");

    let fd = eng.frontdoor_in(data.path(), &gw, "").await;
    wait_state(&fd, "ida", "ready", Duration::from_secs(15)).await;
    let mcp = Mcp::open(&fd, "ida")
        .await
        .expect("served by the adopted gateway");
    assert_eq!(mcp.instance().await, instance, "same gateway process");
    assert_eq!(eng.services(), [eng.name("ida")], "no second service");
    assert_eq!(eng.inspect_service(&eng.name("ida"), "{{.ID}}"), service_id);
    assert_eq!(eng.running_task("ida"), task);
    eng.until(
        "the orphan overlay removed",
        Duration::from_secs(15),
        || eng.networks() == [eng.name("ida")],
    )
    .await;
    assert!(fd
        .metrics_text()
        .await
        .contains("mcp_frontdoor_gateway_start_duration_seconds_count{outcome=\"adopted\"} 1"));
}

/// The guard removes services and overlay networks of its instance when the test panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_the_guard_cleans_up_after_a_panic() {
    let Some(probe) = swarm_engine("swpanic") else {
        return;
    };
    let instance = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
    let seen = instance.clone();
    let failed = tokio::spawn(async move {
        let eng = swarm_engine("swpanic").expect("swarm");
        *seen.lock() = eng.instance.clone();
        let fd = frontdoor(&eng, &[]).await;
        Mcp::open(&fd, "pam").await.unwrap();
        assert_eq!(eng.services().len(), 1);
        panic!("a failing test");
    })
    .await;
    assert!(failed.is_err(), "the test panicked");
    let instance = instance.lock().clone();
    let label = format!("label=mcp-frontdoor.instance={instance}");
    let services = crate::engine::docker(&["service", "ls", "-q", "--filter", &label]).1;
    let networks = crate::engine::docker(&["network", "ls", "-q", "--filter", &label]).1;
    let containers = crate::engine::docker(&["ps", "-aq", "--filter", &label]).1;
    assert_eq!(
        (services.as_str(), networks.as_str(), containers.as_str()),
        ("", "", "")
    );
    drop(probe);
}

/// `mcp-frontdoor gateways stop-all` with `gateways.runtime: swarm` removes the services a
/// stopped front door left running, their overlays and the derived image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_stop_all_removes_the_services_a_stopped_front_door_left() {
    let Some(eng) = swarm_engine("swstopall") else {
        return;
    };
    let mut fd = frontdoor(&eng, &["idle_timeout: 1h"]).await;
    Mcp::open(&fd, "ann").await.expect("ann's gateway");
    Mcp::open(&fd, "ben").await.expect("ben's gateway");
    fd.shutdown.trigger(Duration::ZERO);
    fd.join().await.unwrap();
    drop(fd);
    assert_eq!(eng.services().len(), 2, "gateways still running");

    let stdout = crate::engine::stop_all_cli(
        &eng.instance,
        &[
            ("FRONTDOOR_GATEWAYS__RUNTIME", "swarm"),
            ("FRONTDOOR_GATEWAYS__DOCKER__ENGINE_FOR_GATEWAYS", "none"),
        ],
    );
    assert!(stdout.contains("removed 2 gateway containers"), "{stdout}");
    assert_eq!(eng.services(), Vec::<String>::new(), "services left");
    assert_eq!(eng.networks(), Vec::<String>::new(), "overlays left");
    assert_eq!(
        eng.containers(true),
        Vec::<String>::new(),
        "task containers left"
    );
    assert_eq!(eng.images(), Vec::<String>::new(), "derived image left");
}
