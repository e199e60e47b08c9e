//! The front door itself in a container (as `docker-compose.yml` runs it) on the swarm
//! manager: it joins each user's overlay and reaches the task at its overlay address; no
//! placement constraint keeps gateways on its node, except those with the policed Docker API
//! (the real gateway, second test), whose socket is a file of this host. Needs the front door image
//! (`scripts/build-frontdoor-image.sh` makes `mcp-frontdoor:local`, as `scripts/test.sh` does first, or
//! `MCP_FRONTDOOR_IMAGE`): without it the test prints why and passes (fails under CI=true).

use super::guard::{swarm_engine, SwarmEngine};
use crate::engine::docker;
use crate::mcp::Mcp;
use crate::support::client::{Client, Proto};
use crate::support::frontdoor::MASTER_KEY;
use crate::support::tokens::{self, AUDIENCE, HS_SECRET, ISSUER};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// The front door image, or `None` (after saying why; a failure under CI=true) without it.
fn frontdoor_image() -> Option<String> {
    let image =
        std::env::var("MCP_FRONTDOOR_IMAGE").unwrap_or_else(|_| "mcp-frontdoor:local".into());
    if docker(&["image", "inspect", &image]).0 {
        return Some(image);
    }
    let why = format!("image {image} is missing; IMAGE={image} scripts/build-frontdoor-image.sh");
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CI=true but {why}"
    );
    eprintln!("SKIPPED: {why}");
    None
}

/// `etc/frontdoor.yaml` (with the JWT secret and master key beside it) for a front door in a
/// container listening on 8080, with `data_dir` and the `gateways` block given.
fn write_config(etc: &Path, data_dir: &str, gateways: &str) {
    std::fs::create_dir_all(etc).unwrap();
    std::fs::write(etc.join("hs.secret"), HS_SECRET).unwrap();
    std::fs::write(etc.join("master.key"), MASTER_KEY).unwrap();
    let yaml = format!(
        "server: {{ listen: 0.0.0.0:8080, sse_keepalive: 0s }}\n\
         metrics: {{ listen: 127.0.0.1:9464 }}\n\
         data_dir: {data_dir}\n\
         secrets: {{ master_key_file: /etc/mcp-frontdoor/master.key }}\n\
         auth: {{ issuer: \"{ISSUER}\", audience: [{AUDIENCE}], hs256_secret_file: /etc/mcp-frontdoor/hs.secret }}\n\
         gateways:\n  runtime: swarm\n{gateways}"
    );
    std::fs::write(etc.join("frontdoor.yaml"), yaml).unwrap();
}

/// Runs the front door image as `name` with the engine's socket, `etc` and the `-v` mounts
/// in `volumes`, its port 8080 published on loopback; its base URL.
fn run_frontdoor(
    eng: &SwarmEngine,
    name: &str,
    image: &str,
    etc: &Path,
    volumes: &[String],
) -> String {
    let etc = format!("{}:/etc/mcp-frontdoor:ro", etc.display());
    let instance = format!("mcp-frontdoor.instance={}", eng.instance);
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        // The instance label (not the managed one): the test's guard removes it, the front
        // door never touches it.
        "--label",
        &instance,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &etc,
    ];
    for v in volumes {
        args.extend(["-v", v.as_str()]);
    }
    args.extend(["-p", "127.0.0.1::8080", image]);
    let (ok, out) = docker(&args);
    assert!(ok, "docker run: {out}");
    let port = docker(&["port", name, "8080/tcp"]).1;
    let port = port
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    format!("http://127.0.0.1:{port}")
}

/// Alice's MCP session (with a gateway that calls itself `server`) through the front door at
/// `base`, retried until it listens and its gateway answers, for at most `limit`.
async fn session_through(base: &str, name: &str, server: &'static str, limit: Duration) -> Mcp {
    let start = Instant::now();
    loop {
        let client = Client::new(base, None, Proto::H1);
        // Until it listens (a refused connection panics inside the client's send).
        let attempt = tokio::spawn(async move {
            Mcp::open_server(client, &tokens::bearer("alice"), server).await
        })
        .await;
        match attempt {
            Ok(Ok(m)) => return m,
            other => {
                let logs = docker(&["logs", "--tail", "20", name]).1;
                assert!(
                    start.elapsed() < limit,
                    "no MCP session through the containerized front door: {:?}\n{logs}",
                    other.map(|r| r.err())
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_a_front_door_in_a_container_reaches_gateways_over_their_overlay() {
    let Some(eng) = swarm_engine("swinctr") else {
        return;
    };
    let Some(image) = frontdoor_image() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let gateways = format!("  spawn_timeout: 30s\n  {}\n", eng.docker_line(""));
    write_config(dir.path(), "/var/lib/mcp-frontdoor/data", &gateways);
    let name = format!("mcp-fd-{}-frontdoor", eng.instance);
    let base = run_frontdoor(&eng, &name, &image, dir.path(), &[]);
    let mcp = session_through(&base, &name, "mcp-test-gateway", Duration::from_secs(60)).await;
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
    let Some(image) = frontdoor_image() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let data = dir.path().join("data");
    // A base catalog of its own: with `catalogs/base/` present nothing is seeded.
    let base = data.join("catalogs/base");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(
        base.join("swgwapi.yaml"),
        format!("registry:\n  hashsrv: {{ type: server, image: \"{STDIO}\", title: stdio }}\n"),
    )
    .unwrap();
    const DATA: &str = "/var/lib/mcp-frontdoor/data";
    let host_api = data.join("gateway-api");
    let gateways = format!(
        "  spawn_timeout: 60s\n  \
         docker: {{ instance: {}, image: \"{REAL_GATEWAY}\", engine_for_gateways: policed, \
         api_socket_dir: {DATA}/gateway-api, api_socket_host_dir: {} }}\n",
        eng.instance,
        host_api.display()
    );
    write_config(&etc, DATA, &gateways);
    let name = format!("mcp-fd-{}-frontdoor", eng.instance);
    let url = run_frontdoor(
        &eng,
        &name,
        &image,
        &etc,
        &[format!("{}:{DATA}", data.display())],
    );
    let mcp = session_through(&url, &name, REAL_NAME, Duration::from_secs(90)).await;
    let word = format!("in-container-{}", eng.instance);
    assert_eq!(mcp.call("echo", json!({ "text": word })).await, word);

    // Pinned to this node for its policed API, though reached over the overlay.
    let mounts = eng.pinned_with_policed_api("alice");
    assert!(
        mounts.contains(&format!("{}/alice->/var/run:false", host_api.display())),
        "{mounts}"
    );
}
