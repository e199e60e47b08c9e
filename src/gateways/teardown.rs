//! Taking an instance down completely: every gateway container, the MCP server containers its
//! gateways started, the networks, and the derived gateway images (`init.rs`). Used by
//! `mcp-frontdoor gateways stop-all` and by the front door's own shutdown with
//! `gateways.stop_on_shutdown`, so that removing a deployment (`docker-compose down`) leaves
//! nothing of it on the engine. Found by the instance's labels, as the reconcile finds them;
//! other instances' objects are never touched.

use super::names::{Naming, LABEL_USER};
use super::servers::{remove_network_with_servers, SERVER_LABEL};
use super::timing::STOP_GRACE;
use crate::runtime::{ContainerState, Runtime, RuntimeError};
use futures_util::StreamExt;
use std::fmt;
use std::time::Duration;

/// Containers stopped at once: each may take `STOP_GRACE` to answer SIGTERM.
const PARALLEL: usize = 8;

/// What a teardown removed, and what it could not.
#[derive(Debug, Default)]
pub struct Teardown {
    pub gateways: usize,
    /// Other managed containers (an init-image helper left by a killed process).
    pub helpers: usize,
    pub servers: usize,
    pub networks: usize,
    pub images: usize,
    /// One line per object that could not be removed.
    pub failed: Vec<String>,
}

impl fmt::Display for Teardown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "removed {} gateway containers, {} MCP server containers, {} helper containers, {} networks, {} images",
            self.gateways, self.servers, self.helpers, self.networks, self.images
        )?;
        if !self.failed.is_empty() {
            write!(f, "; could not remove: {}", self.failed.join("; "))?;
        }
        Ok(())
    }
}

/// Removes every object of `naming`'s instance. Fails only when the engine cannot be listed;
/// objects that resist removal are reported in [`Teardown::failed`].
pub async fn remove_instance(rt: &dyn Runtime, naming: &Naming) -> Result<Teardown, RuntimeError> {
    let filter = naming.filter();
    let mut out = Teardown::default();

    // Gateways first: a running gateway could start another MCP server meanwhile.
    let containers = rt.list_containers(&filter).await?;
    let removals = futures_util::stream::iter(containers.into_iter().map(|c| async move {
        let grace = if c.state == ContainerState::Running {
            STOP_GRACE
        } else {
            Duration::ZERO
        };
        let result = rt.remove_container(&c.id, grace).await;
        (c, result)
    }))
    .buffer_unordered(PARALLEL)
    .collect::<Vec<_>>()
    .await;
    for (c, result) in removals {
        match result {
            Ok(()) if c.labels.contains_key(LABEL_USER) => out.gateways += 1,
            Ok(()) => out.helpers += 1,
            Err(e) => out.failed.push(format!("container {}: {e}", c.name)),
        }
    }

    // Server containers of the policed Docker API by their labels: one on `none` (a server
    // with `disableNetwork`) is on no user network, so the network pass below would miss it.
    let servers = crate::dockerapi::scope::instance_servers_filter(&naming.instance);
    for c in rt.list_containers(&servers).await? {
        match rt.remove_container(&c.id, Duration::ZERO).await {
            Ok(()) => out.servers += 1,
            Err(e) => out.failed.push(format!("container {}: {e}", c.name)),
        }
    }

    // Networks: whatever else is still attached (the front door's own container, running or
    // stopped, joins every user network) is detached; the servers go with the network.
    for n in rt.list_networks(&filter).await? {
        let filter_servers = |c: &crate::runtime::ContainerInfo| {
            c.labels.get(SERVER_LABEL.0).map(String::as_str) == Some(SERVER_LABEL.1)
        };
        if let Ok(attached) = rt.list_containers_on(&n.id, &Vec::new()).await {
            for c in attached.iter().filter(|c| !filter_servers(c)) {
                let _ = rt.disconnect_network(&n.id, &c.id).await;
            }
        }
        match remove_network_with_servers(rt, &n.id).await {
            Ok(servers) => {
                out.servers += servers;
                out.networks += 1;
            }
            Err(e) => out.failed.push(format!("network {}: {e}", n.name)),
        }
    }

    // The derived gateway images, once no container uses them.
    for image in rt.list_images(&filter).await? {
        match rt.remove_image(&image).await {
            Ok(()) => out.images += 1,
            Err(e) => out.failed.push(format!("image {image}: {e}")),
        }
    }
    tracing::info!(instance = %naming.instance, "{out}");
    Ok(out)
}
