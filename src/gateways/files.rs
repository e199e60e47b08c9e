//! What a gateway is given: the merged catalog and rendered secrets as files, where they go
//! inside the container, who owns them, and its bearer token.

use super::init::MARKER;
use crate::runtime::{FileSpec, MemoryDir};
use zeroize::Zeroizing;

/// Room for a catalog at its 5 MB limit plus secrets; tmpfs only uses what is written.
const MEMORY_DIR_BYTES: u64 = 16 << 20;

/// The merged catalog and secrets, rendered for the container.
pub(super) struct Prepared {
    pub hash: String,
    pub catalog_yaml: String,
    pub servers: String,
    pub secrets: Zeroizing<String>,
}

/// 32 random bytes, hex.
pub(super) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Numeric `uid[:gid]` of the gateway user: `(uid, gid, known)`. A user name cannot be
/// resolved from outside the container, so files then belong to root and are world-readable.
pub(super) fn file_owner(user: Option<&str>) -> (u64, u64, bool) {
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

/// Where the catalog and secrets go: the smallest set of directories, each a tmpfs volume of
/// the container (so a read-only root file system still takes the files, and they stay in
/// memory), and the marker written after them (see `init.rs`).
pub(super) struct FilePlan {
    catalog: String,
    secrets: String,
}

impl FilePlan {
    pub fn new(catalog: &str, secrets: &str) -> Self {
        Self {
            catalog: catalog.to_string(),
            secrets: secrets.to_string(),
        }
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

    /// The directories as tmpfs volumes owned by the gateway user; with an unknown owner they
    /// belong to root and are world-readable (see [`file_owner`]).
    pub fn memory_dirs(&self, uid: u64, gid: u64, owner_known: bool) -> Vec<MemoryDir> {
        self.dirs()
            .into_iter()
            .map(|path| MemoryDir {
                path,
                uid,
                gid,
                mode: if owner_known { 0o700 } else { 0o755 },
                size_bytes: MEMORY_DIR_BYTES,
            })
            .collect()
    }

    /// Where the marker lands: in the directory uploaded last, after its files.
    pub fn marker(&self) -> String {
        let dirs = self.dirs();
        let last = dirs.last().map_or("", String::as_str);
        format!("{}/{MARKER}", last.trim_end_matches('/'))
    }

    /// Files per directory, in upload order; the last list ends with the marker.
    pub fn files(
        &self,
        p: &Prepared,
        uid: u64,
        gid: u64,
        secret_mode: u32,
    ) -> Vec<(String, Vec<FileSpec>)> {
        let dirs = self.dirs();
        let mut out: Vec<(String, Vec<FileSpec>)> =
            dirs.iter().map(|d| (d.clone(), Vec::new())).collect();
        for (path, contents, mode) in [
            (
                &self.catalog,
                Zeroizing::new(p.catalog_yaml.as_bytes().to_vec()),
                0o444,
            ),
            (
                &self.secrets,
                Zeroizing::new(p.secrets.as_bytes().to_vec()),
                secret_mode,
            ),
        ] {
            let Some((dir, list)) = out
                .iter_mut()
                .find(|(d, _)| path.starts_with(d.as_str()) && path[d.len()..].starts_with('/'))
            else {
                continue;
            };
            list.push(FileSpec {
                path: path[dir.len() + 1..].to_string(),
                contents,
                mode,
                uid,
                gid,
            });
        }
        if let Some((_, last)) = out.last_mut() {
            last.push(FileSpec {
                path: MARKER.into(),
                contents: Zeroizing::new(Vec::new()),
                mode: 0o444,
                uid,
                gid,
            });
        }
        out
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
        );
        assert_eq!(plan.dirs(), ["/root/.docker/mcp"]);
        let p = Prepared {
            hash: "h".into(),
            catalog_yaml: "registry: {}\n".into(),
            servers: String::new(),
            secrets: Zeroizing::new("a.b=c\n".into()),
        };
        let files = plan.files(&p, 65532, 65532, 0o400);
        assert_eq!(files.len(), 1);
        let names: Vec<_> = files[0]
            .1
            .iter()
            .map(|f| (f.path.as_str(), f.mode))
            .collect();
        assert_eq!(
            names,
            [
                ("catalogs/frontdoor.yaml", 0o444),
                ("secrets.env", 0o400),
                (".mcp-frontdoor-ready", 0o444)
            ]
        );
        assert_eq!(plan.marker(), "/root/.docker/mcp/.mcp-frontdoor-ready");
        let two = FilePlan::new("/a/cat.yaml", "/run/s/secrets");
        assert_eq!(two.dirs(), ["/a", "/run/s"]);
        // The marker follows the secrets in the last directory uploaded.
        let files = two.files(&p, 1, 1, 0o400);
        assert_eq!(files[1].1.last().unwrap().path, ".mcp-frontdoor-ready");
        assert_eq!(two.marker(), "/run/s/.mcp-frontdoor-ready");
        let dirs = two.memory_dirs(7, 8, true);
        assert_eq!((dirs[0].uid, dirs[0].gid, dirs[0].mode), (7, 8, 0o700));
        assert_eq!(two.memory_dirs(0, 0, false)[1].mode, 0o755);
        // `/ab` is not inside `/a`.
        assert_eq!(FilePlan::new("/a/x", "/ab/y").dirs(), ["/a", "/ab"]);
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
