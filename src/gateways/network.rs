//! A gateway's private network: whatever a crash or a killed front door left under the user's
//! name is removed first (it would make create fail), then a network on a subnet of our pool
//! that no network on the engine uses.

use super::names::Naming;
use super::servers::remove_network_with_servers;
use super::subnets::{Subnet, SubnetPool};
use crate::runtime::{NetworkSpec, Runtime, RuntimeError, RuntimeErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Attempts at a free subnet when another engine user takes ours first.
const SUBNET_ATTEMPTS: usize = 8;

/// What making a gateway network needs.
pub(super) struct Networks {
    pub rt: Arc<dyn Runtime>,
    pub subnets: Arc<SubnetPool>,
    pub naming: Naming,
    /// `gateways.docker.internal_networks`.
    pub internal: bool,
    /// The pool as configured, for the message when it is full.
    pub pool_text: String,
    pub prefix: u8,
}

impl Networks {
    /// Removes leftovers named `name` and makes the user's network; returns the subnet it
    /// reserved (the caller releases it when the gateway goes).
    pub async fn fresh(&self, slug: &str, name: &str) -> Result<Subnet, RuntimeError> {
        self.rt.remove_container(name, Duration::ZERO).await?;
        remove_network_with_servers(self.rt.as_ref(), name).await?;
        let t = Instant::now();
        let subnet = self.create(slug, name).await?;
        tracing::debug!(
            user = slug,
            ms = t.elapsed().as_millis() as u64,
            "network created"
        );
        Ok(subnet)
    }

    async fn create(&self, slug: &str, name: &str) -> Result<Subnet, RuntimeError> {
        for _ in 0..SUBNET_ATTEMPTS {
            let in_use: Vec<String> = self
                .rt
                .list_networks(&Vec::new())
                .await?
                .into_iter()
                .flat_map(|n| n.subnets)
                .collect();
            let subnet = self.subnets.allocate(&in_use).ok_or_else(|| {
                RuntimeError::new(
                    "create_network",
                    RuntimeErrorKind::SubnetTaken,
                    format!(
                        "gateways.docker.subnet_pool {} has no free /{} left",
                        self.pool_text, self.prefix
                    ),
                )
            })?;
            let spec = NetworkSpec {
                name: name.to_string(),
                subnet: subnet.to_string(),
                labels: self.naming.labels(slug),
                internal: self.internal,
            };
            match self.rt.create_network(&spec).await {
                Ok(_) => return Ok(subnet),
                Err(e) if e.kind == RuntimeErrorKind::SubnetTaken => {
                    // Another engine user took it between list and create; the reservation
                    // stays so we do not try it again.
                    tracing::debug!(%subnet, "subnet taken meanwhile; trying the next");
                }
                Err(e) => {
                    self.subnets.release(subnet);
                    return Err(e);
                }
            }
        }
        Err(RuntimeError::new(
            "create_network",
            RuntimeErrorKind::SubnetTaken,
            "no free subnet after several attempts",
        ))
    }
}
