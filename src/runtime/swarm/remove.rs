//! Taking a gateway down on Swarm: the service, its task's container, then the overlay, which
//! this node keeps a few seconds after its last task left.

use super::{SwarmRuntime, NETWORK_RELEASE, POLL};
use crate::runtime::{Runtime, RuntimeError, RuntimeErrorKind};
use std::time::Duration;
use tokio::time::Instant;

impl SwarmRuntime {
    /// Removes the service, then waits (at most `grace` and a few seconds) for its task's
    /// container to stop; what is left is removed by force: a network with an endpoint still
    /// on it cannot be removed.
    pub(super) async fn remove_service(
        &self,
        id: &str,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        match self
            .docker
            .call(
                "remove_service",
                |d| async move { d.delete_service(id).await },
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind == RuntimeErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + grace + Duration::from_secs(3);
        loop {
            let left = self.task_containers(id).await?;
            if left.is_empty() {
                return Ok(());
            }
            if grace.is_zero() || Instant::now() > deadline {
                for c in left {
                    self.docker.remove_container(&c, Duration::ZERO).await?;
                }
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Removes every network named `name`, or the one with that id. Swarm's ids (25
    /// characters) are not the 64 hex digits the Docker runtime tells names apart by.
    pub(super) async fn remove_networks_named(&self, name: &str) -> Result<(), RuntimeError> {
        let ids: Vec<String> = self
            .docker
            .list_networks(&Vec::new())
            .await?
            .into_iter()
            .filter(|n| n.id == name || n.name == name)
            .map(|n| n.id)
            .collect();
        for id in ids {
            self.docker.remove_network_id(&id).await?;
        }
        Ok(())
    }

    /// Whether a network of that name or id is still listed here.
    pub(super) async fn network_present(&self, name: &str) -> Result<bool, RuntimeError> {
        match self
            .docker
            .call("inspect_network", |d| async move {
                d.inspect_network(name, None).await
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind == RuntimeErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the network (by name or Swarm id) and waits until this node has let go of it
    /// too: after a task left an overlay, the node keeps its own copy (same name, same subnet)
    /// for a few seconds, and a network made meanwhile would share the name (refused as a
    /// conflict) or the subnet (its task rejected: "Pool overlaps").
    pub(super) async fn remove_network_released(&self, name: &str) -> Result<(), RuntimeError> {
        let deadline = Instant::now() + NETWORK_RELEASE;
        loop {
            let retry = match self.remove_networks_named(name).await {
                Ok(()) => false,
                // The node's copy: listed, but unknown to the manager.
                Err(e) if e.message.contains("not found") => false,
                // The manager releases a removed task's endpoint a moment after its
                // container is gone.
                Err(e)
                    if e.message.contains("in use") || e.message.contains("active endpoints") =>
                {
                    if Instant::now() > deadline {
                        return Err(e);
                    }
                    true
                }
                Err(e) => return Err(e),
            };
            if !retry && !self.network_present(name).await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(RuntimeError::new(
                    "remove_network",
                    RuntimeErrorKind::Api,
                    format!("network {name} is still present on this node"),
                ));
            }
            tokio::time::sleep(POLL * 2).await;
        }
    }
}
