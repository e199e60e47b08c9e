//! [`Runtime`] on the Docker Engine API through bollard (with `super::swarm`, which builds on
//! it, the only code that talks to bollard).
//!
//! Every call has its own timeout (`gateways.docker.api_timeout`; pulls `pull_timeout`), every
//! failure is counted by operation. The client is made lazily and made again after a failed
//! handshake, so a front door started while Docker is down recovers without a restart.

use super::{
    ContainerInfo, ContainerSecurity, ContainerSpec, ContainerState, FileSpec, ImageInfo,
    LabelFilter, NetworkInfo, NetworkSpec, Runtime, RuntimeError, RuntimeErrorKind, RuntimeEvent,
    RuntimeMetrics,
};
use async_trait::async_trait;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerConfig, ContainerCreateBody, EndpointSettings, HostConfig, Ipam, IpamConfig,
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    ListNetworksOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures_util::stream::BoxStream;
use futures_util::{Future, StreamExt};

pub(in crate::runtime) mod convert;
use convert::{
    addresses, classify, event_of, label_filters, mounts_of, split_image, state_of, tar_of,
    tmpfs_of,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where the engine is and how long calls may take.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// `unix:///path`, `tcp://host:port` or `http://host:port`; `DOCKER_HOST` or the default
    /// socket when unset.
    pub host: Option<EngineHost>,
    pub api_timeout: Duration,
    pub pull_timeout: Duration,
    /// Which container this process runs in, for joining gateway networks.
    pub own_container: OwnContainer,
}

use crate::config::EngineHost;
/// `gateways.docker.frontdoor_container`, as the config reads it.
pub use crate::config::OwnContainer;

/// The Docker runtime.
pub struct DockerRuntime {
    settings: DockerSettings,
    client: parking_lot::Mutex<Option<Docker>>,
    connecting: tokio::sync::Mutex<()>,
    metrics: RuntimeMetrics,
    /// `Some(answer)` once detection gave a definite answer.
    own: parking_lot::Mutex<Option<Option<String>>>,
}

impl DockerRuntime {
    /// A runtime that connects on first use.
    pub fn new(settings: DockerSettings, metrics: RuntimeMetrics) -> Self {
        Self {
            settings,
            client: parking_lot::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            metrics,
            own: parking_lot::Mutex::new(None),
        }
    }

    /// The connected client, connecting (and negotiating the API version) when needed.
    pub(in crate::runtime) async fn client(&self) -> Result<Docker, RuntimeError> {
        if let Some(c) = self.client.lock().clone() {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.client.lock().clone() {
            return Ok(c);
        }
        let unreachable =
            |m: String| RuntimeError::new("connect", RuntimeErrorKind::Unreachable, m);
        let docker = connect(self.settings.host.as_ref(), self.settings.api_timeout)
            .map_err(|e| unreachable(e.to_string()))?;
        // The engine may be older than bollard's default API version (Docker 20.10 is 1.41).
        let docker = tokio::time::timeout(self.settings.api_timeout, docker.negotiate_version())
            .await
            .map_err(|_| unreachable("version handshake timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        tracing::info!(
            api = %docker.client_version(),
            host = %self.settings.host.as_ref().map_or("default".into(), |h| h.to_string()),
            "connected to Docker"
        );
        *self.client.lock() = Some(docker.clone());
        Ok(docker)
    }

    /// Runs one API call with the API timeout; counts and classifies failures.
    pub(in crate::runtime) async fn call<T, F, Fut>(
        &self,
        op: &'static str,
        f: F,
    ) -> Result<T, RuntimeError>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: Future<Output = Result<T, BollardError>>,
    {
        self.call_within(op, self.settings.api_timeout, f).await
    }

    pub(in crate::runtime) async fn call_within<T, F, Fut>(
        &self,
        op: &'static str,
        limit: Duration,
        f: F,
    ) -> Result<T, RuntimeError>
    where
        F: FnOnce(Docker) -> Fut,
        Fut: Future<Output = Result<T, BollardError>>,
    {
        let result = match self.client().await {
            Ok(docker) => match tokio::time::timeout(limit, f(docker)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => Err(classify(op, e)),
                Err(_) => Err(RuntimeError::new(
                    op,
                    RuntimeErrorKind::Timeout,
                    format!("no answer within {limit:?}"),
                )),
            },
            Err(mut e) => {
                e.op = op;
                Err(e)
            }
        };
        if let Err(e) = &result {
            if e.kind != RuntimeErrorKind::NotFound {
                self.metrics.error(op);
            }
        }
        result
    }

    /// Ids of networks named exactly `name` (the engine's name filter matches substrings, and
    /// engines before API 1.44 allow duplicate names).
    /// Containers in any state matching `labels`, and attached to `network` when given.
    async fn containers_matching(
        &self,
        labels: &LabelFilter,
        network: Option<&str>,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut filters = HashMap::from([("label", label_filters(labels))]);
        if let Some(n) = network {
            filters.insert("network", vec![n.to_string()]);
        }
        let opts = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .call("list_containers", |d| async move {
                d.list_containers(Some(opts)).await
            })
            .await?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                state: c
                    .state
                    .map_or(ContainerState::Other, |s| state_of(s.as_ref())),
                labels: c.labels.unwrap_or_default(),
                addresses: addresses(c.network_settings.and_then(|n| n.networks).as_ref()),
                loopback_port: None,
                env: Vec::new(),
                started_at: None,
                exit_code: None,
                oom_killed: false,
            })
            .collect())
    }

    pub(in crate::runtime) async fn network_ids(
        &self,
        name: &str,
    ) -> Result<Vec<String>, RuntimeError> {
        let filters = HashMap::from([("name", vec![name])]);
        let nets = self
            .call("list_networks", |d| async move {
                d.list_networks(Some(
                    ListNetworksOptionsBuilder::new().filters(&filters).build(),
                ))
                .await
            })
            .await?;
        Ok(nets
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| n.id)
            .collect())
    }

    /// Removes the network with exactly this id; a missing one is not an error.
    pub(in crate::runtime) async fn remove_network_id(&self, id: &str) -> Result<(), RuntimeError> {
        match self
            .call(
                "remove_network",
                |d| async move { d.remove_network(id).await },
            )
            .await
        {
            Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Creates a network of `driver` (`bridge`, or `overlay` for the Swarm runtime, which
    /// needs it `attachable` so a front door in a plain container can join) with the spec's
    /// subnet; returns its id.
    pub(in crate::runtime) async fn create_network_of(
        &self,
        spec: &NetworkSpec,
        driver: &str,
        attachable: bool,
    ) -> Result<String, RuntimeError> {
        let req = NetworkCreateRequest {
            name: spec.name.clone(),
            driver: Some(driver.into()),
            attachable: attachable.then_some(true),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(spec.subnet.clone()),
                    ..Default::default()
                }]),
                options: None,
            }),
            labels: Some(spec.labels.clone()),
            // Normally gateways reach the internet for their servers' APIs; an internal network
            // has no way out but can never become a joined front door's gateway endpoint.
            internal: Some(spec.internal),
            ..Default::default()
        };
        let id = self
            .call(
                "create_network",
                |d| async move { d.create_network(req).await },
            )
            .await?
            .id;
        // Engines before API 1.44 accept a second network of the same name: keep only one.
        // A creator that sees two gives its own up, so of two callers racing (front door
        // replicas) at most one keeps a network (both may lose; they try again).
        let ids = self.network_ids(&spec.name).await?;
        if ids.len() > 1 {
            let _ = self
                .call(
                    "remove_network",
                    |d| async move { d.remove_network(&id).await },
                )
                .await;
            return Err(RuntimeError::new(
                "create_network",
                RuntimeErrorKind::Conflict,
                format!("network {} already exists", spec.name),
            ));
        }
        Ok(id)
    }
}

fn connect(host: Option<&EngineHost>, timeout: Duration) -> Result<Docker, BollardError> {
    let secs = timeout.as_secs().max(1);
    match host {
        Some(h @ EngineHost::Unix(_)) => {
            Docker::connect_with_unix(&h.to_string(), secs, API_DEFAULT_VERSION)
        }
        Some(h @ EngineHost::Tcp(_)) => {
            Docker::connect_with_http(&h.to_string(), secs, API_DEFAULT_VERSION)
        }
        None => Docker::connect_with_defaults().map(|d| d.with_timeout(timeout)),
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.call("ping", |d| async move { d.ping().await })
            .await
            .map(drop)
    }

    async fn version(&self) -> Result<Option<String>, RuntimeError> {
        self.call("version", |d| async move { d.version().await })
            .await
            .map(|v| v.version)
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        match self
            .call(
                "inspect_image",
                |d| async move { d.inspect_image(image).await },
            )
            .await
        {
            Ok(i) => {
                let c = i.config.unwrap_or_default();
                Ok(Some(ImageInfo {
                    id: i.id.unwrap_or_default(),
                    labels: c.labels.clone().unwrap_or_default(),
                    user: c.user.filter(|u| !u.is_empty()),
                    entrypoint: c.entrypoint.unwrap_or_default(),
                    cmd: c.cmd.unwrap_or_default(),
                }))
            }
            Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        let (from, tag) = split_image(image);
        let mut opts = CreateImageOptionsBuilder::new().from_image(from);
        if let Some(t) = tag {
            opts = opts.tag(t);
        }
        let opts = opts.build();
        let started = Instant::now();
        tracing::info!(%image, "pulling image");
        let result = self
            .call_within("pull_image", self.settings.pull_timeout, |d| async move {
                let mut stream = d.create_image(Some(opts), None, None);
                let mut last_log = Instant::now();
                let mut last_status = String::new();
                while let Some(item) = stream.next().await {
                    let info = item?;
                    let status = info.status.unwrap_or_default();
                    let (current, total) = info
                        .progress_detail
                        .map_or((None, None), |p| (p.current, p.total));
                    // Layer progress is chatty: log status changes, and progress every 2 s.
                    if status != last_status || last_log.elapsed() > Duration::from_secs(2) {
                        tracing::info!(
                            %image,
                            layer = info.id.as_deref().unwrap_or(""),
                            current = current.unwrap_or(0),
                            total = total.unwrap_or(0),
                            "pull: {status}"
                        );
                        last_log = Instant::now();
                        last_status = status;
                    }
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                tracing::info!(%image, secs = started.elapsed().as_secs_f64(), "image pulled");
                Ok(())
            }
            Err(e) if e.is_unreachable() => Err(e),
            Err(e) => Err(RuntimeError::new(
                "pull_image",
                RuntimeErrorKind::Image,
                e.message,
            )),
        }
    }

    async fn commit(&self, container: &str, repo: &str, tag: &str) -> Result<String, RuntimeError> {
        let opts = CommitContainerOptionsBuilder::new()
            .container(container)
            .repo(repo)
            .tag(tag)
            .pause(false)
            .build();
        let resp = self
            .call("commit_container", |d| async move {
                d.commit_container(opts, ContainerConfig::default()).await
            })
            .await?;
        Ok(resp.id)
    }

    async fn list_images(&self, labels: &LabelFilter) -> Result<Vec<String>, RuntimeError> {
        let filters = HashMap::from([("label", label_filters(labels))]);
        let opts = ListImagesOptionsBuilder::new().filters(&filters).build();
        let images = self
            .call(
                "list_images",
                |d| async move { d.list_images(Some(opts)).await },
            )
            .await?;
        Ok(images.into_iter().map(|i| i.id).collect())
    }

    async fn remove_image(&self, image: &str) -> Result<(), RuntimeError> {
        let opts = RemoveImageOptionsBuilder::new().force(false).build();
        match self
            .call("remove_image", |d| async move {
                d.remove_image(image, Some(opts), None).await
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, RuntimeError> {
        self.create_network_of(spec, "bridge", false).await
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        let is_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let ids = if is_id {
            vec![name.to_string()]
        } else {
            self.network_ids(name).await?
        };
        for id in ids {
            match self
                .call(
                    "remove_network",
                    |d| async move { d.remove_network(&id).await },
                )
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind == RuntimeErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn list_networks(&self, labels: &LabelFilter) -> Result<Vec<NetworkInfo>, RuntimeError> {
        let filters = HashMap::from([("label", label_filters(labels))]);
        let nets = self
            .call("list_networks", |d| async move {
                let opts = if labels.is_empty() {
                    None
                } else {
                    Some(ListNetworksOptionsBuilder::new().filters(&filters).build())
                };
                d.list_networks(opts).await
            })
            .await?;
        Ok(nets
            .into_iter()
            .map(|n| NetworkInfo {
                id: n.id.unwrap_or_default(),
                name: n.name.unwrap_or_default(),
                subnets: n
                    .ipam
                    .and_then(|i| i.config)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.subnet)
                    .collect(),
                labels: n.labels.unwrap_or_default(),
            })
            .collect())
    }

    async fn connect_network(&self, network: &str, container: &str) -> Result<(), RuntimeError> {
        let req = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: None,
        };
        match self
            .call("connect_network", |d| async move {
                d.connect_network(network, req).await
            })
            .await
        {
            Err(e) if e.kind == RuntimeErrorKind::AlreadyDone => Ok(()),
            other => other,
        }
    }

    async fn disconnect_network(&self, network: &str, container: &str) -> Result<(), RuntimeError> {
        let req = NetworkDisconnectRequest {
            container: container.to_string(),
            force: Some(true),
        };
        match self
            .call("disconnect_network", |d| async move {
                d.disconnect_network(network, req).await
            })
            .await
        {
            Err(e)
                if matches!(
                    e.kind,
                    RuntimeErrorKind::NotFound | RuntimeErrorKind::AlreadyDone
                ) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let port_key = format!("{}/tcp", spec.port);
        let memory = spec.limits.memory_bytes.map(|m| m as i64);
        let host = HostConfig {
            network_mode: Some(spec.network.clone()),
            memory,
            // No swap on top of the memory limit.
            memory_swap: memory,
            nano_cpus: spec.limits.cpus.map(|c| (c * 1e9) as i64),
            pids_limit: spec.limits.pids,
            readonly_rootfs: Some(spec.read_only_root),
            cap_drop: spec.harden.then(|| vec!["ALL".to_string()]),
            security_opt: spec
                .harden
                .then(|| vec!["no-new-privileges:true".to_string()]),
            tmpfs: Some(tmpfs_of(spec)),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            group_add: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
            mounts: Some(mounts_of(spec)),
            port_bindings: spec.publish_loopback.then(|| {
                HashMap::from([(
                    port_key.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )])
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: Some(spec.args.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            user: spec.user.clone(),
            exposed_ports: (spec.port != 0).then(|| vec![port_key]),
            host_config: Some(host),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    spec.network.clone(),
                    EndpointSettings::default(),
                )])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new()
            .name(&spec.name)
            .build();
        let resp = self
            .call("create_container", |d| async move {
                d.create_container(Some(opts), body).await
            })
            .await?;
        for w in resp.warnings.iter().filter(|w| !w.is_empty()) {
            tracing::warn!(container = %spec.name, warning = %w, "Docker warning on create");
        }
        Ok(resp.id)
    }

    async fn put_files(
        &self,
        container: &str,
        dir: &str,
        files: &[FileSpec],
    ) -> Result<(), RuntimeError> {
        let tar = zeroize::Zeroizing::new(tar_of(files).map_err(|e| {
            RuntimeError::new("upload_files", RuntimeErrorKind::Api, e.to_string())
        })?);
        let opts = UploadToContainerOptionsBuilder::new().path(dir).build();
        let body = bytes::Bytes::copy_from_slice(&tar);
        self.call("upload_files", |d| async move {
            d.upload_to_container(container, Some(opts), bollard::body_full(body))
                .await
        })
        .await
    }

    async fn start_container(&self, container: &str) -> Result<(), RuntimeError> {
        self.call("start_container", |d| async move {
            d.start_container(container, None).await
        })
        .await
    }

    async fn remove_container(&self, container: &str, grace: Duration) -> Result<(), RuntimeError> {
        if !grace.is_zero() {
            let t = i32::try_from(grace.as_secs().max(1)).unwrap_or(i32::MAX);
            let opts = StopContainerOptionsBuilder::new().t(t).build();
            let stop = self
                .call_within(
                    "stop_container",
                    self.settings.api_timeout + grace,
                    |d| async move { d.stop_container(container, Some(opts)).await },
                )
                .await;
            match stop {
                Ok(()) => {}
                Err(e) if e.kind == RuntimeErrorKind::NotFound => return Ok(()),
                // Already stopped (304 is success in bollard) or stop failed: force below.
                Err(e) => tracing::debug!(container, error = %e, "stop failed; forcing removal"),
            }
        }
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self
            .call("remove_container", |d| async move {
                d.remove_container(container, Some(opts)).await
            })
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(()),
            // A removal already under way finishes by itself.
            Err(e) if e.kind == RuntimeErrorKind::AlreadyDone => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn inspect_container(
        &self,
        container: &str,
    ) -> Result<Option<ContainerInfo>, RuntimeError> {
        let c = match self
            .call("inspect_container", |d| async move {
                d.inspect_container(container, None).await
            })
            .await
        {
            Ok(c) => c,
            Err(e) if e.kind == RuntimeErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let config = c.config.unwrap_or_default();
        let state = c.state.unwrap_or_default();
        let net = c.network_settings.unwrap_or_default();
        let loopback_port = net
            .ports
            .as_ref()
            .into_iter()
            .flatten()
            .filter_map(|(_, b)| b.as_ref())
            .flatten()
            .find(|b| b.host_ip.as_deref() == Some("127.0.0.1"))
            .and_then(|b| b.host_port.as_deref()?.parse().ok());
        Ok(Some(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            state: state
                .status
                .map_or(ContainerState::Other, |s| state_of(s.as_ref())),
            labels: config.labels.unwrap_or_default(),
            addresses: addresses(net.networks.as_ref()),
            loopback_port,
            env: config.env.unwrap_or_default(),
            started_at: state
                .started_at
                .as_deref()
                .and_then(crate::time::parse_rfc3339),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
        }))
    }

    async fn inspect_security(&self, container: &str) -> Result<ContainerSecurity, RuntimeError> {
        let c = self
            .call("inspect_container", |d| async move {
                d.inspect_container(container, None).await
            })
            .await?;
        let h = c.host_config.unwrap_or_default();
        Ok(ContainerSecurity {
            user: c.config.and_then(|c| c.user).filter(|u| !u.is_empty()),
            cap_drop: h.cap_drop.unwrap_or_default(),
            security_opt: h.security_opt.unwrap_or_default(),
            read_only_root: h.readonly_rootfs.unwrap_or(false),
            memory_bytes: h.memory,
            nano_cpus: h.nano_cpus,
            pids: h.pids_limit,
        })
    }

    async fn list_containers(
        &self,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.containers_matching(labels, None).await
    }

    async fn list_containers_on(
        &self,
        network: &str,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.containers_matching(labels, Some(network)).await
    }

    async fn events(
        &self,
        labels: &LabelFilter,
    ) -> Result<BoxStream<'static, Result<RuntimeEvent, RuntimeError>>, RuntimeError> {
        let docker = self.client().await?;
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", label_filters(labels)),
            (
                "event",
                ["start", "die", "oom", "destroy"]
                    .map(String::from)
                    .to_vec(),
            ),
        ]);
        let opts = EventsOptionsBuilder::new().filters(&filters).build();
        let metrics = self.metrics.clone();
        let stream = docker
            .events(Some(opts))
            .filter_map(move |item| {
                let out = match item {
                    Ok(m) => event_of(m).map(Ok),
                    Err(e) => {
                        metrics.error("events");
                        Some(Err(classify("events", e)))
                    }
                };
                std::future::ready(out)
            })
            .boxed();
        Ok(stream)
    }

    async fn logs(&self, container: &str, tail: usize) -> Result<String, RuntimeError> {
        let opts = LogsOptionsBuilder::new()
            .stdout(true)
            .stderr(true)
            // Each line starts with the engine's receive time, RFC 3339 in UTC: gateways
            // log without times (docker/mcp-gateway) or in their own format.
            .timestamps(true)
            .tail(&tail.to_string())
            .build();
        self.call("logs", |d| async move {
            let mut out = String::new();
            let mut stream = d.logs(container, Some(opts));
            while let Some(chunk) = stream.next().await {
                out.push_str(&String::from_utf8_lossy(&chunk?.into_bytes()));
            }
            Ok(out)
        })
        .await
    }

    async fn memory_usage(&self, container: &str) -> Result<Option<u64>, RuntimeError> {
        let opts = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        self.call("stats", |d| async move {
            let mut stream = d.stats(container, Some(opts));
            match stream.next().await {
                Some(s) => Ok(s?.memory_stats.and_then(|m| m.usage)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn own_container(&self) -> Option<String> {
        if let Some(known) = self.own.lock().clone() {
            return known;
        }
        let candidate = match &self.settings.own_container {
            OwnContainer::None => None,
            OwnContainer::Named(n) => Some(n.clone()),
            OwnContainer::Auto => {
                let in_container = std::path::Path::new("/.dockerenv").exists()
                    || std::path::Path::new("/run/.containerenv").exists();
                if in_container {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                        .filter(|h| !h.is_empty())
                } else {
                    None
                }
            }
        };
        let answer = match candidate {
            None => None,
            // A container of another engine (or none) has a hostname this engine does not know.
            Some(c) => match self.inspect_container(&c).await {
                Ok(found) => found.map(|i| i.id),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot tell yet whether we run in a container");
                    return None;
                }
            },
        };
        match &answer {
            Some(id) => {
                tracing::info!(container = %id, "front door runs in a container: joining gateway networks")
            }
            None => tracing::debug!("front door runs on the host: reaching gateways directly"),
        }
        *self.own.lock() = Some(answer.clone());
        answer
    }
}
