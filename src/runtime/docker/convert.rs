//! Pure conversions between bollard's types and the runtime's: error kinds, image references,
//! times, states, addresses, the tar of files put into a container, events.

use super::super::{
    ContainerSpec, ContainerState, EventKind, FileSpec, LabelFilter, RuntimeError,
    RuntimeErrorKind, RuntimeEvent,
};
use bollard::errors::Error as BollardError;
use bollard::models::{EndpointSettings, EventMessage, Mount, MountType, MountVolumeOptions};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::SystemTime;

/// Maps a bollard error to a kind the lifecycle can act on.
pub(in crate::runtime) fn classify(op: &'static str, e: BollardError) -> RuntimeError {
    use RuntimeErrorKind as K;
    let (kind, message) = match e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => {
            // The engine answers in words only: this is the one place they are read.
            let kind = match (op, status_code) {
                ("connect_network", _) if message.contains("already exists") => K::AlreadyDone,
                ("disconnect_network", _) if message.contains("not connected") => K::AlreadyDone,
                ("remove_container", 409) if message.contains("in progress") => K::AlreadyDone,
                (_, 404) => K::NotFound,
                (_, 409) => K::Conflict,
                _ if message.contains("overlaps") => K::SubnetTaken,
                _ => K::Api,
            };
            (kind, format!("{status_code}: {message}"))
        }
        BollardError::RequestTimeoutError => (K::Timeout, "request timed out".into()),
        e @ (BollardError::SocketNotFoundError(_)
        | BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::APIVersionParseError { .. }) => (K::Unreachable, e.to_string()),
        e => (K::Api, e.to_string()),
    };
    RuntimeError::new(op, kind, message)
}

pub(in crate::runtime) fn label_filters(labels: &LabelFilter) -> Vec<String> {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Splits `repo[:tag]` (a digest reference is passed whole) so a pull never means "all tags".
pub(in crate::runtime) fn split_image(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    let last = image.rfind('/').map_or(0, |i| i + 1);
    match image[last..].rfind(':') {
        Some(i) => (&image[..last + i], Some(&image[last + i + 1..])),
        None => (image, Some("latest")),
    }
}

pub(in crate::runtime) fn state_of(status: &str) -> ContainerState {
    match status {
        "created" => ContainerState::Created,
        "running" => ContainerState::Running,
        "exited" | "dead" | "removing" => ContainerState::Exited,
        _ => ContainerState::Other,
    }
}

pub(in crate::runtime) fn addresses(
    networks: Option<&HashMap<String, EndpointSettings>>,
) -> HashMap<String, Ipv4Addr> {
    networks
        .into_iter()
        .flatten()
        .filter_map(|(name, ep)| {
            let ip = ep.ip_address.as_deref()?.parse().ok()?;
            Some((name.clone(), ip))
        })
        .collect()
}

/// `HostConfig.Tmpfs`: scratch directories, and the memory directories owned by the
/// container's user (who fills them; see `gateways::init`).
pub(in crate::runtime) fn tmpfs_of(spec: &ContainerSpec) -> HashMap<String, String> {
    let scratch = spec
        .tmpfs
        .iter()
        .map(|p| (p.clone(), "rw,nosuid,nodev,size=64m".to_string()));
    let memory = spec.memory_dirs.iter().map(|d| {
        let opts = format!(
            "rw,nosuid,nodev,noexec,size={},uid={},gid={},mode={:o}",
            d.size_bytes, d.uid, d.gid, d.mode
        );
        (d.path.clone(), opts)
    });
    scratch.chain(memory).collect()
}

/// Docker mounts for the spec's named volumes.
pub(in crate::runtime) fn mounts_of(spec: &ContainerSpec) -> Vec<Mount> {
    spec.volumes
        .iter()
        .map(|v| Mount {
            target: Some(v.target.clone()),
            source: Some(v.name.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(v.read_only),
            volume_options: Some(MountVolumeOptions {
                labels: Some(v.labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// A tar archive of `files` (paths relative to the upload directory), parent directories first.
pub(in crate::runtime) fn tar_of(files: &[FileSpec]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs_done = std::collections::BTreeSet::new();
    for f in files {
        let rel = f.path.trim_start_matches('/');
        let mut prefix = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for dir in &parts[..parts.len().saturating_sub(1)] {
            prefix.push_str(dir);
            prefix.push('/');
            if dirs_done.insert(prefix.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_uid(f.uid);
                h.set_gid(f.gid);
                h.set_size(0);
                h.set_mtime(now_secs());
                b.append_data(&mut h, &prefix, std::io::empty())?;
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_size(f.contents.len() as u64);
        h.set_mtime(now_secs());
        b.append_data(&mut h, rel, &f.contents[..])?;
    }
    b.into_inner()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(in crate::runtime) fn event_of(m: EventMessage) -> Option<RuntimeEvent> {
    let kind = match m.action.as_deref()? {
        "start" => EventKind::Start,
        "die" => EventKind::Die,
        "oom" => EventKind::Oom,
        "destroy" => EventKind::Destroy,
        _ => return None,
    };
    let actor = m.actor?;
    Some(RuntimeEvent {
        container_id: actor.id?,
        kind,
        labels: actor.attributes.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(op: &'static str, status_code: u16, message: &str) -> RuntimeErrorKind {
        let e = BollardError::DockerResponseServerError {
            status_code,
            message: message.into(),
        };
        classify(op, e).kind
    }

    #[test]
    fn engine_words_become_kinds_only_for_the_operation_they_answer() {
        use RuntimeErrorKind as K;
        let exists = "endpoint with name gw already exists in network fd-u";
        assert_eq!(kind("connect_network", 403, exists), K::AlreadyDone);
        assert_eq!(
            kind(
                "disconnect_network",
                500,
                "container x is not connected to network y"
            ),
            K::AlreadyDone
        );
        let removing = "removal of container x is already in progress";
        assert_eq!(kind("remove_container", 409, removing), K::AlreadyDone);
        // The same words from another call mean no more than its status says.
        assert_eq!(kind("create_container", 409, removing), K::Conflict);
        assert_eq!(kind("create_network", 403, exists), K::Api);
        assert_eq!(kind("remove_container", 409, "name in use"), K::Conflict);
        assert_eq!(
            kind("remove_container", 404, "no such container"),
            K::NotFound
        );
        assert_eq!(
            kind(
                "create_network",
                400,
                "Pool overlaps with other one on this address space"
            ),
            K::SubnetTaken
        );
    }

    #[test]
    fn image_names_split_into_repo_and_tag() {
        assert_eq!(
            split_image("docker/mcp-gateway"),
            ("docker/mcp-gateway", Some("latest"))
        );
        assert_eq!(split_image("a/b:1.2"), ("a/b", Some("1.2")));
        assert_eq!(
            split_image("reg:5000/a/b"),
            ("reg:5000/a/b", Some("latest"))
        );
        assert_eq!(split_image("reg:5000/a:x"), ("reg:5000/a", Some("x")));
        assert_eq!(split_image("a@sha256:00"), ("a@sha256:00", None));
    }

    #[test]
    fn tar_has_parent_dirs_then_files() {
        let f = |p: &str| FileSpec {
            path: p.into(),
            contents: zeroize::Zeroizing::new(b"x".to_vec()),
            mode: 0o400,
            uid: 7,
            gid: 8,
        };
        let bytes = tar_of(&[f("catalogs/a.yaml"), f("s.env")]).unwrap();
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<(String, u64, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("catalogs/".into(), 7, 0o755),
                ("catalogs/a.yaml".into(), 7, 0o400),
                ("s.env".into(), 7, 0o400)
            ]
        );
    }
}
