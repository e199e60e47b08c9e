//! Taking an instance down: `mcp-frontdoor gateways stop-all` and `gateways.stop_on_shutdown`
//! remove every gateway, the MCP server containers on their networks, the networks and the
//! derived gateway image, and never another instance's objects.

use crate::engine::{docker, engine, Engine};
use crate::mcp::Mcp;
use std::time::Duration;

/// A container standing in for an MCP server a gateway started: labelled `docker-mcp=true`
/// like docker/mcp-gateway's, on the user's network, without any front door label (so the
/// engine guard cannot find it; this guard removes it whatever happens).
struct FakeServer(String);

impl FakeServer {
    fn on(eng: &Engine, network: &str) -> Self {
        let name = format!("{}-server", eng.name("x"));
        let ok = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            network,
            "--label",
            "docker-mcp=true",
            &eng.image,
            "--transport=streaming",
            "--host",
            "0.0.0.0",
            "--port",
            "8811",
            "--allow-unauthenticated",
        ])
        .0;
        assert!(ok, "docker run of the stand-in server");
        Self(name)
    }

    /// A server container the policed Docker API made for `user` on no network (a server
    /// with `disableNetwork`): found by its labels only, never through a user network.
    fn offline(eng: &Engine, user: &str) -> Self {
        let name = format!("{}-offline", eng.name("x"));
        let labels = [
            format!("mcp-frontdoor.instance={}", eng.instance),
            format!("mcp-frontdoor.user={user}"),
            "mcp-frontdoor.role=server".to_string(),
            "docker-mcp=true".to_string(),
        ];
        let mut args = vec!["create", "--name", &name, "--network", "none"];
        for l in &labels {
            args.extend(["--label", l]);
        }
        args.push(&eng.image);
        assert!(
            docker(&args).0,
            "docker create of the offline stand-in server"
        );
        Self(name)
    }

    fn exists(&self) -> bool {
        docker(&["inspect", "--format", "{{.Id}}", &self.0]).0
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        docker(&["rm", "-f", &self.0]);
    }
}

/// A container of another instance, which no teardown may touch.
fn foreign(other: &Engine) -> String {
    let name = other.name("kim");
    let label = format!("mcp-frontdoor.instance={}", other.instance);
    assert!(
        docker(&[
            "create",
            "--name",
            &name,
            "--label",
            "mcp-frontdoor.managed=true",
            "--label",
            &label,
            "--label",
            "mcp-frontdoor.user=kim",
            &other.image,
        ])
        .0
    );
    name
}

fn nothing_left(eng: &Engine) {
    assert_eq!(
        eng.containers(true),
        Vec::<String>::new(),
        "containers left"
    );
    assert_eq!(eng.networks(), Vec::<String>::new(), "networks left");
    assert_eq!(eng.images(), Vec::<String>::new(), "derived images left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_all_removes_the_instance_a_stopped_front_door_left_running() {
    let Some(eng) = engine("stopall") else { return };
    let Some(other) = engine("stopother") else {
        return;
    };
    let mut fd = eng.frontdoor(&["idle_timeout: 1h"], "").await;
    Mcp::open(&fd, "ann").await.expect("ann's gateway");
    Mcp::open(&fd, "ben").await.expect("ben's gateway");
    let server = FakeServer::on(&eng, &eng.name("ann"));
    let offline = FakeServer::offline(&eng, "ben");
    let theirs = foreign(&other);
    // The default shutdown leaves everything for the next front door to adopt.
    fd.shutdown.trigger(Duration::ZERO);
    fd.join().await.unwrap();
    drop(fd);
    assert_eq!(eng.containers(false).len(), 2, "gateways still running");
    assert_eq!(eng.images().len(), 1, "the derived gateway image");

    let stdout = crate::engine::stop_all_cli(&eng.instance, &[]);
    assert!(
        stdout.contains("removed 2 gateway containers, 2 MCP server containers"),
        "{stdout}"
    );
    nothing_left(&eng);
    assert!(
        !server.exists(),
        "the server container went with its network"
    );
    assert!(
        !offline.exists(),
        "the server on no network went by its labels"
    );
    assert_eq!(
        other.containers(true),
        [theirs],
        "another instance untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_on_shutdown_leaves_nothing_of_the_instance() {
    let Some(eng) = engine("stopshut") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let mut fd = eng
        .frontdoor_in(
            data.path(),
            &["idle_timeout: 1h", "stop_on_shutdown: true"],
            "",
        )
        .await;
    Mcp::open(&fd, "cat").await.expect("cat's gateway");
    let server = FakeServer::on(&eng, &eng.name("cat"));
    assert_eq!(eng.images().len(), 1, "the derived gateway image");
    fd.shutdown.trigger(Duration::ZERO);
    fd.join().await.unwrap();
    nothing_left(&eng);
    assert!(
        !server.exists(),
        "the server container went with its network"
    );
    let state = std::fs::read_to_string(data.path().join("gateways/state.json")).unwrap();
    assert!(!state.contains("\"cat\""), "nothing left to adopt: {state}");
}
