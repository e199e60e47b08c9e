//! [`Runtime`] on Docker Swarm: each gateway is a service with one task on its own overlay
//! network (`gateways.runtime: swarm`). Images, logs, stats, commits, the init image's helper
//! container, server containers and the front door's own container stay plain Docker and go
//! to the [`DockerRuntime`] this wraps; only gateways become services.
//!
//! The mapping: create → a service with no replica (`spec.rs`), start → one replica and a
//! wait until its task runs, inspect → the service and its newest task (`tasks.rs`) with the
//! task's address (`lookup.rs`, `reach.rs`), remove → the service, then its task's container,
//! then the node's copy of the overlay (`remove.rs`), events → this node's container events
//! mapped to the service. Swarm restarts nothing: the front door handles crashes as on plain
//! Docker.

mod lookup;
mod reach;
mod remove;
mod spec;
mod tasks;

use super::docker::convert::label_filters;
use super::docker::DockerRuntime;
use super::{
    ContainerInfo, ContainerSecurity, ContainerSpec, ContainerState, FileSpec, ImageInfo,
    LabelFilter, NetworkInfo, NetworkSpec, Runtime, RuntimeError, RuntimeErrorKind, RuntimeEvent,
};
use async_trait::async_trait;
use bollard::models::Task;
use bollard::query_parameters::ListServicesOptionsBuilder;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;
use tasks::SERVICE_ID_LABEL;

/// A service label naming the user's network (the spec keeps only its id).
const NETWORK_LABEL: &str = "mcp-frontdoor.swarm.network";
/// How often a starting or removed service's task is looked at.
const POLL: Duration = Duration::from_millis(50);
/// How long a removed network may stay in use (the task's endpoint) or present on this node.
const NETWORK_RELEASE: Duration = Duration::from_secs(10);

/// How services are run.
#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// The task's stop grace period (SIGTERM, then SIGKILL).
    pub stop_grace: Duration,
    /// Longest wait for a started service's task to run (`gateways.spawn_timeout`).
    pub start_timeout: Duration,
}

/// The Swarm runtime.
pub struct SwarmRuntime {
    docker: DockerRuntime,
    settings: SwarmSettings,
    /// This node's id, once read.
    node: parking_lot::Mutex<Option<String>>,
}

impl SwarmRuntime {
    /// Services through `docker`'s engine, which must be a Swarm manager.
    pub fn new(docker: DockerRuntime, settings: SwarmSettings) -> Self {
        Self {
            docker,
            settings,
            node: parking_lot::Mutex::new(None),
        }
    }
}

/// Whether a gateway's task must run on this node: a front door on the host reaches tasks only
/// through this node's `docker_gwbridge`, and a gateway holding a file of this host (the
/// policed Docker API's socket) sees it only here. Otherwise (a front door in a container
/// joined to the overlays) any node will do.
fn on_this_node(spec: &ContainerSpec, front_door_in_container: bool) -> bool {
    spec.this_host || !front_door_in_container
}

/// Whether a plain-Docker listing entry is a task's container (the service stands for it).
fn is_task(c: &ContainerInfo) -> bool {
    c.labels.contains_key(SERVICE_ID_LABEL)
}

#[async_trait]
impl Runtime for SwarmRuntime {
    fn name(&self) -> &'static str {
        "swarm"
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        self.docker.ping().await
    }

    async fn version(&self) -> Result<Option<String>, RuntimeError> {
        self.docker.version().await
    }

    async fn image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        self.docker.image(image).await
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        self.docker.pull(image).await
    }

    async fn commit(&self, container: &str, repo: &str, tag: &str) -> Result<String, RuntimeError> {
        self.docker.commit(container, repo, tag).await
    }

    async fn list_images(&self, labels: &LabelFilter) -> Result<Vec<String>, RuntimeError> {
        self.docker.list_images(labels).await
    }

    async fn remove_image(&self, image: &str) -> Result<(), RuntimeError> {
        self.docker.remove_image(image).await
    }

    /// An attachable overlay network: a front door in a plain container can join it.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, RuntimeError> {
        self.docker.create_network_of(spec, "overlay", true).await
    }

    /// See `remove.rs`: the node's copy of the overlay goes too.
    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.remove_network_released(name).await
    }

    async fn list_networks(&self, labels: &LabelFilter) -> Result<Vec<NetworkInfo>, RuntimeError> {
        self.docker.list_networks(labels).await
    }

    async fn connect_network(&self, network: &str, container: &str) -> Result<(), RuntimeError> {
        self.docker.connect_network(network, container).await
    }

    async fn disconnect_network(&self, network: &str, container: &str) -> Result<(), RuntimeError> {
        self.docker.disconnect_network(network, container).await
    }

    /// A gateway (it has a network) becomes a service; the init image's helper (network
    /// `none`) stays a plain container, committed on this engine.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        if spec.network == "none" {
            return self.docker.create_container(spec).await;
        }
        if spec.publish_loopback {
            return Err(RuntimeError::new(
                "create_service",
                RuntimeErrorKind::Api,
                "gateways.docker.reach: loopback is not available with gateways.runtime: swarm",
            ));
        }
        let network = self
            .docker
            .network_ids(&spec.network)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                RuntimeError::new(
                    "create_service",
                    RuntimeErrorKind::NotFound,
                    format!("network {} not found", spec.network),
                )
            })?;
        let in_container = self.docker.own_container().await.is_some();
        let node = if on_this_node(spec, in_container) {
            Some(self.local_node().await?)
        } else {
            None
        };
        let mut service =
            spec::service_spec(spec, &network, self.settings.stop_grace, node.as_deref());
        service
            .labels
            .get_or_insert_with(HashMap::new)
            .insert(NETWORK_LABEL.into(), spec.network.clone());
        let resp = self
            .docker
            .call("create_service", |d| async move {
                d.create_service(service, None).await
            })
            .await?;
        for w in resp.warnings.iter().flatten() {
            // "image could not be accessed on a registry": expected for a local image by id.
            tracing::debug!(service = %spec.name, warning = %w, "Swarm warning on create");
        }
        resp.id.ok_or_else(|| {
            RuntimeError::new("create_service", RuntimeErrorKind::Api, "no service id")
        })
    }

    async fn put_files(
        &self,
        container: &str,
        dir: &str,
        files: &[FileSpec],
    ) -> Result<(), RuntimeError> {
        self.docker.put_files(container, dir, files).await
    }

    /// One replica, then a wait until its task runs (as `docker start` returns once the
    /// container runs).
    async fn start_container(&self, container: &str) -> Result<(), RuntimeError> {
        let Some(service) = self.service(container).await? else {
            return self.docker.start_container(container).await;
        };
        let id = service.id.clone().unwrap_or_default();
        let version = service
            .version
            .as_ref()
            .and_then(|v| v.index)
            .and_then(|i| i32::try_from(i).ok())
            .unwrap_or_default();
        let mut spec = service.spec.unwrap_or_default();
        spec.mode = Some(bollard::models::ServiceSpecMode {
            replicated: Some(bollard::models::ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        });
        let opts = bollard::query_parameters::UpdateServiceOptionsBuilder::new()
            .version(version)
            .build();
        let target = id.clone();
        self.docker
            .call("update_service", |d| async move {
                d.update_service(&target, spec, opts, None).await
            })
            .await?;
        self.wait_running(&id).await
    }

    async fn remove_container(&self, container: &str, grace: Duration) -> Result<(), RuntimeError> {
        match self.service(container).await? {
            Some(s) => {
                self.remove_service(s.id.as_deref().unwrap_or(container), grace)
                    .await
            }
            None => self.docker.remove_container(container, grace).await,
        }
    }

    async fn inspect_container(
        &self,
        container: &str,
    ) -> Result<Option<ContainerInfo>, RuntimeError> {
        let Some(service) = self.service(container).await? else {
            return self.docker.inspect_container(container).await;
        };
        let task = self
            .task(service.id.as_deref().unwrap_or(container))
            .await?;
        let mut info = tasks::info_of(&service, task.as_ref());
        if let (ContainerState::Running, Some(t)) = (info.state, &task) {
            info.addresses = self.addresses(&service, t).await?;
        }
        Ok(Some(info))
    }

    /// As the service's spec says (API 1.41 has no no-new-privileges or seccomp field for
    /// services, so `security_opt` stays empty).
    async fn inspect_security(&self, container: &str) -> Result<ContainerSecurity, RuntimeError> {
        let Some(service) = self.service(container).await? else {
            return self.docker.inspect_security(container).await;
        };
        let task = service
            .spec
            .and_then(|s| s.task_template)
            .unwrap_or_default();
        let c = task.container_spec.unwrap_or_default();
        let limits = task.resources.and_then(|r| r.limits).unwrap_or_default();
        Ok(ContainerSecurity {
            user: c.user.filter(|u| !u.is_empty()),
            cap_drop: c.capability_drop.unwrap_or_default(),
            security_opt: Vec::new(),
            read_only_root: c.read_only.unwrap_or(false),
            memory_bytes: limits.memory_bytes,
            nano_cpus: limits.nano_cpus,
            pids: limits.pids,
        })
    }

    /// Services whose labels match, then plain containers (not tasks) whose labels match.
    async fn list_containers(
        &self,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filters = HashMap::from([("label", label_filters(labels))]);
        let opts = ListServicesOptionsBuilder::new().filters(&filters).build();
        let services = self
            .docker
            .call("list_services", |d| async move {
                d.list_services(Some(opts)).await
            })
            .await?;
        let ids: Vec<String> = services.iter().filter_map(|s| s.id.clone()).collect();
        let all = self.tasks(&ids).await?;
        let mut out: Vec<ContainerInfo> = services
            .iter()
            .map(|s| {
                let mine: Vec<Task> = all
                    .iter()
                    .filter(|t| t.service_id == s.id)
                    .cloned()
                    .collect();
                tasks::info_of(s, tasks::newest(&mine))
            })
            .collect();
        out.extend(
            self.docker
                .list_containers(labels)
                .await?
                .into_iter()
                .filter(|c| !is_task(c)),
        );
        Ok(out)
    }

    async fn list_containers_on(
        &self,
        network: &str,
        labels: &LabelFilter,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let all = self.docker.list_containers_on(network, labels).await?;
        Ok(all.into_iter().filter(|c| !is_task(c)).collect())
    }

    /// This node's container events, a task's told as its service's (the id the lifecycle
    /// holds). Tasks on other nodes are seen by the reconcile and the proxy's gone check.
    async fn events(
        &self,
        labels: &LabelFilter,
    ) -> Result<BoxStream<'static, Result<RuntimeEvent, RuntimeError>>, RuntimeError> {
        let stream = self.docker.events(labels).await?;
        Ok(stream
            .map(|ev| {
                ev.map(|mut ev| {
                    if let Some(service) = ev.labels.get(SERVICE_ID_LABEL) {
                        ev.container_id = service.clone();
                    }
                    ev
                })
            })
            .boxed())
    }

    /// The log of the service's task container on this node; Swarm's word on the task when
    /// it runs (or ran) elsewhere.
    async fn logs(&self, container: &str, tail: usize) -> Result<String, RuntimeError> {
        let Some(service) = self.service(container).await? else {
            return self.docker.logs(container, tail).await;
        };
        let Some(task) = self
            .task(service.id.as_deref().unwrap_or(container))
            .await?
        else {
            return Ok(String::new());
        };
        match tasks::container_of(&task) {
            Some(c) => match self.docker.logs(c, tail).await {
                Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(tasks::why(&task)),
                other => other,
            },
            None => Ok(tasks::why(&task)),
        }
    }

    async fn memory_usage(&self, container: &str) -> Result<Option<u64>, RuntimeError> {
        let Some(service) = self.service(container).await? else {
            return self.docker.memory_usage(container).await;
        };
        let task = self
            .task(service.id.as_deref().unwrap_or(container))
            .await?;
        match task.as_ref().and_then(tasks::container_of) {
            Some(c) => match self.docker.memory_usage(c).await {
                Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(None),
                other => other,
            },
            None => Ok(None),
        }
    }

    async fn own_container(&self) -> Option<String> {
        self.docker.own_container().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_with_a_file_of_this_host_or_a_front_door_on_the_host_pins_the_node() {
        let plain = ContainerSpec::default();
        let policed = ContainerSpec {
            this_host: true,
            ..Default::default()
        };
        assert!(
            on_this_node(&plain, false),
            "reached through docker_gwbridge"
        );
        assert!(
            !on_this_node(&plain, true),
            "reached on the overlay: any node"
        );
        assert!(
            on_this_node(&policed, true),
            "its policed API socket is here"
        );
        assert!(on_this_node(&policed, false));
    }
}
