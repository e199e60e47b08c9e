//! Reading services back: a service by name or id, its tasks, this node's id, where the front
//! door reaches a running task, and the wait for a started one.

use super::{reach, tasks, SwarmRuntime, NETWORK_LABEL, POLL, SERVICE_ID_LABEL};
use crate::runtime::{ContainerState, Runtime, RuntimeError, RuntimeErrorKind};
use bollard::models::{Service, Task};
use bollard::query_parameters::ListTasksOptionsBuilder;
use std::collections::HashMap;
use tokio::time::Instant;

impl SwarmRuntime {
    /// The service by name or id, `None` when there is none.
    pub(super) async fn service(&self, name: &str) -> Result<Option<Service>, RuntimeError> {
        match self
            .docker
            .call("inspect_service", |d| async move {
                d.inspect_service(name, None).await
            })
            .await
        {
            // The engine resolves id prefixes too: only an exact match is this service.
            Ok(s) if s.id.as_deref() == Some(name) || spec_name(&s) == Some(name) => Ok(Some(s)),
            Ok(_) => Ok(None),
            Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every task of the services `ids`.
    pub(super) async fn tasks(&self, ids: &[String]) -> Result<Vec<Task>, RuntimeError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let filters = HashMap::from([("service", ids.to_vec())]);
        let opts = ListTasksOptionsBuilder::new().filters(&filters).build();
        self.docker
            .call(
                "list_tasks",
                |d| async move { d.list_tasks(Some(opts)).await },
            )
            .await
    }

    /// The newest task of service `id`.
    pub(super) async fn task(&self, id: &str) -> Result<Option<Task>, RuntimeError> {
        let all = self.tasks(&[id.to_string()]).await?;
        Ok(tasks::newest(&all).cloned())
    }

    /// This node's id: gateways of a front door on the host are placed here, the only node
    /// whose `docker_gwbridge` it can reach.
    pub(super) async fn local_node(&self) -> Result<String, RuntimeError> {
        if let Some(n) = self.node.lock().clone() {
            return Ok(n);
        }
        let info = self
            .docker
            .call("info", |d| async move { d.info().await })
            .await?;
        let node = info
            .swarm
            .and_then(|s| s.node_id)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                RuntimeError::new(
                    "info",
                    RuntimeErrorKind::Api,
                    "this engine is not part of a swarm (gateways.runtime: swarm needs a manager)",
                )
            })?;
        *self.node.lock() = Some(node.clone());
        Ok(node)
    }

    /// The address the front door reaches a running task at, keyed by the user's network
    /// name as the lifecycle looks it up.
    pub(super) async fn addresses(
        &self,
        service: &Service,
        task: &Task,
    ) -> Result<HashMap<String, std::net::Ipv4Addr>, RuntimeError> {
        let Some(network) = service
            .spec
            .as_ref()
            .and_then(|s| s.labels.as_ref()?.get(NETWORK_LABEL).cloned())
        else {
            return Ok(HashMap::new());
        };
        let ip = if self.docker.own_container().await.is_some() {
            match task.id.as_deref() {
                Some(t) => reach::overlay_address(&self.docker, &network, t).await?,
                None => None,
            }
        } else {
            match tasks::container_of(task) {
                Some(c) => reach::local_address(&self.docker, reach::GWBRIDGE, c).await?,
                None => None,
            }
        };
        Ok(ip.map(|ip| (network, ip)).into_iter().collect())
    }

    /// Local containers of service `id` (its tasks on this node).
    pub(super) async fn task_containers(&self, id: &str) -> Result<Vec<String>, RuntimeError> {
        let filter = vec![(SERVICE_ID_LABEL.to_string(), id.to_string())];
        Ok(self
            .docker
            .list_containers(&filter)
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect())
    }

    /// Waits until the newest task of service `id` runs; a task that ended instead fails the
    /// start with Swarm's reason (a missing image on the node, a refused mount).
    pub(super) async fn wait_running(&self, id: &str) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + self.settings.start_timeout;
        loop {
            let task = self.task(id).await?;
            match tasks::state_of(task.as_ref()) {
                ContainerState::Running => return Ok(()),
                ContainerState::Exited => {
                    let why = task.as_ref().map_or_else(String::new, tasks::why);
                    return Err(RuntimeError::new(
                        "start_container",
                        RuntimeErrorKind::Api,
                        why,
                    ));
                }
                _ if Instant::now() > deadline => {
                    let why = task.as_ref().map_or("no task".into(), tasks::why);
                    return Err(RuntimeError::new(
                        "start_container",
                        RuntimeErrorKind::Timeout,
                        format!("the service's task is not running: {why}"),
                    ));
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
    }
}

fn spec_name(s: &Service) -> Option<&str> {
    s.spec.as_ref()?.name.as_deref()
}
