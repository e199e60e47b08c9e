//! The gateway init (`init/src/main.rs`): why every gateway's command is wrapped, and how the
//! static binary reaches the containers.
//!
//! The catalog and secrets go into tmpfs mounts, which only a process in the running container
//! can fill, and gateways read their files once, at start. So the init is the entrypoint: it
//! listens on the gateway's port, takes the files from the front door ([`super::deliver`]),
//! writes them and `exec`s the real command. The binary is compiled by `build.rs` and carried
//! inside the front door.
//!
//! It reaches gateways as a layer of its own on top of the gateway image (the derived image
//! `mcp-fd[-<instance>]-gateway:<init hash>`), made once per process and gateway image, and
//! every gateway is created from that image *by id*. Not a named volume, as it once was: a
//! volume is a shared, writable object that any container naming it may mount read-write, and
//! a tenant's catalog server did exactly that to replace the init other users' gateways ran as
//! PID 1. An image layer is written by no container, and an image id is the digest of the
//! image's content, so the id checked before each start cannot come to mean other bytes; a
//! tag (which anyone with the engine can move) is never what a gateway is created from.

use super::names::{Naming, LABEL_INIT_HELPER, LABEL_INIT_IMAGE, TOKEN_ENV};
use crate::runtime::{ContainerSpec, FileSpec, ImageInfo, Runtime, RuntimeError};
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use std::time::Duration;
use zeroize::Zeroizing;

const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mcp-frontdoor-init"));
/// Where the init lives in a gateway's file system.
const DIR: &str = "/.mcp-frontdoor";
const FILE: &str = "init";

/// The first 12 hex digits of the embedded binary's sha256: part of the derived image's tag
/// and label, so a new front door build makes a new image.
pub(super) fn init_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let digest = Sha256::digest(BINARY);
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// Repository of the derived image: `mcp-fd-gateway` (`mcp-fd-<instance>-gateway` for other
/// instances), tagged with [`init_hash`].
pub(super) fn image_repo(naming: &Naming) -> String {
    naming.object_name("gateway")
}

/// The derived image made in this process, for one gateway image.
struct Derived {
    /// Id of the gateway image it was made from: a new gateway image needs a new one.
    base: String,
    id: String,
}

/// The gateway image with the init added; see the module doc for why.
pub(super) struct InitImage {
    naming: Naming,
    made: tokio::sync::Mutex<Option<Derived>>,
    /// Random per process, on this process's helper containers (label
    /// [`LABEL_INIT_HELPER`]): the reconcile removes helpers of dead processes, not ours.
    process: String,
}

impl InitImage {
    pub(super) fn new(naming: Naming) -> Self {
        let process: u64 = rand::random();
        Self {
            naming,
            made: tokio::sync::Mutex::new(None),
            process: format!("{process:016x}"),
        }
    }

    /// Whether a container is a helper this process is making an image from right now.
    pub(super) fn is_own_helper(&self, labels: &std::collections::HashMap<String, String>) -> bool {
        labels.get(LABEL_INIT_HELPER) == Some(&self.process)
    }

    /// The id to create a gateway from: the derived image of `base`, checked on the engine
    /// before every start and made again when it is gone (removed, pruned) or `base` changed.
    /// Concurrent starts share one making.
    pub(super) async fn ready(
        &self,
        rt: &dyn Runtime,
        base: &ImageInfo,
    ) -> Result<String, RuntimeError> {
        let mut made = self.made.lock().await;
        if let Some(d) = made.as_ref().filter(|d| d.base == base.id) {
            match rt.image(&d.id).await? {
                // Same id, same bytes: the init in it is the one this process put there.
                Some(info)
                    if info.labels.get(LABEL_INIT_IMAGE).map(String::as_str)
                        == Some(init_hash()) =>
                {
                    return Ok(d.id.clone())
                }
                Some(_) => {
                    tracing::warn!(image = %d.id, "gateway init image lost its label; making it again")
                }
                None => {
                    tracing::warn!(image = %d.id, "gateway init image was removed; making it again")
                }
            }
        }
        let id = self.make(rt, base).await?;
        *made = Some(Derived {
            base: base.id.clone(),
            id: id.clone(),
        });
        Ok(id)
    }

    /// A helper container of the gateway image (never started) gets the init, is committed
    /// as the derived image and removed; older derived images of this instance go too
    /// (those still used by adopted gateways stay until their containers are gone).
    async fn make(&self, rt: &dyn Runtime, base: &ImageInfo) -> Result<String, RuntimeError> {
        let suffix: u32 = rand::random();
        let helper = self.naming.object_name(&format!("init-{suffix:08x}"));
        // Managed and instance labels but no user: a reconcile removes the helper if this
        // process dies mid-way. The image inherits them, which is how old ones are found.
        let mut labels = self.naming.instance_labels();
        labels.insert(LABEL_INIT_IMAGE.into(), init_hash().into());
        labels.insert(LABEL_INIT_HELPER.into(), self.process.clone());
        let spec = ContainerSpec {
            name: helper.clone(),
            image: base.id.clone(),
            labels,
            network: "none".into(),
            ..Default::default()
        };
        let container = rt.create_container(&spec).await?;
        let file = FileSpec {
            path: format!("{}/{FILE}", DIR.trim_start_matches('/')),
            contents: Zeroizing::new(BINARY.to_vec()),
            mode: 0o555,
            uid: 0,
            gid: 0,
        };
        let committed = async {
            rt.put_files(&container, "/", &[file]).await?;
            rt.commit(&container, &image_repo(&self.naming), init_hash())
                .await
        }
        .await;
        let removed = rt.remove_container(&container, Duration::ZERO).await;
        let id = committed?;
        removed?;
        tracing::info!(image = %id, bytes = BINARY.len(), "gateway init image ready");
        // Only derived images carry an instance's labels (they inherit them from the helper,
        // with its maker's process id). Those of this build made by another process stay: a
        // replica beside this one may be about to create a gateway from its own (README:
        // Replicas); `gateways stop-all` removes them.
        for old in rt
            .list_images(&self.naming.filter())
            .await
            .unwrap_or_default()
        {
            if old == id || old == base.id {
                continue;
            }
            let peers = match rt.image(&old).await {
                Ok(Some(info)) => {
                    info.labels.get(LABEL_INIT_IMAGE).map(String::as_str) == Some(init_hash())
                        && info.labels.get(LABEL_INIT_HELPER) != Some(&self.process)
                }
                _ => false,
            };
            if !peers {
                let _ = rt.remove_image(&old).await;
            }
        }
        Ok(id)
    }
}

/// Entrypoint and command of a gateway: the init, told which port to take the files on, the
/// variable holding the token that authenticates them, and how long to wait; then the
/// gateway's own command line after `--`.
pub(super) fn wrap(port: u16, wait: Duration, argv: &[String]) -> (Vec<String>, Vec<String>) {
    let mut cmd = vec![
        port.to_string(),
        TOKEN_ENV.to_string(),
        wait.as_millis().to_string(),
        "--".to_string(),
    ];
    cmd.extend(argv.iter().cloned());
    (vec![format!("{DIR}/{FILE}")], cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_init_is_a_static_elf_binary() {
        assert!(BINARY.starts_with(b"\x7fELF"));
        // No program interpreter: it must run in FROM scratch images.
        assert!(!BINARY.windows(15).any(|w| w == b"/lib64/ld-linux"));
        assert_eq!(init_hash().len(), 12);
        let named = |instance: &str| {
            image_repo(&Naming {
                instance: instance.into(),
            })
        };
        assert_eq!(named("default"), "mcp-fd-gateway");
        assert_eq!(named("t1"), "mcp-fd-t1-gateway");
    }

    #[test]
    fn wrap_puts_the_gateway_command_after_the_separator() {
        let argv = vec!["/docker-mcp".to_string(), "gateway".into(), "--".into()];
        let (ep, cmd) = wrap(8811, Duration::from_secs(2), &argv);
        assert_eq!(ep, ["/.mcp-frontdoor/init"]);
        assert_eq!(
            cmd,
            [
                "8811",
                "MCP_GATEWAY_AUTH_TOKEN",
                "2000",
                "--",
                "/docker-mcp",
                "gateway",
                "--"
            ]
        );
    }
}
