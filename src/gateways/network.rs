//! A gateway's private network: whatever a crash or a killed front door left under the user's
//! name is removed first (it would make create fail; by id, as `claim.rs` found it, so nothing
//! another replica made since is touched), then a network on a subnet of our pool that no
//! network on the engine uses. The network's name is the start lock between replicas: a
//! create that conflicts means another replica is starting this user's gateway.

use super::names::{Naming, LABEL_STARTING_UNTIL};
use super::servers::remove_network_with_servers;
use super::subnets::{Subnet, SubnetPool};
use crate::runtime::{NetworkSpec, Runtime, RuntimeError, RuntimeErrorKind};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a start found under the user's name and may remove (by id) before making its own.
#[derive(Debug, Default)]
pub(super) struct Leftovers {
    pub container: Option<String>,
    pub network: Option<String>,
}

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
    /// Removes the `leftovers` and makes the user's network, open for starting until
    /// `until_ms`; returns the subnet it reserved (the caller releases it when the gateway
    /// goes).
    pub async fn fresh(
        &self,
        slug: &str,
        name: &str,
        leftovers: &Leftovers,
        until_ms: u64,
    ) -> Result<Subnet, RuntimeError> {
        if let Some(id) = &leftovers.container {
            self.rt.remove_container(id, Duration::ZERO).await?;
        }
        if let Some(id) = &leftovers.network {
            match remove_network_with_servers(self.rt.as_ref(), id).await {
                Err(e) if e.kind != RuntimeErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let t = Instant::now();
        let subnet = self.create(slug, name, until_ms).await?;
        tracing::debug!(
            user = slug,
            ms = t.elapsed().as_millis() as u64,
            "network created"
        );
        Ok(subnet)
    }

    async fn create(&self, slug: &str, name: &str, until_ms: u64) -> Result<Subnet, RuntimeError> {
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
                labels: {
                    let mut l = self.naming.labels(slug);
                    l.insert(LABEL_STARTING_UNTIL.to_string(), until_ms.to_string());
                    l
                },
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
