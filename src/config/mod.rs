//! Config: YAML file → environment overrides → typed structs → `validate()` → [`Config`].
//!
//! Overrides use `FRONTDOOR_<SECTION>__<KEY>` (nested keys joined by `__`; the one top-level
//! scalar, `data_dir`, as `FRONTDOOR_DATA_DIR`); the value is read as a YAML scalar or flow
//! sequence. Other `FRONTDOOR_*` variables without `__` are not overrides: they are free for
//! secrets the config names (`hs256_secret_env: FRONTDOOR_JWT_SECRET`).

mod engine_host;
mod model;
mod own_container;
mod subnet;
pub mod units;
mod upstream_url;
mod validate;

pub use engine_host::EngineHost;
pub use model::*;
pub use own_container::OwnContainer;
use serde_json::Value;
use std::ops::Deref;
use std::path::{Path, PathBuf};
pub use subnet::Subnet;
pub use upstream_url::UpstreamUrl;

/// The default config location, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/frontdoor.yaml";
const ENV_PREFIX: &str = "FRONTDOOR_";

/// Why a config could not be used; each message names the file or key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {message}")]
    Syntax { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("config is invalid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

/// A config that passed validation; only [`Config::load`] and [`Config::from_yaml`] make one.
#[derive(Debug, Clone)]
pub struct Config {
    raw: RawConfig,
    public_url: String,
}

impl Deref for Config {
    type Target = RawConfig;
    fn deref(&self) -> &RawConfig {
        &self.raw
    }
}

impl Config {
    /// Loads `path` (or defaults when `path` is None), applies `FRONTDOOR_*` from `env`, validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::from_raw(Self::load_raw(path, env)?)
    }

    /// Loads like [`Config::load`] but without validation (for commands that need only a
    /// part of the config, and for `--dev`, which fills in what is missing).
    pub fn load_raw(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<RawConfig, ConfigError> {
        let (text, origin) = match path {
            Some(p) => (
                std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?,
                p.display().to_string(),
            ),
            None => (String::new(), "<defaults>".to_string()),
        };
        let mut tree = parse_tree(&text, &origin)?;
        apply_env(&mut tree, env)?;
        deserialize(tree)
    }

    /// Whether the file at `path` or the environment (`FRONTDOOR_DATA_DIR`) names `data_dir`;
    /// dev commands use their own default data dir otherwise.
    pub fn names_data_dir(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<bool, ConfigError> {
        if env.into_iter().any(|(k, _)| k == "FRONTDOOR_DATA_DIR") {
            return Ok(true);
        }
        let Some(p) = path else { return Ok(false) };
        let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.to_path_buf(),
            source,
        })?;
        let tree = parse_tree(&text, &p.display().to_string())?;
        Ok(tree.get("data_dir").is_some())
    }

    /// Parses and validates a YAML document (tests and `--dev` build configs this way).
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::from_tree(parse_tree(text, "<inline>")?)
    }

    /// Validates a raw config built in code.
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let public_url = validate::validate(&raw)?;
        Ok(Self { raw, public_url })
    }

    fn from_tree(tree: Value) -> Result<Self, ConfigError> {
        Self::from_raw(deserialize(tree)?)
    }

    /// The externally visible base URL, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The raw structs, to derive a changed config (as `--dev` does).
    pub fn to_raw(&self) -> RawConfig {
        self.raw.clone()
    }
}

fn deserialize(tree: Value) -> Result<RawConfig, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Key {
            key: if key == "." {
                "(top level)".into()
            } else {
                key
            },
            message: e.into_inner().to_string(),
        }
    })
}

fn parse_tree(text: &str, origin: &str) -> Result<Value, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let v: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax {
        path: origin.to_string(),
        message: e.to_string(),
    })?;
    match v {
        Value::Null => Ok(Value::Object(Default::default())),
        Value::Object(_) => Ok(v),
        _ => Err(ConfigError::Syntax {
            path: origin.to_string(),
            message: "the top level must be a mapping of sections".into(),
        }),
    }
}

fn apply_env(
    tree: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<_> = env.into_iter().filter(|(k, _)| is_override(k)).collect();
    vars.sort(); // deterministic when two variables touch the same section
    for (var, raw_value) in vars {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var,
                message: "empty key segment (use FRONTDOOR_<SECTION>__<KEY>)".into(),
            });
        }
        let value: Value = if raw_value.trim().is_empty() {
            Value::String(String::new())
        } else {
            serde_saphyr::from_str(&raw_value).map_err(|e| ConfigError::Env {
                var: var.clone(),
                message: format!("value is not a YAML scalar or list: {e}"),
            })?
        };
        set_path(tree, &path, value).map_err(|message| ConfigError::Env { var, message })?;
    }
    Ok(())
}

/// `FRONTDOOR_<SECTION>__<KEY>...` or `FRONTDOOR_DATA_DIR`.
fn is_override(var: &str) -> bool {
    var.strip_prefix(ENV_PREFIX)
        .is_some_and(|rest| rest.contains("__") || rest == "DATA_DIR")
}

fn set_path(tree: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let mut node = tree;
    for (i, seg) in path.iter().enumerate() {
        if node.is_null() {
            *node = Value::Object(Default::default());
        }
        let map = match node {
            Value::Object(m) => m,
            _ => return Err(format!("`{}` is not a section", path[..i].join("."))),
        };
        if i + 1 == path.len() {
            map.insert(seg.clone(), value);
            return Ok(());
        }
        node = map.entry(seg.clone()).or_insert(Value::Null);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config file holding [`MINIMAL`] (the directory lives as long as the guard).
    fn minimal_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, MINIMAL).unwrap();
        (dir, p)
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const MINIMAL: &str = "auth: { hs256_secret_env: JWT_SECRET, issuer: me, audience: [mcp] }\n";

    #[test]
    fn sizes_and_subnets_are_read_into_types_at_load() {
        let c = Config::from_yaml(&format!(
            "{MINIMAL}gateways: {{ docker: {{ memory: 256m, subnet_pool: 10.9.0.0/20, \
             servers: {{ memory: 2g }} }} }}\n"
        ))
        .unwrap();
        let d = &c.gateways.docker;
        assert_eq!(d.memory.0, 256 << 20);
        assert_eq!(d.servers.memory.0, 2 << 30);
        assert_eq!(d.subnet_pool.to_string(), "10.9.0.0/20");
        for (key, bad) in [
            ("gateways.docker.memory", "memory: lots"),
            ("gateways.docker.servers.memory", "servers: { memory: 12x }"),
            ("gateways.docker.subnet_pool", "subnet_pool: 10.9.0.0"),
        ] {
            let err = Config::from_yaml(&format!("{MINIMAL}gateways: {{ docker: {{ {bad} }} }}\n"))
                .unwrap_err();
            assert!(
                matches!(&err, ConfigError::Key { key: k, .. } if k == key),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_runtime_is_docker_unless_swarm_is_named_and_swarm_refuses_what_it_cannot_do() {
        let c = Config::from_yaml(MINIMAL).unwrap();
        assert_eq!(c.gateways.runtime, RuntimeKind::Docker);
        let swarm = |docker: &str| {
            Config::from_yaml(&format!(
                "{MINIMAL}gateways: {{ runtime: swarm, docker: {{ {docker} }} }}\n"
            ))
        };
        let c = swarm("engine_for_gateways: none").unwrap();
        assert_eq!(c.gateways.runtime, RuntimeKind::Swarm);
        let err = Config::from_yaml(&format!("{MINIMAL}gateways: {{ runtime: kubernetes }}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("kubernetes"), "{err}");
        let err = swarm("engine_for_gateways: none, reach: loopback")
            .unwrap_err()
            .to_string();
        assert!(err.contains("reach: loopback"), "{err}");
        // The policed API (the default) works on Swarm; the host's engine socket does not.
        let c = swarm("").unwrap();
        assert_eq!(c.gateways.docker.gateway_engine(), GatewayEngine::Policed);
        swarm("engine_for_gateways: policed").unwrap();
        let err = swarm("engine_for_gateways: host, allow_host_engine: true")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("runtime: swarm") && err.contains("engine_for_gateways: host"),
            "{err}"
        );
    }

    #[test]
    fn replicas_need_an_id_and_refuse_stop_on_shutdown() {
        let ok = Config::from_yaml(&format!(
            "{MINIMAL}replicas: {{ id: a, peers: [\"fd-b:9090\"] }}\n"
        ))
        .unwrap();
        assert_eq!(ok.replicas.peers, ["fd-b:9090"]);
        for (bad, says) in [
            ("replicas: { peers: [\"fd-b:9090\"] }", "replicas.id"),
            ("replicas: { id: A_1 }", "replicas.id"),
            ("replicas: { id: a, peers: [fd-b] }", "host:port"),
            (
                "replicas: { id: a, peers: [\"fd-b:9090\"] }\ngateways: { stop_on_shutdown: true }",
                "stop_on_shutdown",
            ),
        ] {
            let err = Config::from_yaml(&format!("{MINIMAL}{bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        // One replica alone may still remove everything when it stops.
        Config::from_yaml(&format!(
            "{MINIMAL}gateways: {{ stop_on_shutdown: true }}\n"
        ))
        .unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_yaml("server: { lisen: 0.0.0.0:1 }\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("server.lisen") || msg.contains("lisen"),
            "{msg}"
        );
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn env_overrides_single_keys_including_nested_and_top_level() {
        let (_dir, p) = minimal_file();
        let cfg = Config::load(
            Some(&p),
            env(&[
                ("FRONTDOOR_SERVER__LISTEN", "127.0.0.1:9999"),
                ("FRONTDOOR_GATEWAYS__DOCKER__IMAGE", "example/gw:1"),
                ("FRONTDOOR_DATA_DIR", "/tmp/fd"),
                ("FRONTDOOR_GATEWAYS__MAX_RUNNING", "7"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.server.listen.port(), 9999);
        assert_eq!(cfg.gateways.docker.image, "example/gw:1");
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/fd"));
        assert_eq!(cfg.gateways.max_running, 7);
    }

    #[test]
    fn env_override_of_unknown_key_is_an_error() {
        let (_dir, p) = minimal_file();
        let err = Config::load(Some(&p), env(&[("FRONTDOOR_SERVER__NOPE", "1")])).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn plain_prefixed_variables_are_left_for_secrets() {
        let (_dir, p) = minimal_file();
        let cfg = Config::load(
            Some(&p),
            env(&[
                ("FRONTDOOR_JWT_SECRET", "not-config"),
                ("FRONTDOOR_MASTER_KEY", "not-config"),
                ("FRONTDOOR_SERVER__PUBLIC_URL", "https://mcp.example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.public_url(), "https://mcp.example.com");
        let err =
            Config::load(Some(&p), env(&[("FRONTDOOR_SERVER__PUBLIK_URL", "x")])).unwrap_err();
        assert!(err.to_string().contains("publik_url"), "{err}");
    }

    #[test]
    fn missing_key_source_is_reported() {
        let err = Config::from_yaml("").unwrap_err().to_string();
        assert!(err.contains("no JWT key source"), "{err}");
    }

    #[test]
    fn public_url_defaults_from_listen_and_tls() {
        let cfg =
            Config::from_yaml(&format!("{MINIMAL}server: {{ listen: 0.0.0.0:8080 }}\n")).unwrap();
        assert_eq!(cfg.public_url(), "http://localhost:8080");
    }
}
