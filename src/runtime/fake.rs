//! An engine that exists only in memory, with faults to inject: what the lifecycle's unit
//! tests run on (no Docker, paused time, milliseconds per race). It keeps containers, networks
//! and images as the lifecycle sees them through [`Runtime`], counts the calls that matter and
//! sends die events like an engine does.

use super::{
    ContainerInfo, ContainerSecurity, ContainerSpec, ContainerState, EventKind, FileSpec,
    ImageInfo, LabelFilter, NetworkInfo, NetworkSpec, Runtime, RuntimeError, RuntimeErrorKind,
    RuntimeEvent,
};
use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast;

/// Faults to inject; each stays until it is switched off.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every call fails as if the engine's socket were gone (events streams break too).
    pub unreachable: bool,
    /// `create_container` of a gateway (a container with a user label) is refused.
    pub fail_create: bool,
    /// `start_container` is refused.
    pub fail_start: bool,
    /// `start_container` never returns.
    pub hang_start: bool,
    /// The container exits right after it starts.
    pub die_on_start: bool,
    /// `remove_container` takes this long (the SIGTERM grace of a real engine).
    pub remove_delay: Duration,
    /// Containers die without an event (it is still on its way).
    pub mute_events: bool,
}

#[derive(Debug, Clone)]
struct Container {
    info: ContainerInfo,
    network: String,
}

#[derive(Default)]
struct State {
    containers: HashMap<String, Container>,
    networks: HashMap<String, NetworkInfo>,
    images: HashMap<String, ImageInfo>,
    next: u64,
    calls: HashMap<&'static str, usize>,
}

/// The in-memory engine.
pub struct FakeRuntime {
    state: Mutex<State>,
    faults: Mutex<Faults>,
    events: broadcast::Sender<Result<RuntimeEvent, RuntimeError>>,
}

impl FakeRuntime {
    /// An engine that has `images` (by reference) and nothing else.
    pub fn with_images(images: &[&str]) -> Self {
        let mut state = State::default();
        for (i, r) in images.iter().enumerate() {
            let info = ImageInfo {
                id: format!("sha256:image{i}"),
                entrypoint: vec!["/gateway".into()],
                cmd: vec!["run".into()],
                ..Default::default()
            };
            state.images.insert(r.to_string(), info);
        }
        Self {
            state: Mutex::new(state),
            faults: Mutex::new(Faults::default()),
            events: broadcast::channel(256).0,
        }
    }

    /// Changes the faults.
    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        let mut faults = self.faults.lock();
        f(&mut faults);
        if faults.unreachable {
            // An engine that goes away breaks its events streams.
            let _ = self.events.send(Err(unreachable("events")));
        }
    }

    /// How often `op` was called (`create_container`, `start_container`, `remove_container`).
    pub fn calls(&self, op: &str) -> usize {
        self.state.lock().calls.get(op).copied().unwrap_or(0)
    }

    /// Names of the containers whose labels match `labels`, sorted.
    pub fn container_names(&self, labels: &LabelFilter) -> Vec<String> {
        let mut v: Vec<String> = self
            .state
            .lock()
            .containers
            .values()
            .filter(|c| matches(&c.info.labels, labels))
            .map(|c| c.info.name.clone())
            .collect();
        v.sort();
        v
    }

    /// Names of the networks, sorted.
    pub fn network_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .state
            .lock()
            .networks
            .values()
            .map(|n| n.name.clone())
            .collect();
        v.sort();
        v
    }

    /// The state of the container `name_or_id`.
    pub fn state_of(&self, name_or_id: &str) -> Option<ContainerState> {
        let st = self.state.lock();
        find(&st, name_or_id).map(|id| st.containers[&id].info.state)
    }

    /// The environment of the container `name_or_id`.
    pub fn env_of(&self, name_or_id: &str) -> Vec<String> {
        let st = self.state.lock();
        find(&st, name_or_id)
            .map(|id| st.containers[&id].info.env.clone())
            .unwrap_or_default()
    }

    /// The container dies (as an OOM kill or a crash would): exited, and a die event.
    pub fn kill(&self, name_or_id: &str) {
        let mute = self.faults.lock().mute_events;
        let event = {
            let mut st = self.state.lock();
            let Some(id) = find(&st, name_or_id) else {
                return;
            };
            let c = st.containers.get_mut(&id);
            let Some(c) = c else { return };
            c.info.state = ContainerState::Exited;
            c.info.exit_code = Some(137);
            RuntimeEvent {
                container_id: id,
                kind: EventKind::Die,
                labels: c.info.labels.clone(),
            }
        };
        if !mute {
            let _ = self.events.send(Ok(event));
        }
    }

    /// A container made outside this front door's current process (a gateway a previous one
    /// left running, or half made): returns its id.
    pub fn plant(&self, spec: &ContainerSpec, state: ContainerState) -> String {
        let mut st = self.state.lock();
        let id = new_container(&mut st, spec);
        if let Some(c) = st.containers.get_mut(&id) {
            c.info.state = state;
            if state == ContainerState::Running {
                c.info.started_at = Some(SystemTime::now());
            }
        }
        id
    }

    /// A network made outside this process.
    pub fn plant_network(&self, spec: &NetworkSpec) {
        let mut st = self.state.lock();
        new_network(&mut st, spec);
    }

    /// Whether the container listening on loopback `port` is running (what a health probe of
    /// a real gateway finds out).
    pub fn running_on(&self, port: u16) -> bool {
        self.state
            .lock()
            .containers
            .values()
            .any(|c| c.info.loopback_port == Some(port) && c.info.state == ContainerState::Running)
    }

    fn check(&self, op: &'static str) -> Result<(), RuntimeError> {
        *self.state.lock().calls.entry(op).or_default() += 1;
        if self.faults.lock().unreachable {
            return Err(unreachable(op));
        }
        Ok(())
    }

    fn fault(&self) -> Faults {
        self.faults.lock().clone()
    }
}

fn unreachable(op: &'static str) -> RuntimeError {
    RuntimeError::new(op, RuntimeErrorKind::Unreachable, "injected: engine down")
}

fn refused(op: &'static str) -> RuntimeError {
    RuntimeError::new(op, RuntimeErrorKind::Api, "injected: refused")
}

fn matches(labels: &HashMap<String, String>, filter: &LabelFilter) -> bool {
    filter.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn find(st: &State, name_or_id: &str) -> Option<String> {
    if st.containers.contains_key(name_or_id) {
        return Some(name_or_id.to_string());
    }
    st.containers
        .values()
        .find(|c| c.info.name == name_or_id)
        .map(|c| c.info.id.clone())
}

fn new_container(st: &mut State, spec: &ContainerSpec) -> String {
    st.next += 1;
    let n = st.next;
    let id = format!("c{n:04}");
    let info = ContainerInfo {
        id: id.clone(),
        name: spec.name.clone(),
        state: ContainerState::Created,
        labels: spec.labels.clone(),
        addresses: HashMap::from([(spec.network.clone(), Ipv4Addr::new(10, 0, 0, n as u8))]),
        loopback_port: Some(20_000 + n as u16),
        env: spec.env.clone(),
        started_at: None,
        exit_code: None,
        oom_killed: false,
    };
    st.containers.insert(
        id.clone(),
        Container {
            info,
            network: spec.network.clone(),
        },
    );
    id
}

fn new_network(st: &mut State, spec: &NetworkSpec) -> String {
    st.next += 1;
    let id = format!("n{:04}", st.next);
    st.networks.insert(
        id.clone(),
        NetworkInfo {
            id: id.clone(),
            name: spec.name.clone(),
            subnets: vec![spec.subnet.clone()],
            labels: spec.labels.clone(),
        },
    );
    id
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.check("ping")
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        self.check("inspect_image")?;
        let st = self.state.lock();
        Ok(st
            .images
            .get(image)
            .or_else(|| st.images.values().find(|i| i.id == image))
            .cloned())
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        self.check("pull_image")?;
        Err(RuntimeError::new(
            "pull_image",
            RuntimeErrorKind::Image,
            format!("{image}: no registry in memory"),
        ))
    }

    async fn commit(&self, container: &str, repo: &str, tag: &str) -> Result<String, RuntimeError> {
        self.check("commit_container")?;
        let mut st = self.state.lock();
        let id = find(&st, container).ok_or_else(|| refused("commit_container"))?;
        let c = st.containers[&id].clone();
        st.next += 1;
        let image = ImageInfo {
            id: format!("sha256:derived{}", st.next),
            labels: c.info.labels.clone(),
            ..Default::default()
        };
        st.images.insert(format!("{repo}:{tag}"), image.clone());
        Ok(image.id)
    }

    async fn list_images(&self, labels: &LabelFilter) -> Result<Vec<String>, RuntimeError> {
        self.check("list_images")?;
        let st = self.state.lock();
        Ok(st
            .images
            .values()
            .filter(|i| matches(&i.labels, labels))
            .map(|i| i.id.clone())
            .collect())
    }

    async fn remove_image(&self, image: &str) -> Result<(), RuntimeError> {
        self.check("remove_image")?;
        self.state
            .lock()
            .images
            .retain(|r, i| r != image && i.id != image);
        Ok(())
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, RuntimeError> {
        self.check("create_network")?;
        let mut st = self.state.lock();
        if st
            .networks
            .values()
            .any(|n| n.subnets.contains(&spec.subnet))
        {
            return Err(RuntimeError::new(
                "create_network",
                RuntimeErrorKind::SubnetTaken,
                "injected: subnet in use",
            ));
        }
        Ok(new_network(&mut st, spec))
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.check("remove_network")?;
        let mut st = self.state.lock();
        let gone: Vec<String> = st
            .networks
            .values()
            .filter(|n| n.id == name || n.name == name)
            .map(|n| n.name.clone())
            .collect();
        if st.containers.values().any(|c| gone.contains(&c.network)) {
            return Err(RuntimeError::new(
                "remove_network",
                RuntimeErrorKind::Conflict,
                "injected: network has active endpoints",
            ));
        }
        st.networks.retain(|_, n| n.id != name && n.name != name);
        Ok(())
    }

    async fn list_networks(&self, labels: &LabelFilter) -> Result<Vec<NetworkInfo>, RuntimeError> {
        self.check("list_networks")?;
        let st = self.state.lock();
        Ok(st
            .networks
            .values()
            .filter(|n| matches(&n.labels, labels))
            .cloned()
            .collect())
    }

    async fn connect_network(&self, _: &str, _: &str) -> Result<(), RuntimeError> {
        self.check("connect_network")
    }

    async fn disconnect_network(&self, _: &str, _: &str) -> Result<(), RuntimeError> {
        self.check("disconnect_network")
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.check("create_container")?;
        let gateway = spec.labels.contains_key("mcp-frontdoor.user");
        if gateway && self.fault().fail_create {
            return Err(refused("create_container"));
        }
        let mut st = self.state.lock();
        if st.containers.values().any(|c| c.info.name == spec.name) {
            return Err(RuntimeError::new(
                "create_container",
                RuntimeErrorKind::Conflict,
                "injected: name in use",
            ));
        }
        Ok(new_container(&mut st, spec))
    }

    async fn put_files(&self, _: &str, _: &str, _: &[FileSpec]) -> Result<(), RuntimeError> {
        self.check("upload_files")
    }

    async fn start_container(&self, container: &str) -> Result<(), RuntimeError> {
        self.check("start_container")?;
        let faults = self.fault();
        if faults.fail_start {
            return Err(refused("start_container"));
        }
        if faults.hang_start {
            std::future::pending::<()>().await;
        }
        {
            let mut st = self.state.lock();
            let id = find(&st, container).ok_or_else(|| {
                RuntimeError::new("start_container", RuntimeErrorKind::NotFound, "no such")
            })?;
            if let Some(c) = st.containers.get_mut(&id) {
                c.info.state = ContainerState::Running;
                c.info.started_at = Some(SystemTime::now());
            }
        }
        if faults.die_on_start {
            self.kill(container);
        }
        Ok(())
    }

    async fn remove_container(
        &self,
        container: &str,
        _grace: Duration,
    ) -> Result<(), RuntimeError> {
        self.check("remove_container")?;
        let delay = self.fault().remove_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut st = self.state.lock();
        if let Some(id) = find(&st, container) {
            st.containers.remove(&id);
        }
        Ok(())
    }

    async fn inspect_container(
        &self,
        container: &str,
    ) -> Result<Option<ContainerInfo>, RuntimeError> {
        self.check("inspect_container")?;
        let st = self.state.lock();
        Ok(find(&st, container).map(|id| st.containers[&id].info.clone()))
    }

    async fn inspect_security(&self, _: &str) -> Result<ContainerSecurity, RuntimeError> {
        self.check("inspect_container")?;
        Ok(ContainerSecurity::default())
    }

    async fn list_containers(
        &self,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.check("list_containers")?;
        let st = self.state.lock();
        Ok(st
            .containers
            .values()
            .filter(|c| matches(&c.info.labels, labels))
            .map(|c| ContainerInfo {
                // Listings carry no environment, as the engine's do.
                env: Vec::new(),
                ..c.info.clone()
            })
            .collect())
    }

    async fn list_containers_on(
        &self,
        network: &str,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.check("list_containers")?;
        let st = self.state.lock();
        let names: Vec<&str> = st
            .networks
            .values()
            .filter(|n| n.id == network || n.name == network)
            .map(|n| n.name.as_str())
            .collect();
        if names.is_empty() {
            return Err(RuntimeError::new(
                "list_containers",
                RuntimeErrorKind::NotFound,
                "no such network",
            ));
        }
        Ok(st
            .containers
            .values()
            .filter(|c| names.contains(&c.network.as_str()) && matches(&c.info.labels, labels))
            .map(|c| c.info.clone())
            .collect())
    }

    async fn events(
        &self,
        labels: &LabelFilter,
    ) -> Result<BoxStream<'static, Result<RuntimeEvent, RuntimeError>>, RuntimeError> {
        self.check("events")?;
        let rx = self.events.subscribe();
        let labels = labels.clone();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter(move |ev| {
            let keep = match ev {
                Ok(ev) => matches(&ev.labels, &labels),
                Err(_) => true,
            };
            std::future::ready(keep)
        });
        Ok(stream.boxed())
    }

    async fn logs(&self, container: &str, _tail: usize) -> Result<String, RuntimeError> {
        self.check("logs")?;
        Ok(format!("2026-01-01T00:00:00Z {container} says goodbye\n"))
    }

    async fn memory_usage(&self, _: &str) -> Result<Option<u64>, RuntimeError> {
        self.check("stats")?;
        Ok(Some(1 << 20))
    }

    async fn own_container(&self) -> Option<String> {
        None
    }
}
