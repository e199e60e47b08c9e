//! What the gateway was given: catalog files (docker/mcp-gateway catalog YAML) and secrets files
//! (`<server>.<key>=<value>` lines). Only names are kept; secret values are read to check the
//! format and then dropped, so they cannot leak into a log or a tool result.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::args::Args;

/// The names the tools report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Enabled servers: in some catalog and named by `--servers` (or all with
    /// `--enable-all-servers`), sorted.
    pub servers: Vec<String>,
    /// `--servers` names that no catalog defines.
    pub missing: Vec<String>,
    /// Secret names `<server>.<key>`, sorted, no values.
    pub secret_names: Vec<String>,
}

#[derive(Deserialize)]
struct CatalogFile {
    #[serde(default)]
    registry: Option<BTreeMap<String, IgnoredAny>>,
}

/// Catalog server names in one YAML document (the `registry` map's keys).
pub fn catalog_server_names(yaml: &str) -> Result<BTreeSet<String>, String> {
    let file: CatalogFile = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    Ok(file.registry.unwrap_or_default().into_keys().collect())
}

/// Secret names in one secrets file. Blank lines and `#` comments are skipped; a line without
/// `=` or whose name is not `<server>.<key>` is an error naming the line number, not the text.
pub fn secret_names(text: &str) -> Result<BTreeSet<String>, String> {
    let mut names = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, _value)) = line.split_once('=') else {
            return Err(format!("line {}: expected <server>.<key>=<value>", i + 1));
        };
        let name = name.trim();
        match name.split_once('.') {
            Some((server, key)) if !server.is_empty() && !key.is_empty() => {
                names.insert(name.to_owned());
            }
            _ => {
                return Err(format!(
                    "line {}: secret name must be <server>.<key>",
                    i + 1
                ))
            }
        }
    }
    Ok(names)
}

/// docker/mcp-gateway resolves relative catalog paths against `~/.docker/mcp/catalogs/`.
fn resolve_catalog(path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() || p.exists() {
        return p.to_path_buf();
    }
    match std::env::var_os("HOME") {
        Some(home) => {
            let candidate = Path::new(&home).join(".docker/mcp/catalogs").join(p);
            if candidate.exists() {
                candidate
            } else {
                p.to_path_buf()
            }
        }
        None => p.to_path_buf(),
    }
}

/// Reads every `--catalog` and `--secrets` file. A catalog that cannot be read or parsed is an
/// error (the gateway refuses to start); a missing secrets file is only a warning, because
/// docker/mcp-gateway's secrets flag is a search path.
pub fn load(args: &Args, warn: &mut dyn FnMut(String)) -> Result<Loaded, String> {
    let mut in_catalogs = BTreeSet::new();
    for path in &args.catalogs {
        let resolved = resolve_catalog(path);
        let text = std::fs::read_to_string(&resolved)
            .map_err(|e| format!("reading catalog {}: {e}", resolved.display()))?;
        let names = catalog_server_names(&text)
            .map_err(|e| format!("parsing catalog {}: {e}", resolved.display()))?;
        in_catalogs.extend(names);
    }

    let (servers, missing) = if args.enable_all_servers {
        (in_catalogs.iter().cloned().collect(), Vec::new())
    } else {
        let wanted: BTreeSet<&String> = args.servers.iter().collect();
        let (found, missing): (Vec<&String>, Vec<&String>) =
            wanted.into_iter().partition(|s| in_catalogs.contains(*s));
        (
            found.into_iter().cloned().collect(),
            missing.into_iter().cloned().collect(),
        )
    };

    let mut secret_set = BTreeSet::new();
    for path in &args.secrets {
        if path == "docker-desktop" {
            continue;
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let names = secret_names(&text).map_err(|e| format!("secrets file {path}: {e}"))?;
                secret_set.extend(names);
            }
            Err(e) => warn(format!("secrets file {path} not read: {e}")),
        }
    }

    Ok(Loaded {
        servers,
        missing,
        secret_names: secret_set.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = r#"
name: docker-mcp
displayName: Docker MCP Catalog
registry:
  github:
    image: mcp/github@sha256:0000
    title: GitHub
    type: server
    secrets:
      - name: github.personal_access_token
        env: GITHUB_PERSONAL_ACCESS_TOKEN
    env:
      - name: X
        value: '{{github.x}}'
    unknownField: [1, 2, {a: b}]
  fetch:
    image: mcp/fetch
"#;

    #[test]
    fn catalog_names() {
        let names = catalog_server_names(CATALOG).unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["fetch", "github"]);
        assert!(catalog_server_names("name: empty\n").unwrap().is_empty());
        assert!(catalog_server_names("registry: [1, 2]\n").is_err());
    }

    #[test]
    fn secrets_format() {
        let names = secret_names("# c\n\ngithub.token=abc=def\n fetch.key = v \n").unwrap();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["fetch.key", "github.token"]
        );
        let err = secret_names("ok.a=1\nnovalue-super-secret\n").unwrap_err();
        assert!(err.contains("line 2") && !err.contains("super-secret"));
        assert!(secret_names("nodot=1").is_err());
    }

    #[test]
    fn load_intersects_catalog_and_servers() {
        let dir = std::env::temp_dir().join(format!("tg-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cat = dir.join("c.yaml");
        std::fs::write(&cat, CATALOG).unwrap();
        let sec = dir.join("s.env");
        std::fs::write(&sec, "github.token=xyz\n").unwrap();
        let args = Args::parse([
            format!("--catalog={}", cat.display()),
            "--servers=github,nothere".into(),
            format!("--secrets=docker-desktop:{}:/does/not/exist", sec.display()),
        ])
        .unwrap();
        let mut warnings = Vec::new();
        let loaded = load(&args, &mut |w| warnings.push(w)).unwrap();
        assert_eq!(loaded.servers, ["github"]);
        assert_eq!(loaded.missing, ["nothere"]);
        assert_eq!(loaded.secret_names, ["github.token"]);
        assert_eq!(warnings.len(), 1);

        let all = Args::parse([
            format!("--catalog={}", cat.display()),
            "--enable-all-servers".into(),
        ])
        .unwrap();
        assert_eq!(
            load(&all, &mut |_| {}).unwrap().servers,
            ["fetch", "github"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
