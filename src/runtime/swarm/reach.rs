//! Where the front door finds a task. The host cannot route to overlay addresses, but every
//! task container on this node is also on `docker_gwbridge` (icc off there, so gateways cannot
//! reach each other through it); its address there is only in that network's inspect. A
//! front door in a container joined to the user's overlay uses the overlay address instead,
//! wherever the task runs.

use super::super::docker::DockerRuntime;
use super::super::RuntimeError;
use bollard::query_parameters::InspectNetworkOptionsBuilder;
use std::net::Ipv4Addr;

/// The bridge Swarm connects every task container to on its node.
pub(super) const GWBRIDGE: &str = "docker_gwbridge";

/// `10.0.0.3/24` or `10.0.0.3` as an address.
pub(super) fn ip_of(cidr: &str) -> Option<Ipv4Addr> {
    cidr.split('/').next()?.parse().ok()
}

/// The address of `container` (a task's container on this node) on `network`, as the
/// network's inspect lists its local endpoints.
pub(super) async fn local_address(
    docker: &DockerRuntime,
    network: &str,
    container: &str,
) -> Result<Option<Ipv4Addr>, RuntimeError> {
    let n = docker
        .call("inspect_network", |d| async move {
            d.inspect_network(network, None).await
        })
        .await?;
    Ok(n.containers
        .unwrap_or_default()
        .get(container)
        .and_then(|e| e.ipv4_address.as_deref())
        .and_then(ip_of))
}

/// The overlay address of task `task_id` on `network` on any node: the verbose inspect lists
/// each service's tasks by name (`<service>.<slot>.<task id>`) with their endpoint address.
pub(super) async fn overlay_address(
    docker: &DockerRuntime,
    network: &str,
    task_id: &str,
) -> Result<Option<Ipv4Addr>, RuntimeError> {
    let opts = InspectNetworkOptionsBuilder::new().verbose(true).build();
    let n = docker
        .call("inspect_network", |d| async move {
            d.inspect_network(network, Some(opts)).await
        })
        .await?;
    let found = n
        .services
        .unwrap_or_default()
        .into_values()
        .filter_map(|s| s.get("Tasks")?.as_array().cloned())
        .flatten()
        .find(|t| {
            t.get("Name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.ends_with(&format!(".{task_id}")))
        })
        .and_then(|t| ip_of(t.get("EndpointIP")?.as_str()?));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::ip_of;

    #[test]
    fn addresses_with_or_without_a_prefix() {
        assert_eq!(ip_of("172.18.0.3/16"), Some([172, 18, 0, 3].into()));
        assert_eq!(ip_of("10.231.0.4"), Some([10, 231, 0, 4].into()));
        assert_eq!(ip_of(""), None);
    }
}
