//! What a gateway container is, as a pure function of the config, the images, the user's
//! prepared catalog and the start's token: command line, environment, mounts, limits and
//! hardening. No engine call and no clock, so every rule here is a unit test.

use super::files::{is_root, FilePlan, Prepared};
use super::init;
use super::names::{Naming, LABEL_CATALOG_HASH, TOKEN_ENV};
use crate::config::{DockerConfig, EngineHost, GatewayEngine, Reach};
use crate::runtime::{ContainerSpec, ImageInfo, Limits};
use std::time::Duration;

/// Everything a gateway's container spec is made of.
pub(super) struct SpecInput<'a> {
    pub docker: &'a DockerConfig,
    pub naming: &'a Naming,
    pub slug: &'a str,
    /// The gateway image as configured (its entrypoint, command and user count).
    pub image: &'a ImageInfo,
    /// Id of the derived image (the gateway image plus the init) the container is made from.
    pub derived: &'a str,
    pub prepared: &'a Prepared,
    pub plan: &'a FilePlan,
    pub token: &'a str,
    pub memory_bytes: u64,
    /// How long the init waits for its files (`spawn_timeout`).
    pub wait: Duration,
    /// The engine socket's group on this host (`engine_for_gateways: host`, non-root user).
    pub socket_group: Option<String>,
    /// The policed Docker API's bind mount and `DOCKER_HOST` (`engine_for_gateways: policed`).
    pub policed_api: Option<(String, String)>,
}

/// Why no spec could be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum SpecError {
    #[error("image {0} has no entrypoint or command and gateways.docker.command is empty")]
    NoCommand(String),
}

/// The gateway container.
pub(super) fn gateway_spec(i: &SpecInput<'_>) -> Result<ContainerSpec, SpecError> {
    let d = i.docker;
    let name = i.naming.object_name(i.slug);
    let mut labels = i.naming.labels(i.slug);
    labels.insert(LABEL_CATALOG_HASH.into(), i.prepared.hash.clone());
    let argv = gateway_argv(d, i.prepared, i.image, i.plan)?;
    let mut env = vec![
        format!("HOME={}", i.plan.home()),
        format!("DOCKER_CONFIG={}", i.plan.docker_config_dir()),
    ];
    env.extend(d.extra_env.iter().map(|(k, v)| format!("{k}={v}")));
    let user = d.user.as_deref().or(i.image.user.as_deref());
    let (mut binds, group_add) = gateway_binds(d, user, i.socket_group.as_deref());
    if let Some((bind, docker_host)) = &i.policed_api {
        binds.push(bind.clone());
        // After extra_env, so it cannot point the gateway elsewhere.
        env.push(docker_host.clone());
    }
    // Last, so extra_env cannot replace it.
    env.push(format!("{TOKEN_ENV}={}", i.token));
    let (entrypoint, args) = init::wrap(d.port, i.wait, &argv);
    Ok(ContainerSpec {
        network: name.clone(),
        name,
        // By id: see `init.rs` for why never by tag.
        image: i.derived.to_string(),
        entrypoint: Some(entrypoint),
        args,
        env,
        labels,
        user: d.user.clone(),
        port: d.port,
        publish_loopback: d.reach == Reach::Loopback,
        limits: Limits {
            memory_bytes: Some(i.memory_bytes),
            cpus: Some(d.cpus),
            pids: Some(d.pids),
        },
        read_only_root: d.read_only,
        tmpfs: vec!["/tmp".into()],
        memory_dirs: i.plan.memory_dirs(),
        volumes: Vec::new(),
        // The policed API's socket is a file of this host (served by this process).
        this_host: i.policed_api.is_some(),
        binds,
        group_add,
        harden: true,
    })
}

/// The gateway's own command line, which the init runs once the files are in: the
/// configured command (else the image's entrypoint), then the templated args (else the
/// image's command), as Docker itself would combine them.
fn gateway_argv(
    d: &DockerConfig,
    prepared: &Prepared,
    image: &ImageInfo,
    plan: &FilePlan,
) -> Result<Vec<String>, SpecError> {
    let args: Vec<String> = d
        .args
        .iter()
        .map(|a| {
            a.replace("{port}", &d.port.to_string())
                .replace("{catalog}", plan.catalog_path())
                .replace("{servers}", &prepared.servers.join(","))
                .replace("{secrets}", plan.secrets_path())
        })
        .collect();
    let mut argv = if d.command.is_empty() {
        image.entrypoint.clone()
    } else {
        d.command.clone()
    };
    argv.extend(if d.args.is_empty() {
        image.cmd.clone()
    } else {
        args
    });
    if argv.is_empty() {
        return Err(SpecError::NoCommand(d.image.clone()));
    }
    Ok(argv)
}

/// The configured mounts, plus the engine's socket for `engine_for_gateways: host` (with its
/// group, so a non-root gateway may use it).
fn gateway_binds(
    d: &DockerConfig,
    user: Option<&str>,
    socket_group: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut binds = d.mounts.clone();
    let mut groups = Vec::new();
    if d.gateway_engine() == GatewayEngine::Host {
        binds.push(format!("{}:{GATEWAY_SOCKET}", host_socket(d.host.as_ref())));
        if !is_root(user) {
            groups.extend(socket_group.map(String::from));
        }
    }
    (binds, groups)
}

/// The group of the engine's socket on this host, which a non-root gateway needs to use it
/// (`engine_for_gateways: host` only; read from the file system, hence outside the spec).
pub(super) fn socket_group(d: &DockerConfig) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if d.gateway_engine() != GatewayEngine::Host {
        return None;
    }
    let meta = std::fs::metadata(host_socket(d.host.as_ref())).ok()?;
    Some(meta.gid().to_string())
}

/// Where a gateway's `docker` CLI looks for the engine by default.
const GATEWAY_SOCKET: &str = "/var/run/docker.sock";

/// The engine's socket path on this host: `gateways.docker.host`, else `DOCKER_HOST`, else
/// Docker's default (config validation refused non-unix hosts for this use).
fn host_socket(host: Option<&EngineHost>) -> String {
    match EngineHost::resolve(host) {
        EngineHost::Unix(path) => path.display().to_string(),
        EngineHost::Tcp(addr) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn prepared() -> Prepared {
        Prepared {
            hash: "h1".into(),
            catalog_yaml: "registry: {}\n".into(),
            servers: vec!["a".into(), "b".into()],
            images: Vec::new(),
            secrets: Zeroizing::new(String::new()),
        }
    }

    fn image() -> ImageInfo {
        ImageInfo {
            id: "sha256:base".into(),
            entrypoint: vec!["/docker-mcp".into()],
            cmd: vec!["gateway".into(), "run".into()],
            ..Default::default()
        }
    }

    fn spec_of(d: &DockerConfig, policed: Option<(String, String)>) -> ContainerSpec {
        let naming = Naming {
            instance: "t1".into(),
        };
        let (p, img) = (prepared(), image());
        let plan = FilePlan::for_gateway(d, d.user.as_deref());
        gateway_spec(&SpecInput {
            docker: d,
            naming: &naming,
            slug: "alice",
            image: &img,
            derived: "sha256:derived",
            prepared: &p,
            plan: &plan,
            token: "tok",
            memory_bytes: 1 << 20,
            wait: Duration::from_secs(60),
            socket_group: Some("998".into()),
            policed_api: policed,
        })
        .unwrap()
    }

    #[test]
    fn the_token_is_the_last_variable_and_extra_env_cannot_replace_it() {
        let mut d = DockerConfig::default();
        d.extra_env
            .insert(TOKEN_ENV.into(), "attacker-chosen".into());
        d.extra_env
            .insert("DOCKER_HOST".into(), "tcp://evil:2375".into());
        let s = spec_of(
            &d,
            Some((
                "/run/x:/run/docker".into(),
                "DOCKER_HOST=unix:///run/docker/docker.sock".into(),
            )),
        );
        let n = s.env.len();
        assert_eq!(s.env[n - 1], format!("{TOKEN_ENV}=tok"));
        assert_eq!(s.env[n - 2], "DOCKER_HOST=unix:///run/docker/docker.sock");
        assert!(s.binds.contains(&"/run/x:/run/docker".to_string()));
        // The socket is this host's: on Swarm the task stays on this node.
        assert!(s.this_host);
        // Docker takes the last of repeated variables: ours come after the configured ones.
        let last = |key: &str| {
            s.env
                .iter()
                .rev()
                .find(|e| e.starts_with(&format!("{key}=")))
                .cloned()
        };
        assert_eq!(last(TOKEN_ENV).unwrap(), format!("{TOKEN_ENV}=tok"));
        assert_eq!(
            last("DOCKER_HOST").unwrap(),
            "DOCKER_HOST=unix:///run/docker/docker.sock"
        );
    }

    #[test]
    fn made_from_the_derived_image_by_id_hardened_labelled_and_limited() {
        let d = DockerConfig::default();
        let s = spec_of(&d, None);
        assert_eq!(s.name, "mcp-fd-t1-alice");
        assert_eq!(s.network, s.name);
        assert_eq!(s.image, "sha256:derived");
        assert!(s.harden && s.read_only_root);
        assert_eq!(s.labels.get(LABEL_CATALOG_HASH).unwrap(), "h1");
        assert_eq!(
            s.labels.get(super::super::names::LABEL_USER).unwrap(),
            "alice"
        );
        assert_eq!(s.limits.memory_bytes, Some(1 << 20));
        assert_eq!(s.limits.pids, Some(d.pids));
        // Bridge reach by default: nothing published on the host.
        assert!(!s.publish_loopback);
        // Default engine is the policed API: no engine socket, no extra group.
        assert!(s.binds.is_empty() && s.group_add.is_empty());
        assert!(!s.this_host, "no file of this host: any node will do");
    }

    #[test]
    fn the_init_runs_the_templated_gateway_command_after_the_separator() {
        let d = DockerConfig::default();
        let s = spec_of(&d, None);
        assert_eq!(s.entrypoint.as_deref().unwrap(), ["/.mcp-frontdoor/init"]);
        let sep = s.args.iter().position(|a| a == "--").unwrap();
        let argv = &s.args[sep + 1..];
        // The configured args replace the image's command; the image's entrypoint stays.
        assert_eq!(argv[0], "/docker-mcp");
        assert!(argv.contains(&"--servers=a,b".to_string()));
        assert!(argv.contains(&format!("--port={}", d.port)));
        assert!(
            !argv.iter().any(|a| a.contains('{')),
            "untemplated: {argv:?}"
        );
    }

    #[test]
    fn without_args_the_images_command_runs_and_without_any_command_no_spec() {
        let mut d = DockerConfig {
            args: Vec::new(),
            ..DockerConfig::default()
        };
        let s = spec_of(&d, None);
        let sep = s.args.iter().position(|a| a == "--").unwrap();
        assert_eq!(s.args[sep + 1..], ["/docker-mcp", "gateway", "run"]);
        d.command = Vec::new();
        let naming = Naming {
            instance: "default".into(),
        };
        let (p, plan) = (prepared(), FilePlan::for_gateway(&d, None));
        let bare = ImageInfo::default();
        let r = gateway_spec(&SpecInput {
            docker: &d,
            naming: &naming,
            slug: "alice",
            image: &bare,
            derived: "sha256:d",
            prepared: &p,
            plan: &plan,
            token: "t",
            memory_bytes: 1,
            wait: Duration::from_secs(1),
            socket_group: None,
            policed_api: None,
        });
        assert!(matches!(r, Err(SpecError::NoCommand(_))));
    }

    #[test]
    fn the_host_engine_mounts_the_socket_with_its_group_for_a_non_root_gateway() {
        let mut d = DockerConfig {
            engine_for_gateways: Some(GatewayEngine::Host),
            allow_host_engine: true,
            host: Some("unix:///run/e.sock".parse().unwrap()),
            ..DockerConfig::default()
        };
        let root = spec_of(&d, None);
        assert_eq!(root.binds, ["/run/e.sock:/var/run/docker.sock"]);
        assert!(root.group_add.is_empty(), "root needs no group");
        d.user = Some("1000:1000".into());
        let user = spec_of(&d, None);
        assert_eq!(user.group_add, ["998"]);
    }
}
