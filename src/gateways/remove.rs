//! Removing what one gateway is made of: its container, the front door's attachment to its
//! network, the MCP server containers it started, the network and its subnet. Shared by the
//! stop, a failed start and a gateway that could not be adopted, so every path leaves the
//! same nothing behind.

use super::names::Naming;
use super::servers::{remove_network_with_servers, remove_user_servers};
use super::slot::{Running, StopReason};
use super::subnets::{Subnet, SubnetPool};
use super::timing::STOP_GRACE;
use crate::dockerapi::GatewayApis;
use crate::runtime::{Runtime, RuntimeError};
use std::sync::Arc;
use std::time::Duration;

/// What removing a gateway needs, and nothing else.
pub(super) struct Remover {
    pub rt: Arc<dyn Runtime>,
    pub apis: Option<GatewayApis>,
    pub naming: Naming,
    pub subnets: Arc<SubnetPool>,
    /// How long a start window lasts (`claim.rs`), to tell a network made after a gateway.
    pub spawn_timeout: Duration,
}

impl Remover {
    /// Removes a gateway that ran (a stop); the container gets `STOP_GRACE` unless it crashed.
    /// Returns the engine's error when the container could not be removed (it is retried at
    /// the next start, which removes whatever holds the name).
    pub async fn gateway(
        &self,
        slug: &str,
        running: &Running,
        reason: StopReason,
    ) -> Result<(), RuntimeError> {
        let grace = match reason {
            StopReason::Crashed => Duration::ZERO,
            _ => STOP_GRACE,
        };
        let removed = self.rt.remove_container(&running.container_id, grace).await;
        if let Err(e) = &removed {
            tracing::warn!(user = slug, error = %e, "removing gateway container failed; it is retried at the next start");
        }
        if let Some(own) = &running.joined {
            let _ = self.rt.disconnect_network(&running.network, own).await;
        }
        self.servers(slug).await;
        if self.newer_network(slug, running).await {
            // Another replica stopped this gateway and began a new one meanwhile (its death
            // is what brought us here): that network is the new start's.
            tracing::info!(
                user = slug,
                "the network under this name is a newer start's; left to it"
            );
        } else if let Err(e) = remove_network_with_servers(self.rt.as_ref(), &running.network).await
        {
            tracing::warn!(user = slug, error = %e, "removing gateway network failed");
        }
        self.release(running.subnet);
        removed
    }

    /// Whether the network named like `running`'s was made after `running` started (its
    /// start window opened later), so it is not this gateway's.
    async fn newer_network(&self, slug: &str, running: &Running) -> bool {
        let filter: Vec<(String, String)> = self.naming.labels(slug).into_iter().collect();
        let Ok(networks) = self.rt.list_networks(&filter).await else {
            return false;
        };
        let started = running
            .started_at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        networks
            .iter()
            .filter(|n| n.name == running.network)
            .filter_map(|n| n.labels.get(super::names::LABEL_STARTING_UNTIL))
            .filter_map(|v| v.parse::<u64>().ok())
            .any(|until| until.saturating_sub(self.spawn_timeout.as_millis() as u64) > started)
    }

    /// Removes what a start (or an adoption) made under `name` before it failed.
    pub async fn leftovers(
        &self,
        slug: &str,
        name: &str,
        joined: Option<&str>,
        subnet: Option<Subnet>,
    ) {
        if let Err(e) = self.rt.remove_container(name, Duration::ZERO).await {
            tracing::warn!(container = name, error = %e, "removing gateway container failed");
        }
        if let Some(own) = joined {
            let _ = self.rt.disconnect_network(name, own).await;
        }
        if let Err(e) = remove_network_with_servers(self.rt.as_ref(), name).await {
            tracing::warn!(network = name, error = %e, "removing gateway network failed");
        }
        self.servers(slug).await;
        self.release(subnet);
    }

    /// The user's MCP server containers (and policed API endpoint).
    pub async fn servers(&self, slug: &str) {
        remove_user_servers(
            self.rt.as_ref(),
            self.apis.as_ref(),
            &self.naming.instance,
            slug,
        )
        .await;
    }

    fn release(&self, subnet: Option<Subnet>) {
        if let Some(s) = subnet {
            self.subnets.release(s);
        }
    }
}
