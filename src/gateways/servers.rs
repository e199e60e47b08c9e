//! The MCP server containers a gateway runs. docker/mcp-gateway starts each catalog server with
//! `docker run` (label `docker-mcp=true`) on its own container's networks, which is the user's
//! network. Through the policed Docker API they also carry the front door's labels (instance,
//! user, `mcp-frontdoor.role=server`), so they are found both ways: by that network (shown in
//! the gateway's status, counted in metrics) and by label (which also finds those a crash or a
//! front door restart left on no network of ours). They are removed with the gateway on every
//! path (idle, API stop, failed start, crash, adoption clean-up), before its network, which the
//! engine refuses to remove while anything is attached.

use crate::dockerapi::GatewayApis;
use crate::runtime::{ContainerInfo, Runtime, RuntimeError};
use std::time::Duration;

/// The label docker/mcp-gateway puts on every server container it runs.
pub const SERVER_LABEL: (&str, &str) = ("docker-mcp", "true");

/// The server containers on a gateway's network (name or id), in any state.
pub(super) async fn server_containers(
    rt: &dyn Runtime,
    network: &str,
) -> Result<Vec<ContainerInfo>, RuntimeError> {
    let filter = vec![(SERVER_LABEL.0.to_string(), SERVER_LABEL.1.to_string())];
    rt.list_containers_on(network, &filter).await
}

/// Removes every server container of `slug` (of `instance`) by label, and stops serving its
/// policed Docker API (its socket directory goes too). Call it after the gateway container is
/// gone.
pub(super) async fn remove_user_servers(
    rt: &dyn Runtime,
    apis: Option<&GatewayApis>,
    instance: &str,
    slug: &str,
) {
    if let Some(apis) = apis {
        apis.close(slug);
    }
    let filter = crate::dockerapi::scope::server_filter(instance, slug);
    match rt.list_containers(&filter).await {
        Ok(servers) => {
            for c in servers {
                tracing::info!(user = slug, container = %c.name, "removing MCP server container of the gateway");
                if let Err(e) = rt.remove_container(&c.id, Duration::ZERO).await {
                    tracing::warn!(container = %c.name, error = %e, "removing server container failed");
                }
            }
        }
        Err(e) => {
            tracing::warn!(user = slug, error = %e, "listing the gateway's server containers failed")
        }
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
