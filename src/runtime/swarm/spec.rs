//! A gateway's [`ContainerSpec`] as a Swarm service: one replicated task (created with none,
//! scaled to one by `start_container`), never restarted by Swarm, on the user's overlay
//! network. Pure, so every rule is a unit test. What API 1.41 cannot express is listed in
//! README ("Docker Swarm") and left out here rather than faked.

use super::super::docker::convert::mounts_of;
use super::super::ContainerSpec;
use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Limit, Mount, MountTmpfsOptions, MountType,
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use std::time::Duration;

/// Size of a scratch tmpfs (`/tmp`), as the Docker runtime gives it.
const SCRATCH_BYTES: i64 = 64 << 20;
/// Mode of every tmpfs: services cannot set a tmpfs owner (no uid/gid before API 1.48), so
/// the container's user could not write a 0700 directory owned by root; sticky and
/// world-writable is the mode that works for any user (the files the init writes there get
/// their own modes).
pub(super) const TMPFS_MODE: i64 = 0o1777;

/// The service for `spec` on the network `network_id`, limited to `node` when given.
pub(super) fn service_spec(
    spec: &ContainerSpec,
    network_id: &str,
    stop_grace: Duration,
    node: Option<&str>,
) -> ServiceSpec {
    let container = TaskSpecContainerSpec {
        image: Some(spec.image.clone()),
        // Local container events carry these, which is how the events are ours.
        labels: Some(spec.labels.clone()),
        command: spec.entrypoint.clone(),
        args: Some(spec.args.clone()),
        env: Some(spec.env.clone()),
        user: spec.user.clone(),
        groups: (!spec.group_add.is_empty()).then(|| spec.group_add.clone()),
        read_only: Some(spec.read_only_root),
        mounts: Some(mounts(spec)),
        stop_grace_period: i64::try_from(stop_grace.as_nanos()).ok(),
        capability_drop: spec.harden.then(|| vec!["ALL".to_string()]),
        ..Default::default()
    };
    let limits = Limit {
        nano_cpus: spec.limits.cpus.map(|c| (c * 1e9) as i64),
        memory_bytes: spec.limits.memory_bytes.and_then(|m| i64::try_from(m).ok()),
        pids: spec.limits.pids,
    };
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(TaskSpecResources {
            limits: Some(limits),
            ..Default::default()
        }),
        // The front door notices a crash and starts a fresh gateway on the next request;
        // a task Swarm restarted behind its back would have a new token it never learns.
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
            ..Default::default()
        }),
        placement: node.map(|n| TaskSpecPlacement {
            constraints: Some(vec![format!("node.id=={n}")]),
            ..Default::default()
        }),
        networks: Some(vec![NetworkAttachmentConfig {
            target: Some(network_id.to_string()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(spec.labels.clone()),
        task_template: Some(task),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(0) }),
            ..Default::default()
        }),
        // No virtual IP: it would take an address of the user's small subnet, and the front
        // door talks to the one task directly.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: None,
        }),
        ..Default::default()
    }
}

/// Named volumes (as the Docker runtime mounts them), binds, scratch and memory tmpfs mounts.
fn mounts(spec: &ContainerSpec) -> Vec<Mount> {
    let tmpfs = |path: &str, size: i64| Mount {
        target: Some(path.to_string()),
        typ: Some(MountType::TMPFS),
        tmpfs_options: Some(MountTmpfsOptions {
            size_bytes: Some(size),
            mode: Some(TMPFS_MODE),
            options: None,
        }),
        ..Default::default()
    };
    let mut out = mounts_of(spec);
    out.extend(spec.binds.iter().filter_map(|b| bind(b)));
    out.extend(spec.tmpfs.iter().map(|p| tmpfs(p, SCRATCH_BYTES)));
    out.extend(
        spec.memory_dirs
            .iter()
            .map(|d| tmpfs(&d.path, i64::try_from(d.size_bytes).unwrap_or(i64::MAX))),
    );
    out
}

/// `source:target[:ro]` as a bind mount; `None` for anything else (config validation
/// accepted only that form).
fn bind(b: &str) -> Option<Mount> {
    let mut parts = b.splitn(3, ':');
    let (source, target) = (parts.next()?, parts.next()?);
    let read_only = match parts.next() {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(_) => return None,
    };
    Some(Mount {
        target: Some(target.to_string()),
        source: Some(source.to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(read_only),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Limits, MemoryDir};
    use std::collections::HashMap;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "mcp-fd-t-alice".into(),
            image: "sha256:derived".into(),
            entrypoint: Some(vec!["/.mcp-frontdoor/init".into()]),
            args: vec!["8811".into()],
            env: vec!["MCP_GATEWAY_AUTH_TOKEN=t".into()],
            labels: HashMap::from([("mcp-frontdoor.user".into(), "alice".into())]),
            network: "mcp-fd-t-alice".into(),
            port: 8811,
            limits: Limits {
                memory_bytes: Some(1 << 26),
                cpus: Some(0.5),
                pids: Some(64),
            },
            read_only_root: true,
            tmpfs: vec!["/tmp".into()],
            memory_dirs: vec![MemoryDir {
                path: "/home/gw/.docker".into(),
                uid: 1000,
                gid: 1000,
                mode: 0o700,
                size_bytes: 1 << 20,
            }],
            binds: vec!["/srv/a:/a:ro".into()],
            harden: true,
            ..Default::default()
        }
    }

    #[test]
    fn one_task_created_stopped_never_restarted_labelled_hardened_and_limited() {
        let s = service_spec(&spec(), "netid", Duration::from_secs(10), Some("node1"));
        assert_eq!(s.name.as_deref(), Some("mcp-fd-t-alice"));
        let replicas = s.mode.unwrap().replicated.unwrap().replicas;
        assert_eq!(
            replicas,
            Some(0),
            "created with no task: start scales to one"
        );
        let t = s.task_template.unwrap();
        assert_eq!(
            t.restart_policy.unwrap().condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        let c = t.container_spec.unwrap();
        assert_eq!(c.image.as_deref(), Some("sha256:derived"));
        assert_eq!(c.labels.unwrap()["mcp-frontdoor.user"], "alice");
        assert_eq!(c.capability_drop.unwrap(), ["ALL"]);
        assert_eq!(c.read_only, Some(true));
        assert_eq!(c.stop_grace_period, Some(10_000_000_000));
        let l = t.resources.unwrap().limits.unwrap();
        assert_eq!(
            (l.memory_bytes, l.nano_cpus, l.pids),
            (Some(1 << 26), Some(500_000_000), Some(64))
        );
        assert_eq!(t.networks.unwrap()[0].target.as_deref(), Some("netid"));
        assert_eq!(
            t.placement.unwrap().constraints.unwrap(),
            ["node.id==node1"]
        );
        assert_eq!(s.labels.unwrap()["mcp-frontdoor.user"], "alice");
        assert_eq!(
            s.endpoint_spec.unwrap().mode,
            Some(EndpointSpecModeEnum::DNSRR)
        );
    }

    #[test]
    fn tmpfs_mounts_are_sized_and_writable_for_any_user_and_binds_keep_ro() {
        let m = mounts(&spec());
        let tmp = m
            .iter()
            .find(|m| m.target.as_deref() == Some("/tmp"))
            .unwrap();
        let o = tmp.tmpfs_options.as_ref().unwrap();
        assert_eq!((o.size_bytes, o.mode), (Some(64 << 20), Some(0o1777)));
        let mem = m
            .iter()
            .find(|m| m.target.as_deref() == Some("/home/gw/.docker"))
            .unwrap();
        assert_eq!(
            mem.tmpfs_options.as_ref().unwrap().size_bytes,
            Some(1 << 20)
        );
        let b = m
            .iter()
            .find(|m| m.target.as_deref() == Some("/a"))
            .unwrap();
        assert_eq!(
            (b.source.as_deref(), b.read_only, b.typ),
            (Some("/srv/a"), Some(true), Some(MountType::BIND))
        );
        assert!(bind("/x:/y:z").is_none());
    }
}
