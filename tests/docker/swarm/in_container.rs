//! The front door itself in a container (as `docker-compose.yml` runs it) on the swarm
//! manager: it joins each user's overlay and reaches the task at its overlay address; no
//! placement constraint keeps gateways on its node, except those with the policed Docker API
//! (the real gateway, second test), whose socket is a file of this host. Needs the front door image
//! (`scripts/build-frontdoor-image.sh` makes `mcp-frontdoor:local`, as `scripts/test.sh` does first, or
//! `MCP_FRONTDOOR_IMAGE`): without it the test prints why and passes (fails under CI=true).

use super::guard::swarm_engine;
use crate::engine::docker;
use crate::mcp::Mcp;
use crate::support::client::{Client, Proto};
use crate::support::frontdoor::MASTER_KEY;
use crate::support::tokens::{self, AUDIENCE, HS_SECRET, ISSUER};
use serde_json::json;
use std::time::{Duration, Instant};

fn frontdoor_image() -> String {
    std::env::var("MCP_FRONTDOOR_IMAGE").unwrap_or_else(|_| "mcp-frontdoor:local".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_a_front_door_in_a_container_reaches_gateways_over_their_overlay() {
    let Some(eng) = swarm_engine("swinctr") else {
        return;
    };
    let image = frontdoor_image();
    if !docker(&["image", "inspect", &image]).0 {
        let why =
            format!("image {image} is missing; IMAGE={image} scripts/build-frontdoor-image.sh");
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true but {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hs.secret"), HS_SECRET).unwrap();
    std::fs::write(dir.path().join("master.key"), MASTER_KEY).unwrap();
    let yaml = format!(
        "server: {{ listen: 0.0.0.0:8080, sse_keepalive: 0s }}\n\
         metrics: {{ listen: 127.0.0.1:9464 }}\n\
         data_dir: /var/lib/mcp-frontdoor/data\n\
         secrets: {{ master_key_file: /etc/mcp-frontdoor/master.key }}\n\
         auth: {{ issuer: \"{ISSUER}\", audience: [{AUDIENCE}], hs256_secret_file: /etc/mcp-frontdoor/hs.secret }}\n\
         gateways:\n  runtime: swarm\n  spawn_timeout: 30s\n  {}\n",
        eng.docker_line("")
    );
    std::fs::write(dir.path().join("frontdoor.yaml"), yaml).unwrap();
    let name = format!("mcp-fd-{}-frontdoor", eng.instance);
    let (ok, out) = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        // The instance label (not the managed one): the test's guard removes it, the front
        // door never touches it.
        "--label",
        &format!("mcp-frontdoor.instance={}", eng.instance),
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &format!("{}:/etc/mcp-frontdoor:ro", dir.path().display()),
        "-p",
        "127.0.0.1::8080",
        &image,
    ]);
    assert!(ok, "docker run: {out}");
    let port = docker(&["port", &name, "8080/tcp"]).1;
    let port = port
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");

    let start = Instant::now();
    let mcp = loop {
        let client = Client::new(&base, None, Proto::H1);
        // Until it listens (a refused connection panics inside the client's send).
        let attempt =
            tokio::spawn(async move { Mcp::open_at(client, &tokens::bearer("alice")).await }).await;
        match attempt {
            Ok(Ok(m)) => break m,
            other => {
                let logs = docker(&["logs", "--tail", "20", &name]).1;
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "no MCP session through the containerized front door: {:?}\n{logs}",
                    other.map(|r| r.err())
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    assert_eq!(
        mcp.call("echo", json!({"text": "over the overlay"})).await,
        "over the overlay"
    );

    let service = eng.name("alice");
    assert_eq!(eng.services(), std::slice::from_ref(&service));
    let joined = eng.inspect(
        &name,
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
    );
    assert!(
        joined.split(' ').any(|n| n == service),
        "joined the user's overlay: {joined}"
    );
    let placement = eng.inspect_service(&service, "{{json .Spec.TaskTemplate.Placement}}");
    assert!(
        !placement.contains("node.id"),
        "no node constraint when the front door is on the overlay: {placement}"
    );
}

/// The same deployment with the real gateway and its policed Docker API: the socket directory
/// is a host directory mounted into the front door's container (`api_socket_dir` inside,
/// `api_socket_host_dir` on the host), the gateway's task is pinned to this node though the
/// front door reaches it over the overlay, and its catalog server answers a tools/call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_a_front_door_in_a_container_runs_the_real_gateway_with_its_policed_api() {
    use super::gateway_api::{real_images, REAL_GATEWAY, REAL_NAME, STDIO};
    let Some(eng) = swarm_engine("swinapi") else {
        return;
    };
    if !real_images("swinapi") {
        return;
    }
    let image = frontdoor_image();
    if !docker(&["image", "inspect", &image]).0 {
        let why =
            format!("image {image} is missing; IMAGE={image} scripts/build-frontdoor-image.sh");
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "CI=true but {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let data = dir.path().join("data");
    // A base catalog of its own: with `catalogs/base/` present nothing is seeded.
    let base = data.join("catalogs/base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        base.join("swgwapi.yaml"),
        format!("registry:\n  hashsrv: {{ type: server, image: \"{STDIO}\", title: stdio }}\n"),
    )
    .unwrap();
    std::fs::write(etc.join("hs.secret"), HS_SECRET).unwrap();
    std::fs::write(etc.join("master.key"), MASTER_KEY).unwrap();
    const DATA: &str = "/var/lib/mcp-frontdoor/data";
    let host_api = data.join("gateway-api");
    let yaml = format!(
        "server: {{ listen: 0.0.0.0:8080, sse_keepalive: 0s }}\n\
         metrics: {{ listen: 127.0.0.1:9464 }}\n\
         data_dir: {DATA}\n\
         secrets: {{ master_key_file: /etc/mcp-frontdoor/master.key }}\n\
         auth: {{ issuer: \"{ISSUER}\", audience: [{AUDIENCE}], hs256_secret_file: /etc/mcp-frontdoor/hs.secret }}\n\
         gateways:\n  runtime: swarm\n  spawn_timeout: 60s\n  \
         docker: {{ instance: {}, image: \"{REAL_GATEWAY}\", engine_for_gateways: policed, \
         api_socket_dir: {DATA}/gateway-api, api_socket_host_dir: {} }}\n",
        eng.instance,
        host_api.display()
    );
    std::fs::write(etc.join("frontdoor.yaml"), yaml).unwrap();
    let name = format!("mcp-fd-{}-frontdoor", eng.instance);
    let (ok, out) = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--label",
        &format!("mcp-frontdoor.instance={}", eng.instance),
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &format!("{}:/etc/mcp-frontdoor:ro", etc.display()),
        "-v",
        &format!("{}:{DATA}", data.display()),
        "-p",
        "127.0.0.1::8080",
        &image,
    ]);
    assert!(ok, "docker run: {out}");
    let port = docker(&["port", &name, "8080/tcp"]).1;
    let port = port
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{port}");

    let start = Instant::now();
    let mcp = loop {
        let client = Client::new(&base, None, Proto::H1);
        let attempt = tokio::spawn(async move {
            Mcp::open_server(client, &tokens::bearer("alice"), REAL_NAME).await
        })
        .await;
        match attempt {
            Ok(Ok(m)) => break m,
            other => {
                let logs = docker(&["logs", "--tail", "20", &name]).1;
                assert!(
                    start.elapsed() < Duration::from_secs(90),
                    "no MCP session through the containerized front door: {:?}\n{logs}",
                    other.map(|r| r.err())
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let word = format!("in-container-{}", eng.instance);
    assert_eq!(mcp.call("echo", json!({ "text": word })).await, word);

    let service = eng.name("alice");
    let node = docker(&["info", "--format", "{{.Swarm.NodeID}}"]).1;
    assert_eq!(
        eng.inspect_service(
            &service,
            "{{json .Spec.TaskTemplate.Placement.Constraints}}"
        ),
        format!("[\"node.id=={node}\"]"),
        "pinned to this node for its policed API, though reached over the overlay"
    );
    let task = eng.running_task("alice");
    let mounts = eng.inspect(
        &task,
        "{{range .Mounts}}{{.Source}}->{{.Destination}} {{end}}",
    );
    assert!(
        mounts.contains(&format!("{}/alice->/var/run", host_api.display())),
        "{mounts}"
    );
}
