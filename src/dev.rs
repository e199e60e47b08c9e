//! `serve --dev`: the quickest real start. A self-signed certificate, a JWT secret and a
//! master key are made once in `<data_dir>/dev/` (so a restart keeps tokens valid), and a token
//! plus MCP client config snippets are printed.
//!
//! Every `--dev` command (`serve`, `token`, `secrets rotate`, `audit verify`) finds the same
//! data dir from any working directory: the one named (`--data-dir`, `FRONTDOOR_DATA_DIR`, or
//! `data_dir` in a `--config` file), made absolute, else one fixed place per user
//! ([`default_data_dir`]). Only `serve --dev` makes keys; the others refuse, naming the path
//! they looked at, rather than make a secret no server uses.

use crate::auth::mint::{mint_hs256, TokenRequest};
use crate::config::{Config, RawConfig, TlsConfig};
use crate::fsutil::write_atomic;
use anyhow::Context;
use base64::Engine;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A ready dev config and what to print.
pub struct DevSetup {
    pub config: Config,
    pub token: String,
    pub banner: String,
}

const DEV_ISSUER: &str = "mcp-frontdoor-dev";
const DEV_AUDIENCE: &str = "mcp-frontdoor";

/// Whether a dev command may make the dev keys it does not find (only `serve --dev` may).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    Create,
    Existing,
}

/// Where `--dev` keeps its data when nothing names a data dir: `$XDG_STATE_HOME/mcp-frontdoor`,
/// else `$HOME/.local/state/mcp-frontdoor`. Absolute, so it does not depend on where a command
/// runs.
pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|h| h.join(".local/state")))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "neither XDG_STATE_HOME nor HOME is set to an absolute path: pass --data-dir"
            )
        })?;
    Ok(base.join("mcp-frontdoor"))
}

/// Sets the data dir of a `--dev` command: `flag`, else what the config or environment named
/// (`named`), made absolute; else [`default_data_dir`].
pub fn locate_data_dir(
    raw: &mut RawConfig,
    flag: Option<PathBuf>,
    named: bool,
) -> anyhow::Result<()> {
    let dir = match flag {
        Some(d) => d,
        None if named => raw.data_dir.clone(),
        None => default_data_dir()?,
    };
    raw.data_dir =
        std::path::absolute(&dir).with_context(|| format!("data dir {}", dir.display()))?;
    Ok(())
}

/// Why a dev key is missing, naming where the command looked and what makes it.
fn missing_dev_key(path: &Path, data_dir: &Path) -> anyhow::Error {
    let mut msg = format!(
        "no dev key at {}: `mcp-frontdoor serve --dev` makes it at its first start. A dev \
         server that keeps its data elsewhere is reached with the same --data-dir \
         (or FRONTDOOR_DATA_DIR); nothing was created",
        path.display()
    );
    // Releases before the fixed place kept dev data under ./data of the working directory.
    let old = Path::new("data/dev").join(path.file_name().unwrap_or_default());
    if old.is_file() && !data_dir.ends_with("data") {
        msg.push_str(&format!(
            ". An earlier dev data dir is here: --data-dir {}",
            std::path::absolute("data")
                .unwrap_or_else(|_| "data".into())
                .display()
        ));
    }
    anyhow::anyhow!(msg)
}

/// The dev directory inside `data_dir`.
pub fn dev_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dev")
}

/// Creates the dev directory readable by its owner only: it holds keys.
fn private_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dev_dir(data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    Ok(dir)
}

/// Reads or creates a random base64 secret of `len` bytes in `path` (0600).
pub fn ensure_secret(path: &Path, len: usize) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        return Ok(s.trim().to_string());
    }
    let mut bytes = vec![0u8; len];
    rand::Rng::fill(&mut rand::rng(), bytes.as_mut_slice());
    let s = base64::engine::general_purpose::STANDARD.encode(bytes);
    write_atomic(path, s.as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(s)
}

/// Fills in what a dev start needs, keeping anything the config already sets. Call
/// [`locate_data_dir`] first.
pub fn prepare(mut raw: RawConfig) -> anyhow::Result<DevSetup> {
    // What `token --dev` needs to be told to find this data dir (nothing for the default).
    let data_dir_arg = match default_data_dir() {
        Ok(d) if d == raw.data_dir => String::new(),
        _ => format!(" --data-dir {}", raw.data_dir.display()),
    };
    if data_dir_arg.is_empty()
        && !dev_dir(&raw.data_dir).is_dir()
        && Path::new("data/dev/jwt.secret").is_file()
    {
        tracing::warn!(
            "./data/dev holds the dev keys of an earlier release; dev data now lives in {} (pass --data-dir data to keep using the old one)",
            raw.data_dir.display()
        );
    }
    let dir = private_dir(&raw.data_dir)?;
    if raw.server.tls.is_none() {
        let tls_dir = dir.join("tls");
        let (cert, key) = (tls_dir.join("cert.pem"), tls_dir.join("key.pem"));
        if !cert.is_file() || !key.is_file() {
            crate::server::tls::generate_self_signed(
                &tls_dir,
                &["localhost".into(), "127.0.0.1".into()],
            )
            .map_err(|e| anyhow::anyhow!("generating the dev certificate: {e}"))?;
        }
        raw.server.tls = Some(TlsConfig {
            cert,
            key,
            reload_interval: crate::config::units::HumanDuration::secs(10),
        });
    }
    apply_dev_auth(&mut raw, Keys::Create)?;
    if raw.secrets.master_key_env.is_none() && raw.secrets.master_key_file.is_none() {
        let path = dir.join("master.key");
        ensure_secret(&path, 32)?;
        raw.secrets.master_key_file = Some(path);
    }
    let config = Config::from_raw(raw)?;
    let secret = dev_secret(&config)?;
    let token = mint_hs256(
        secret.as_bytes(),
        &config.auth,
        &TokenRequest {
            sub: "dev".into(),
            roles: vec![config.auth.admin_role.clone()],
            teams: vec![],
            ttl: Duration::from_secs(12 * 3600),
        },
    )?;
    let banner = banner(&config, &token, &data_dir_arg);
    Ok(DevSetup {
        config,
        token,
        banner,
    })
}

/// Without any configured key source, uses the dev HS256 secret (made once, by `serve --dev`:
/// `keys`) and the dev issuer and audience; `serve --dev` and `token --dev` agree through this
/// one function.
pub fn apply_dev_auth(raw: &mut RawConfig, keys: Keys) -> anyhow::Result<()> {
    let a = &mut raw.auth;
    let has_keys = a.hs256_secret_env.is_some()
        || a.hs256_secret_file.is_some()
        || !a.public_key_files.is_empty()
        || a.jwks_url.is_some()
        || a.jwks_file.is_some();
    if has_keys {
        return Ok(());
    }
    let path = match keys {
        Keys::Create => {
            let path = private_dir(&raw.data_dir)?.join("jwt.secret");
            ensure_secret(&path, 48)?;
            path
        }
        Keys::Existing => {
            let path = dev_dir(&raw.data_dir).join("jwt.secret");
            if !path.is_file() {
                return Err(missing_dev_key(&path, &raw.data_dir));
            }
            path
        }
    };
    a.hs256_secret_file = Some(path);
    a.issuer.get_or_insert_with(|| DEV_ISSUER.into());
    if a.audience.is_empty() {
        a.audience.push(DEV_AUDIENCE.into());
    }
    Ok(())
}

/// Without a configured master key, the dev one (`secrets rotate --dev`); never made here.
pub fn apply_dev_master_key(raw: &mut RawConfig) -> anyhow::Result<()> {
    if raw.secrets.master_key_env.is_some() || raw.secrets.master_key_file.is_some() {
        return Ok(());
    }
    let path = dev_dir(&raw.data_dir).join("master.key");
    if !path.is_file() {
        return Err(missing_dev_key(&path, &raw.data_dir));
    }
    raw.secrets.master_key_file = Some(path);
    Ok(())
}

/// The HS256 secret a config verifies with, for minting dev tokens.
pub fn dev_secret(config: &RawConfig) -> anyhow::Result<String> {
    if let Some(var) = &config.auth.hs256_secret_env {
        return std::env::var(var).with_context(|| format!("{var} is not set"));
    }
    let path = config
        .auth
        .hs256_secret_file
        .clone()
        .unwrap_or_else(|| dev_dir(&config.data_dir).join("jwt.secret"));
    Ok(std::fs::read_to_string(&path)
        .with_context(|| {
            format!(
                "no HS256 secret: set auth.hs256_secret_env or auth.hs256_secret_file, or run `serve --dev` once ({} missing)",
                path.display()
            )
        })?
        .trim()
        .to_string())
}

fn banner(config: &Config, token: &str, data_dir_arg: &str) -> String {
    let url = format!("{}/mcp", config.public_url());
    let vscode = serde_json::json!({
        "servers": { "frontdoor": { "type": "http", "url": url,
            "headers": { "Authorization": format!("Bearer {token}") } } }
    });
    let claude = serde_json::json!({
        "mcpServers": { "frontdoor": { "type": "http", "url": url,
            "headers": { "Authorization": format!("Bearer {token}") } } }
    });
    let cert = config
        .server
        .tls
        .as_ref()
        .map(|t| t.cert.display().to_string())
        .unwrap_or_default();
    format!(
        "mcp-frontdoor dev mode\n\
         URL:   {url}\n\
         Data:  {data}\n\
         Token (user `dev`, admin, 12h):\n{token}\n\n\
         VS Code (.vscode/mcp.json):\n{}\n\n\
         Claude Code / Cursor (mcp.json):\n{}\n\n\
         The certificate is self-signed ({cert}); trust it in your client, e.g.\n\
         NODE_EXTRA_CA_CERTS={cert} or SSL_CERT_FILE={cert}.\n\
         More tokens: mcp-frontdoor token --dev{data_dir_arg} --sub alice --team ml\n",
        serde_json::to_string_pretty(&vscode).unwrap_or_default(),
        serde_json::to_string_pretty(&claude).unwrap_or_default(),
        data = config.data_dir.display(),
    )
}
