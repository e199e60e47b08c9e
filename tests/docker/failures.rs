//! Failures a client sees as 503 + Retry-After, quickly and without leftovers: the engine is
//! unreachable, the image cannot be pulled, the gateway never becomes healthy, it exits.

use crate::engine::{engine, metric, status};
use crate::mcp::Mcp;
use crate::support::client::Proto;
use crate::support::Frontdoor;
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http::StatusCode;
use mcp_frontdoor::runtime::docker::{DockerRuntime, DockerSettings, OwnContainer};
use mcp_frontdoor::runtime::{
    ContainerInfo, ContainerSecurity, ContainerSpec, FileSpec, ImageInfo, LabelFilter, NetworkInfo,
    NetworkSpec, Runtime, RuntimeError, RuntimeErrorKind, RuntimeEvent, RuntimeMetrics,
};
use serde_json::json;
use std::sync::Arc;
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
    let pings = metric(
        &fd,
        "mcp_frontdoor_docker_api_errors_total{operation=\"ping\"}",
    )
    .await;
    assert!(pings >= 1.0, "{}", fd.metrics_text().await);
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
    // The network made meanwhile is removed right after the answer.
    eng.until("clean-up", Duration::from_secs(10), || {
        eng.containers(true).is_empty() && eng.networks().is_empty()
    })
    .await;
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
    assert_eq!(metric(&fd, "mcp_frontdoor_gateway_starts_total").await, 1.0);
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

/// The real engine, until `broken` is set: then every call (and the events stream) fails as
/// an unreachable engine does. With `mute_events` no event ever arrives (as in the moment
/// between a container's death and its event).
struct Flaky {
    real: DockerRuntime,
    broken: tokio::sync::watch::Sender<bool>,
    mute_events: bool,
}

impl Flaky {
    fn new(mute_events: bool) -> Self {
        Self {
            real: DockerRuntime::new(
                DockerSettings {
                    host: None,
                    api_timeout: Duration::from_secs(10),
                    pull_timeout: Duration::from_secs(10),
                    own_container: OwnContainer::Auto,
                },
                RuntimeMetrics::default(),
            ),
            broken: tokio::sync::watch::channel(false).0,
            mute_events,
        }
    }
}

impl Flaky {
    fn check(&self, op: &'static str) -> Result<(), RuntimeError> {
        if *self.broken.borrow() {
            Err(RuntimeError::new(
                op,
                RuntimeErrorKind::Unreachable,
                "injected: engine down",
            ))
        } else {
            Ok(())
        }
    }
}

macro_rules! delegate {
    ($self:ident, $op:literal, $call:expr) => {{
        $self.check($op)?;
        $call.await
    }};
}

#[async_trait]
impl Runtime for Flaky {
    fn name(&self) -> &'static str {
        "flaky-docker"
    }
    async fn ping(&self) -> Result<(), RuntimeError> {
        delegate!(self, "ping", self.real.ping())
    }
    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        delegate!(self, "inspect_image", self.real.image(image))
    }
    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        delegate!(self, "pull_image", self.real.pull(image))
    }
    async fn commit(&self, c: &str, repo: &str, tag: &str) -> Result<String, RuntimeError> {
        delegate!(self, "commit_container", self.real.commit(c, repo, tag))
    }
    async fn list_images(&self, l: &LabelFilter) -> Result<Vec<String>, RuntimeError> {
        delegate!(self, "list_images", self.real.list_images(l))
    }
    async fn remove_image(&self, i: &str) -> Result<(), RuntimeError> {
        delegate!(self, "remove_image", self.real.remove_image(i))
    }
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, RuntimeError> {
        delegate!(self, "create_network", self.real.create_network(spec))
    }
    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        delegate!(self, "remove_network", self.real.remove_network(name))
    }
    async fn list_networks(&self, l: &LabelFilter) -> Result<Vec<NetworkInfo>, RuntimeError> {
        delegate!(self, "list_networks", self.real.list_networks(l))
    }
    async fn connect_network(&self, n: &str, c: &str) -> Result<(), RuntimeError> {
        delegate!(self, "connect_network", self.real.connect_network(n, c))
    }
    async fn disconnect_network(&self, n: &str, c: &str) -> Result<(), RuntimeError> {
        delegate!(
            self,
            "disconnect_network",
            self.real.disconnect_network(n, c)
        )
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        delegate!(self, "create_container", self.real.create_container(spec))
    }
    async fn put_files(&self, c: &str, d: &str, f: &[FileSpec]) -> Result<(), RuntimeError> {
        delegate!(self, "upload_files", self.real.put_files(c, d, f))
    }
    async fn start_container(&self, c: &str) -> Result<(), RuntimeError> {
        delegate!(self, "start_container", self.real.start_container(c))
    }
    async fn remove_container(&self, c: &str, g: Duration) -> Result<(), RuntimeError> {
        delegate!(self, "remove_container", self.real.remove_container(c, g))
    }
    async fn inspect_container(&self, c: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        delegate!(self, "inspect_container", self.real.inspect_container(c))
    }
    async fn inspect_security(&self, c: &str) -> Result<ContainerSecurity, RuntimeError> {
        delegate!(self, "inspect_container", self.real.inspect_security(c))
    }
    async fn list_containers(&self, l: &LabelFilter) -> Result<Vec<ContainerInfo>, RuntimeError> {
        delegate!(self, "list_containers", self.real.list_containers(l))
    }
    async fn list_containers_on(
        &self,
        n: &str,
        l: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        delegate!(self, "list_containers", self.real.list_containers_on(n, l))
    }
    async fn events(
        &self,
        l: &LabelFilter,
    ) -> Result<BoxStream<'static, Result<RuntimeEvent, RuntimeError>>, RuntimeError> {
        self.check("events")?;
        if self.mute_events {
            return Ok(futures_util::stream::pending().boxed());
        }
        let real = self.real.events(l).await?;
        let mut broken = self.broken.subscribe();
        let down = async move {
            let _ = broken.wait_for(|b| *b).await;
        };
        let fail = futures_util::stream::once(async {
            Err(RuntimeError::new(
                "events",
                RuntimeErrorKind::Unreachable,
                "injected: connection lost",
            ))
        });
        Ok(real.take_until(down).chain(fail).boxed())
    }
    async fn logs(&self, c: &str, tail: usize) -> Result<String, RuntimeError> {
        delegate!(self, "logs", self.real.logs(c, tail))
    }
    async fn memory_usage(&self, c: &str) -> Result<Option<u64>, RuntimeError> {
        delegate!(self, "stats", self.real.memory_usage(c))
    }
    async fn own_container(&self) -> Option<String> {
        self.real.own_container().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_outage_keeps_ready_gateways_serving_and_recovers_without_restart() {
    let Some(eng) = engine("outage") else { return };
    let flaky = Arc::new(Flaky::new(false));
    let fd = eng
        .builder(&[], "")
        .lifecycle_on(flaky.clone())
        .start()
        .await;
    let alice = Mcp::open(&fd, "alice").await.unwrap();
    let c = fd.client(Proto::H1);
    assert_eq!(
        c.send(c.req("GET", "/readyz")).await.status(),
        StatusCode::OK
    );

    flaky.broken.send_replace(true);
    // The running gateway keeps serving, new sessions included.
    assert_eq!(alice.call("echo", json!({"text": "still"})).await, "still");
    Mcp::open(&fd, "alice").await.expect("ready gateway serves");
    // A user who needs a start gets a quick 503.
    let t = Instant::now();
    let err = Mcp::open(&fd, "bob").await.err().expect("503");
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE, "{err:?}");
    assert!(err.retry_after.is_some());
    let start = Instant::now();
    while c.send(c.req("GET", "/readyz")).await.status() != StatusCode::SERVICE_UNAVAILABLE {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "/readyz stays 200"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    flaky.broken.send_replace(false);
    let start = Instant::now();
    let bob = loop {
        match Mcp::open(&fd, "bob").await {
            Ok(m) => break m,
            Err(e) => assert!(
                start.elapsed() < Duration::from_secs(10),
                "no recovery: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(bob.call("echo", json!({"text": "back"})).await, "back");
    assert_eq!(
        c.send(c.req("GET", "/readyz")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_before_its_event_arrives_is_replaced_without_a_502() {
    let Some(eng) = engine("unevented") else {
        return;
    };
    // No events at all: the front door learns of the kill only by failing to connect.
    let fd = eng
        .builder(&[], "")
        .lifecycle_on(Arc::new(Flaky::new(true)))
        .start()
        .await;
    let first = Mcp::open(&fd, "kim").await.unwrap().instance().await;
    let name = eng.name("kim");
    assert!(crate::engine::docker(&["kill", &name]).0);
    // A bodiless request is replayed on a fresh gateway.
    let c = fd.client(Proto::H1);
    let resp = c.get_as("kim", "/health").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        metric(&fd, "mcp_frontdoor_gateway_crashes_total").await,
        1.0
    );
    let mcp = Mcp::open(&fd, "kim").await.expect("a fresh session");
    assert_ne!(mcp.instance().await, first);
    assert_eq!(eng.containers(false), [name]);
}
