//! The MCP server containers a gateway runs. docker/mcp-gateway starts each catalog server with
//! `docker run` (label `docker-mcp=true`) on its own container's networks, which is the user's
//! network. Through the policed Docker API they also carry the front door's labels (instance,
//! user, `mcp-frontdoor.role=server`), so they are found both ways: by that network (shown in
//! the gateway's status, counted in metrics) and by label (which also finds those a crash or a
//! front door restart left on no network of ours). They are removed with the gateway on every
//! path (idle, API stop, failed start, crash, adoption clean-up), before its network, which the
//! engine refuses to remove while anything is attached.

use super::lifecycle::Inner;
use crate::runtime::{ContainerInfo, Runtime, RuntimeError};
use std::time::Duration;

/// The label docker/mcp-gateway puts on every server container it runs.
pub const SERVER_LABEL: (&str, &str) = ("docker-mcp", "true");

impl Inner {
    /// The server containers on a gateway's network (name or id), in any state.
    pub(super) async fn server_containers(
        &self,
        network: &str,
    ) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filter = vec![(SERVER_LABEL.0.to_string(), SERVER_LABEL.1.to_string())];
        self.rt.list_containers_on(network, &filter).await
    }

    /// Removes every server container of `slug` by label, and stops serving its policed Docker
    /// API (its socket directory goes too). Call it after the gateway container is gone.
    pub(super) async fn remove_user_servers(&self, slug: &str) {
        if let Some(apis) = &self.apis {
            apis.close(slug);
        }
        let filter = crate::dockerapi::scope::server_filter(&self.naming.instance, slug);
        match self.rt.list_containers(&filter).await {
            Ok(servers) => {
                for c in servers {
                    tracing::info!(user = slug, container = %c.name, "removing MCP server container of the gateway");
                    if let Err(e) = self.rt.remove_container(&c.id, Duration::ZERO).await {
                        tracing::warn!(container = %c.name, error = %e, "removing server container failed");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(user = slug, error = %e, "listing the gateway's server containers failed")
            }
        }
    }

    /// Removes a gateway's network after the server containers on it. Call it after the
    /// gateway container itself is gone, so no new server appears meanwhile.
    pub(super) async fn remove_network_with_servers(
        &self,
        network: &str,
    ) -> Result<(), RuntimeError> {
        remove_network_with_servers(self.rt.as_ref(), network)
            .await
            .map(drop)
    }
}

/// The one removal of a gateway network and the MCP server containers on it, shared by every
/// stop path and by `gateways stop-all` ([`super::teardown`]). Returns how many servers went.
pub(super) async fn remove_network_with_servers(
    rt: &dyn Runtime,
    network: &str,
) -> Result<usize, RuntimeError> {
    let filter = vec![(SERVER_LABEL.0.to_string(), SERVER_LABEL.1.to_string())];
    let mut removed = 0;
    match rt.list_containers_on(network, &filter).await {
        Ok(servers) => {
            for c in servers {
                tracing::info!(network, container = %c.name, "removing MCP server container of the gateway");
                match rt.remove_container(&c.id, Duration::ZERO).await {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(container = %c.name, error = %e, "removing server container failed")
                    }
                }
            }
        }
        // A network that is already gone has no servers either.
        Err(e) if e.kind == crate::runtime::RuntimeErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    rt.remove_network(network).await?;
    Ok(removed)
}
