//! The real docker/mcp-gateway on Swarm with its policed Docker API (`engine_for_gateways:
//! policed`): the task runs on the front door's node with its socket directory mounted, the
//! gateway's own `docker` CLI runs the catalog's stdio server as a plain container on the
//! user's attachable overlay, and a tools/call only that server answers comes back. User B's
//! policed API cannot put a container on A's overlay, by name or by id.

use super::guard::{swarm_engine, SwarmEngine};
use super::SWARM;
use crate::engine::{docker, Engine};
use crate::mcp::Mcp;
use crate::support::Frontdoor;
use mcp_frontdoor::catalog::{Catalog, Format};
use serde_json::{json, Value};

pub(super) use crate::gateway_api::{in_gateway, real_images, REAL_GATEWAY, STDIO};
/// The real gateway's name in its initialize answer.
pub(super) const REAL_NAME: &str = "Docker AI MCP Gateway";

/// The swarm engine with the real gateway as the gateway image, or `None` when it cannot run.
fn real_engine(tag: &str) -> Option<SwarmEngine> {
    let mut eng = swarm_engine(tag)?;
    if !real_images(tag) {
        return None;
    }
    eng.eng.image = REAL_GATEWAY.into();
    Some(eng)
}

/// A front door running the real gateway with the policed API (on Swarm, or on plain Docker
/// for comparison), and one base catalog: the stdio test server, kept running for the session
/// (`longLived`) so it can be inspected.
pub(super) async fn real_frontdoor(eng: &Engine, swarm: bool) -> Frontdoor {
    real_frontdoor_in(eng, swarm, None).await
}

/// The same with a data directory that outlives the front door (restarts).
async fn real_frontdoor_in(eng: &Engine, swarm: bool, data: Option<&std::path::Path>) -> Frontdoor {
    let docker_line = format!(
        "docker: {{ instance: {}, image: \"{REAL_GATEWAY}\", engine_for_gateways: policed, \
         servers: {{ memory: 96m, cpus: 0.5, pids: 32 }} }}",
        eng.instance
    );
    let mut b = Frontdoor::builder()
        .plain()
        .lifecycle()
        .gateways("spawn_timeout: 90s")
        .gateways("idle_timeout: 1h")
        .gateways(&docker_line);
    if swarm {
        b = b.gateways(SWARM);
    }
    if let Some(d) = data {
        b = b.data_dir(d.to_path_buf());
    }
    let fd = b.start().await;
    let services = fd.services.clone().unwrap();
    for c in services.catalogs.list_base().unwrap() {
        services.catalogs.delete_base(&c.name).unwrap();
    }
    let catalog = format!(
        "registry:\n  hashsrv: {{ type: server, image: \"{STDIO}\", title: stdio, longLived: true }}\n"
    );
    let catalog = Catalog::parse(catalog.as_bytes(), Format::Yaml).unwrap();
    services
        .catalogs
        .put_base("swgwapi", &catalog, None)
        .unwrap();
    fd
}

async fn frontdoor(eng: &SwarmEngine) -> Frontdoor {
    real_frontdoor(eng, true).await
}

/// `docker run --rm -i <stdio>` from inside `container` with one tools/list on stdin: the
/// answer's id is in stdout when the gateway's policed API ran it.
fn legit_run(container: &str) -> (bool, String, String) {
    let (_, out, err) = in_gateway(
        container,
        &["run", "--rm", "-i", "--pull", "never", STDIO],
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\"}\n",
    );
    (out.contains("\"id\":7"), out, err)
}

/// The instance's containers (every container the policed API creates carries its label):
/// what an attack could have added.
fn instance_containers(eng: &SwarmEngine) -> Vec<String> {
    let label = crate::engine::instance_label(&eng.instance);
    let ids = docker(&["ps", "-aq", "--no-trunc", "--filter", &label]).1;
    let mut v: Vec<String> = ids.lines().map(String::from).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_the_real_gateway_runs_its_server_through_the_policed_api_on_the_overlay() {
    let Some(eng) = real_engine("swrealgw") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let fd = real_frontdoor_in(&eng, true, Some(data.path())).await;
    let t = std::time::Instant::now();
    // As an MCP client would: a 503 with Retry-After is tried again once after that wait. With
    // the whole Docker suite running beside it on 2 cores, a CI run saw the real gateway's
    // first start end in a 503 once (a rerun alone passed in 11 s); a second refusal fails.
    let mcp = match Mcp::open_gateway(&fd, "alice", REAL_NAME).await {
        Err(first) if first.status == 503 && first.retry_after.is_some() => {
            eprintln!("first start refused after {:?}: {first:?}", t.elapsed());
            let wait = first.retry_after.as_deref().and_then(|s| s.parse().ok());
            tokio::time::sleep(std::time::Duration::from_secs(wait.unwrap_or(5))).await;
            Mcp::open_gateway(&fd, "alice", REAL_NAME).await
        }
        other => other,
    }
    .expect("alice's real gateway");
    eprintln!(
        "swarm real gateway cold start to first response: {:?}",
        t.elapsed()
    );
    // Only the catalog's server has this tool; its answer comes through the gateway.
    let word = format!("on-swarm-{}", eng.instance);
    assert_eq!(mcp.call("echo", json!({ "text": word })).await, word);
    let who: Value = serde_json::from_str(&mcp.call("whoami", json!({})).await).unwrap();
    let hostname = who["hostname"].as_str().unwrap_or_default().to_string();

    // The gateway was refused nothing: not its self-inspect (by hostname, which on Swarm is a
    // task container named `<service>.1.<task id>`), not its server's network.
    let refused: Vec<String> = fd
        .metrics_text()
        .await
        .lines()
        .filter(|l| l.starts_with("mcp_frontdoor_gateway_api_refused_total{") && !l.ends_with(" 0"))
        .map(String::from)
        .collect();
    assert!(
        refused.is_empty(),
        "the real gateway's calls refused: {refused:?}"
    );

    let name = eng.name("alice");
    let mounts = eng.pinned_with_policed_api("alice");
    let task = eng.running_task("alice");
    assert!(
        mounts.contains("gateway-api/alice->/var/run:false") && !mounts.contains("docker.sock"),
        "{mounts}"
    );

    // The server container: a plain container (no task) of alice, on alice's overlay only,
    // and the one that answered.
    let filter = |k: &str, v: &str| format!("label={k}={v}");
    let servers = docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &filter("mcp-frontdoor.instance", &eng.instance),
        "--filter",
        &filter("mcp-frontdoor.user", "alice"),
        "--filter",
        &filter("mcp-frontdoor.role", "server"),
    ])
    .1;
    let servers: Vec<&str> = servers.lines().collect();
    assert_eq!(servers.len(), 1, "one running server: {servers:?}");
    let server = servers[0];
    assert!(
        server.starts_with(&hostname) && hostname.len() >= 12,
        "whoami answered from {hostname:?}, the server is {server}"
    );
    let overlay_id = eng.inspect_network(&name, "{{.Id}}");
    let nets = eng.inspect(
        server,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.NetworkID}} {{end}}",
    );
    assert_eq!(
        nets.trim(),
        format!("{name}={overlay_id}"),
        "on alice's overlay only"
    );
    let labels = eng.inspect(server, "{{json .Config.Labels}}");
    assert!(
        !labels.contains("com.docker.swarm"),
        "a plain container, not a task: {labels}"
    );
    assert!(
        eng.address_on(&name, server).starts_with("10.213."),
        "an address on the overlay"
    );

    // A restarted front door adopts the service and serves its policed API again (a fresh
    // socket in the directory the task's mount shows).
    drop(mcp);
    let mut fd = fd;
    fd.shutdown.trigger(std::time::Duration::ZERO);
    fd.join().await.unwrap();
    drop(fd);
    let fd = real_frontdoor_in(&eng, true, Some(data.path())).await;
    crate::engine::wait_state(&fd, "alice", "ready", std::time::Duration::from_secs(30)).await;
    assert_eq!(eng.running_task("alice"), task, "the same task, adopted");
    let (ok, out, err) = legit_run(&task);
    assert!(ok, "the policed API after adoption: out={out} err={err}");
    let (_, _, err) = in_gateway(
        &task,
        &["run", "--rm", "--pull", "never", "--privileged", STDIO],
        "",
    );
    assert!(
        err.contains("mcp-frontdoor:"),
        "still policed after adoption: {err}"
    );

    // Stopping the gateway removes the server with it, then the overlay.
    use mcp_frontdoor::gateways::GatewayControl;
    assert!(fd.gateways.as_ref().unwrap().stop("alice").await.unwrap());
    assert!(
        !docker(&["inspect", server]).0,
        "the server outlived its gateway"
    );
    eng.until(
        "alice's overlay removed",
        std::time::Duration::from_secs(20),
        || eng.networks().is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_user_b_cannot_put_a_container_on_user_a_overlay_through_its_policed_api() {
    let Some(eng) = real_engine("swgwiso") else {
        return;
    };
    let fd = frontdoor(&eng).await;
    let (a, b) = tokio::join!(
        Mcp::open_gateway(&fd, "alice", REAL_NAME),
        Mcp::open_gateway(&fd, "bob", REAL_NAME)
    );
    let (_a, _b) = (a.expect("alice's gateway"), b.expect("bob's gateway"));
    let (na, nb) = (eng.name("alice"), eng.name("bob"));
    let id_a = eng.inspect_network(&na, "{{.Id}}");
    let id_b = eng.inspect_network(&nb, "{{.Id}}");
    assert_eq!((id_a.len(), id_b.len()), (25, 25), "Swarm network ids");
    let bob_task = eng.running_task("bob");

    // Bob's own overlay, by name and by id: his server runs there (the check is not a
    // refusal of everything).
    for own in [nb.as_str(), id_b.as_str()] {
        let (ok, out, err) = in_gateway(
            &bob_task,
            &[
                "run",
                "-d",
                "-i",
                "--pull",
                "never",
                "--network",
                own,
                STDIO,
            ],
            "",
        );
        assert!(ok, "bob's server on his own overlay ({own}): {err}");
        let nets = eng.inspect(
            out.trim(),
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        );
        assert_eq!(nets.trim(), nb, "by {own}");
        assert!(docker(&["rm", "-f", out.trim()]).0);
    }

    let before = instance_containers(&eng);
    let attacks: Vec<(&str, Vec<&str>)> = vec![
        ("by name", vec!["--network", &na]),
        ("by id", vec!["--network", &id_a]),
        ("by id prefix", vec!["--network", &id_a[..8]]),
        (
            "by id with an alias",
            vec!["--network", &id_a, "--network-alias=x"],
        ),
    ];
    for (what, net) in &attacks {
        let mut args = vec!["run", "-d", "-i", "--pull", "never"];
        args.extend(net);
        args.push(STDIO);
        let (ok, out, err) = in_gateway(&bob_task, &args, "");
        assert!(
            !ok && err.contains("mcp-frontdoor:"),
            "{what}: not refused by the policed API: ok={ok} out={out} err={err}"
        );
    }
    let (ok, _, err) = in_gateway(&bob_task, &["network", "connect", &id_a, &bob_task], "");
    assert!(
        !ok && err.contains("mcp-frontdoor:"),
        "network connect: {err}"
    );
    let (ok, _, err) = in_gateway(&bob_task, &["network", "inspect", &id_a], "");
    assert!(
        !ok && err.contains("No such network"),
        "network inspect: {err}"
    );
    assert_eq!(instance_containers(&eng), before, "nothing was created");
    let on_a = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("network={na}"),
        "--filter",
        "label=mcp-frontdoor.user=bob",
    ])
    .1;
    assert_eq!(on_a, "", "bob's containers on alice's overlay");
}
