//! The gateway init (`init/src/main.rs`): why every gateway's command is wrapped, and how the
//! static binary reaches the containers.
//!
//! The catalog and secrets go into tmpfs mounts, which only a process in the running container
//! can fill, and gateways read their files once, at start. So the init is the entrypoint: it
//! listens on the gateway's port, takes the files from the front door ([`super::deliver`]),
//! writes them and `exec`s the real command. The binary is compiled by `build.rs`, carried
//! inside the front door, and put once per process into a named volume (name: instance and
//! content hash) mounted read-only into every gateway.

use super::lifecycle::Inner;
use super::names::TOKEN_ENV;
use crate::runtime::{ContainerSpec, FileSpec, NamedVolume, RuntimeError};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;
use zeroize::Zeroizing;

const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mcp-frontdoor-init"));
/// Where the init volume is mounted in a gateway.
const DIR: &str = "/.mcp-frontdoor";
const FILE: &str = "init";

/// `mcp-fd-init-<first 12 hex digits of the binary's sha256>` (`mcp-fd-<instance>-init-...`
/// for other instances), labelled like the instance's other objects: a new front door build
/// gets a new volume, and each instance owns its own, so removing it never pulls the init
/// from under another deployment.
pub(super) fn volume_name(instance: &str) -> String {
    static HASH: OnceLock<String> = OnceLock::new();
    let hash = HASH.get_or_init(|| {
        let digest = Sha256::digest(BINARY);
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    });
    if instance == "default" {
        format!("mcp-fd-init-{hash}")
    } else {
        format!("mcp-fd-{instance}-init-{hash}")
    }
}

/// The volume as a gateway mounts it.
pub(super) fn mount(volume: &str, labels: HashMap<String, String>) -> NamedVolume {
    NamedVolume {
        name: volume.to_string(),
        labels,
        target: DIR.into(),
        read_only: true,
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

impl Inner {
    /// Makes sure the init volume holds the binary, once per process (concurrent starts share
    /// the fill). Docker fills a volume only through a container, so a helper container of the
    /// gateway image is created (never started), given the file, and removed.
    pub(super) async fn init_volume_ready(&self) -> Result<(), RuntimeError> {
        if self.init_filled.load(Ordering::Acquire) {
            return Ok(());
        }
        let _one = self.init_fill.lock().await;
        if !self.init_filled.load(Ordering::Acquire) {
            self.fill_init_volume().await?;
            self.init_filled.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Whether a start failed because the init was missing from its volume; if so the next
    /// [`Self::init_volume_ready`] fills it again.
    pub(super) fn init_missing(&self, e: &RuntimeError) -> bool {
        let missing = e.message.contains(DIR);
        if missing {
            tracing::warn!(volume = %self.init_volume, "gateway init missing; filling its volume again");
            self.init_filled.store(false, Ordering::Release);
        }
        missing
    }

    async fn fill_init_volume(&self) -> Result<(), RuntimeError> {
        let suffix: u32 = rand::random();
        let name = format!("{}-fill-{suffix:08x}", self.init_volume);
        // Managed and instance labels but no user: a reconcile removes it if this process dies
        // mid-fill.
        let labels = self.naming.instance_labels();
        let spec = ContainerSpec {
            name: name.clone(),
            image: self.cfg.docker.image.clone(),
            entrypoint: Some(vec![format!("{DIR}/{FILE}")]),
            labels,
            network: "none".into(),
            volumes: vec![NamedVolume {
                read_only: false,
                ..mount(&self.init_volume, self.naming.instance_labels())
            }],
            harden: true,
            ..Default::default()
        };
        let id = self.rt.create_container(&spec).await?;
        let file = FileSpec {
            path: FILE.into(),
            contents: Zeroizing::new(BINARY.to_vec()),
            mode: 0o555,
            uid: 0,
            gid: 0,
        };
        let put = self.rt.put_files(&id, DIR, &[file]).await;
        let removed = self.rt.remove_container(&id, Duration::ZERO).await;
        put?;
        removed?;
        tracing::info!(volume = %self.init_volume, bytes = BINARY.len(), "gateway init volume ready");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_init_is_a_static_elf_binary() {
        assert!(BINARY.starts_with(b"\x7fELF"));
        // No program interpreter: it must run in FROM scratch images.
        assert!(!BINARY.windows(15).any(|w| w == b"/lib64/ld-linux"));
        let name = volume_name("default");
        assert!(name.starts_with("mcp-fd-init-"));
        assert_eq!(name.len(), "mcp-fd-init-".len() + 12);
        assert_eq!(volume_name("t1"), name.replace("mcp-fd-", "mcp-fd-t1-"));
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
