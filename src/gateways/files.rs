//! What a gateway is given: the merged catalog and rendered secrets as files, where they go
//! inside the container, who owns them, and its bearer token.

use crate::runtime::MemoryDir;
use zeroize::Zeroizing;

/// Room for a catalog at its 5 MB limit plus secrets; tmpfs only uses what is written.
const MEMORY_DIR_BYTES: u64 = 16 << 20;

/// The merged catalog and secrets, rendered for the container.
pub(super) struct Prepared {
    pub hash: String,
    pub catalog_yaml: String,
    /// The servers to enable (`{servers}`), in catalog order.
    pub servers: Vec<String>,
    /// `(server, image)` of every server the gateway runs as a container.
    pub images: Vec<(String, String)>,
    pub secrets: Zeroizing<String>,
}

/// 32 random bytes, hex.
pub(super) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The gateway's `HOME`, which decides where docker/mcp-gateway looks for catalogs
/// (`$HOME/.docker/mcp/catalogs/`): the configured `HOME`, else `/root` for root and
/// `/home/gateway` for anyone else (who may not traverse a 0700 `/root`). Docker makes the
/// directories above a tmpfs mount, so the home need not exist in the image.
pub(super) fn gateway_home(user: Option<&str>, configured: Option<&str>) -> String {
    if let Some(home) = configured.filter(|h| h.starts_with('/')) {
        return home.trim_end_matches('/').to_string();
    }
    if is_root(user) {
        "/root".into()
    } else {
        "/home/gateway".into()
    }
}

/// Whether the gateway runs as root: no user, uid 0 or `root` (group aside).
pub(super) fn is_root(user: Option<&str>) -> bool {
    let name = user
        .filter(|u| !u.is_empty())
        .map(|u| u.split(':').next().unwrap_or(u));
    matches!(name, None | Some("0") | Some("root"))
}

/// The docker CLI config handed to docker/mcp-gateway (through `DOCKER_CONFIG`): its
/// "dynamic tools" (`mcp-add`, `mcp-exec`, `code-mode`, ...) are on by default and would let a
/// user add servers at run time, past the catalog policy, whenever `--servers` is empty.
pub(super) const DOCKER_CLI_CONFIG: &str = r#"{"features":{"dynamic-tools":"disabled"}}"#;

/// Numeric `uid[:gid]` of the gateway user: `(uid, gid, known)`. A user name cannot be
/// resolved from outside the container, so its directories are then open to every user.
fn file_owner(user: Option<&str>) -> (u64, u64, bool) {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return (0, 0, true);
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    match (u.parse::<u64>(), g.map(str::parse::<u64>)) {
        (Ok(uid), None) => (uid, uid, true),
        (Ok(uid), Some(Ok(gid))) => (uid, gid, true),
        _ => (0, 0, false),
    }
}

/// A file for the gateway: absolute path inside the container, contents, mode.
pub(super) struct GatewayFile {
    pub path: String,
    pub contents: Zeroizing<Vec<u8>>,
    pub mode: u32,
}

/// Where the catalog and secrets go: the smallest set of directories, each a tmpfs of the
/// container (so a read-only root file system still takes the files, and they stay in memory),
/// filled by the init (see `init.rs`) before the gateway's own command runs.
/// The owner comes from the gateway's user (see [`file_owner`]) and decides both the
/// directories' ownership and the secrets file's mode.
pub(super) struct FilePlan {
    /// The gateway's `HOME` ([`gateway_home`]), which `{home}` in the paths stood for.
    home: String,
    catalog: String,
    secrets: String,
    /// The docker CLI config (`DOCKER_CONFIG` is its directory), beside the secrets.
    docker_config: String,
    uid: u64,
    gid: u64,
    owner_known: bool,
}

impl FilePlan {
    /// The plan for a gateway of `d` running as `user` (its `uid[:gid]` or user name, `None`
    /// for root): `{home}` in the configured paths resolved.
    pub fn for_gateway(d: &crate::config::DockerConfig, user: Option<&str>) -> Self {
        let home = gateway_home(user, d.extra_env.get("HOME").map(String::as_str));
        let resolve = |p: &str| p.replace(crate::config::HOME_TEMPLATE, &home);
        let mut plan = Self::new(&resolve(&d.catalog_path), &resolve(&d.secrets_path), user);
        plan.home = home;
        plan
    }

    /// `user` is the gateway's `uid[:gid]` or user name, `None` for root.
    pub fn new(catalog: &str, secrets: &str, user: Option<&str>) -> Self {
        let (uid, gid, owner_known) = file_owner(user);
        Self {
            home: gateway_home(user, None),
            catalog: catalog.to_string(),
            docker_config: format!("{}/docker/config.json", Self::parent(secrets)),
            secrets: secrets.to_string(),
            uid,
            gid,
            owner_known,
        }
    }

    /// False for a user name, which cannot be resolved from outside the container.
    pub fn owner_known(&self) -> bool {
        self.owner_known
    }

    /// The gateway's `HOME`.
    pub fn home(&self) -> &str {
        &self.home
    }

    /// Where the catalog goes inside the container (`{catalog}`).
    pub fn catalog_path(&self) -> &str {
        &self.catalog
    }

    /// Where the secrets go inside the container (`{secrets}`).
    pub fn secrets_path(&self) -> &str {
        &self.secrets
    }

    /// `DOCKER_CONFIG` for the gateway: the directory of [`DOCKER_CLI_CONFIG`].
    pub fn docker_config_dir(&self) -> String {
        Self::parent(&self.docker_config)
    }

    fn parent(path: &str) -> String {
        match path.rsplit_once('/') {
            Some(("", _)) | None => "/".into(),
            Some((dir, _)) => dir.to_string(),
        }
    }

    pub fn dirs(&self) -> Vec<String> {
        let mut dirs = vec![Self::parent(&self.catalog), Self::parent(&self.secrets)];
        dirs.sort();
        dirs.dedup();
        let all = dirs.clone();
        dirs.retain(|d| {
            !all.iter()
                .any(|o| o != d && d.starts_with(o.as_str()) && d[o.len()..].starts_with('/'))
        });
        dirs
    }

    /// The directories as tmpfs mounts owned by the gateway user, who writes the files into
    /// them; with an unknown owner they are world-writable with the sticky bit (see
    /// [`file_owner`]).
    pub fn memory_dirs(&self) -> Vec<MemoryDir> {
        self.dirs()
            .into_iter()
            .map(|path| MemoryDir {
                path,
                uid: self.uid,
                gid: self.gid,
                mode: if self.owner_known { 0o700 } else { 0o1777 },
                size_bytes: MEMORY_DIR_BYTES,
            })
            .collect()
    }

    /// The catalog (readable by all) and the secrets (the owner's only, when it is known).
    pub fn files(&self, p: &Prepared) -> Vec<GatewayFile> {
        vec![
            GatewayFile {
                path: self.catalog.clone(),
                contents: Zeroizing::new(p.catalog_yaml.as_bytes().to_vec()),
                mode: 0o444,
            },
            GatewayFile {
                path: self.secrets.clone(),
                contents: Zeroizing::new(p.secrets.as_bytes().to_vec()),
                mode: if self.owner_known { 0o400 } else { 0o444 },
            },
            GatewayFile {
                path: self.docker_config.clone(),
                contents: Zeroizing::new(DOCKER_CLI_CONFIG.as_bytes().to_vec()),
                mode: 0o444,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_share_the_smallest_set_of_directories() {
        let plan = FilePlan::new(
            "/root/.docker/mcp/catalogs/frontdoor.yaml",
            "/root/.docker/mcp/secrets.env",
            Some("65532"),
        );
        assert_eq!(plan.dirs(), ["/root/.docker/mcp"]);
        let p = Prepared {
            hash: "h".into(),
            catalog_yaml: "registry: {}\n".into(),
            servers: Vec::new(),
            images: Vec::new(),
            secrets: Zeroizing::new("a.b=c\n".into()),
        };
        let files: Vec<_> = plan
            .files(&p)
            .into_iter()
            .map(|f| (f.path, f.mode, f.contents.len()))
            .collect();
        assert_eq!(
            files,
            [
                (
                    "/root/.docker/mcp/catalogs/frontdoor.yaml".into(),
                    0o444,
                    13
                ),
                ("/root/.docker/mcp/secrets.env".into(), 0o400, 6),
                (
                    "/root/.docker/mcp/docker/config.json".into(),
                    0o444,
                    DOCKER_CLI_CONFIG.len()
                ),
            ]
        );
        assert_eq!(plan.docker_config_dir(), "/root/.docker/mcp/docker");
        let two = FilePlan::new("/a/cat.yaml", "/run/s/secrets", Some("7:8"));
        assert_eq!(two.dirs(), ["/a", "/run/s"]);
        let dirs = two.memory_dirs();
        assert_eq!((dirs[0].uid, dirs[0].gid, dirs[0].mode), (7, 8, 0o700));
        // A user name: open directories, a secrets file readable by all.
        let named = FilePlan::new("/a/cat.yaml", "/run/s/secrets", Some("nobody"));
        assert!(!named.owner_known());
        assert_eq!(named.memory_dirs()[1].mode, 0o1777);
        assert_eq!(named.files(&p)[1].mode, 0o444);
        // `/ab` is not inside `/a`.
        assert_eq!(FilePlan::new("/a/x", "/ab/y", None).dirs(), ["/a", "/ab"]);
    }

    #[test]
    fn home_follows_the_gateway_user() {
        assert_eq!(gateway_home(None, None), "/root");
        assert_eq!(gateway_home(Some("0:0"), None), "/root");
        assert_eq!(gateway_home(Some("root"), None), "/root");
        assert_eq!(gateway_home(Some("65532:65532"), None), "/home/gateway");
        assert_eq!(gateway_home(Some("nobody"), None), "/home/gateway");
        assert_eq!(gateway_home(Some("1000"), Some("/srv/gw/")), "/srv/gw");
        // The docker CLI config turns docker/mcp-gateway's dynamic tools off.
        let v: serde_json::Value = serde_json::from_str(DOCKER_CLI_CONFIG).unwrap();
        assert_eq!(v["features"]["dynamic-tools"], "disabled");
    }

    #[test]
    fn owners_parse_numeric_users_only() {
        assert_eq!(file_owner(None), (0, 0, true));
        assert_eq!(file_owner(Some("65532:65532")), (65532, 65532, true));
        assert_eq!(file_owner(Some("1000")), (1000, 1000, true));
        assert_eq!(file_owner(Some("nobody")), (0, 0, false));
    }

    #[test]
    fn tokens_are_long_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
