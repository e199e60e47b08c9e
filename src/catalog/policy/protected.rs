//! The front door's own Docker objects, which no catalog of anyone may name.
//!
//! Everything the front door creates is called `mcp-fd-...` (gateway containers and networks,
//! the init volume every gateway runs its PID 1 from), so a volume source, image or host that
//! names one is refused. So is the engine socket (`docker.sock` anywhere in a source: a server
//! holding it is root on the host) and the front door's data (its `data_dir`, the compose data
//! volume). Host paths are compared by component after normalisation, and a source that
//! *contains* a protected path is refused too: mounting `/`, `/var` or `/var/run` hands over
//! the socket just as well. `..` is refused outright rather than resolved.
//!
//! What this cannot see: host symlinks pointing at a protected path, and volume sources that
//! are templates (`{{server.paths|volume}}`), which the gateway fills from config values.

use serde_json::{Map, Value};

use super::super::issues::Issues;
use super::super::model::Catalog;
use super::pattern::url_host;

/// Name prefix of every Docker object the front door creates.
pub const OBJECT_PREFIX: &str = "mcp-fd-";

/// Host paths of the engine socket and the engine's own data (volume contents live there).
const BUILTIN_PATHS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/lib/docker",
];

/// Volume names of the front door's data: the compose file's data volume.
const BUILTIN_NAMES: &[&str] = &["frontdoor-data"];

/// The protected host paths and volume names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protected {
    /// Normalised absolute paths, each as its components.
    paths: Vec<Vec<String>>,
    /// Volume names (also matched with a compose project prefix, `<project>_<name>`).
    names: Vec<String>,
}

impl Default for Protected {
    fn default() -> Self {
        Self::new(std::iter::empty::<&str>())
    }
}

impl Protected {
    /// The built-in protections plus `extra` (absolute host paths or volume names).
    pub fn new<S: AsRef<str>>(extra: impl IntoIterator<Item = S>) -> Self {
        let mut p = Protected {
            paths: Vec::new(),
            names: Vec::new(),
        };
        for s in BUILTIN_PATHS.iter().chain(BUILTIN_NAMES) {
            p.add(s);
        }
        for s in extra {
            p.add(s.as_ref());
        }
        p
    }

    fn add(&mut self, s: &str) {
        if s.starts_with('/') {
            if let Some(c) = components(s) {
                if !c.is_empty() && !self.paths.contains(&c) {
                    self.paths.push(c);
                }
            }
        } else if !s.is_empty() && !self.names.iter().any(|n| n == s) {
            self.names.push(s.to_string());
        }
    }

    /// Human-readable list, for the effective policy view.
    pub fn describe(&self) -> Vec<String> {
        let mut out = vec![format!("{OBJECT_PREFIX}*"), "*docker.sock*".to_string()];
        out.extend(self.paths.iter().map(|c| format!("/{}", c.join("/"))));
        out.extend(self.names.iter().cloned());
        out
    }

    /// Checks every server of a catalog; issues are `<prefix>.registry.<server>.<field>`
    /// (`registry.<server>.<field>` with an empty prefix).
    pub(crate) fn check_catalog(&self, catalog: &Catalog, prefix: &str, issues: &mut Issues) {
        for (name, server) in &catalog.registry {
            let path = if prefix.is_empty() {
                format!("registry.{name}")
            } else {
                format!("{prefix}.registry.{name}")
            };
            self.check_server(&path, server, issues);
        }
    }

    /// Checks the fields of one server (or of an override patch) that can name a Docker
    /// object or a host path.
    pub(crate) fn check_server(
        &self,
        path: &str,
        fields: &Map<String, Value>,
        issues: &mut Issues,
    ) {
        self.check_volumes(&format!("{path}.volumes"), fields.get("volumes"), issues);
        check_image(&format!("{path}.image"), fields.get("image"), issues);
        for (i, tool) in list(fields.get("tools")).iter().enumerate() {
            let c = tool.get("container");
            let p = format!("{path}.tools[{i}].container");
            self.check_volumes(
                &format!("{p}.volumes"),
                c.and_then(|c| c.get("volumes")),
                issues,
            );
            check_image(
                &format!("{p}.image"),
                c.and_then(|c| c.get("image")),
                issues,
            );
        }
        let remote = fields.get("remote").and_then(|r| r.get("url"));
        for (key, url) in [
            ("remote.url", remote),
            ("sseEndpoint", fields.get("sseEndpoint")),
        ] {
            let host = url.and_then(Value::as_str).and_then(url_host);
            if host.is_some_and(|h| h.starts_with(OBJECT_PREFIX)) {
                issues.push(format!("{path}.{key}"), own_object("connect to"));
            }
        }
        for key in ["allowHosts", "extraHosts"] {
            for (i, h) in list(fields.get(key)).iter().enumerate() {
                if h.as_str().is_some_and(|h| h.starts_with(OBJECT_PREFIX)) {
                    issues.push(format!("{path}.{key}[{i}]"), own_object("name"));
                }
            }
        }
    }

    fn check_volumes(&self, path: &str, v: Option<&Value>, issues: &mut Issues) {
        for (i, item) in list(v).iter().enumerate() {
            if let Some(s) = item.as_str() {
                if let Err(why) = self.check_volume(s) {
                    issues.push(format!("{path}[{i}]"), format!("{s:?} {why}"));
                }
            }
        }
    }

    /// One `source:target[:options]` entry.
    fn check_volume(&self, v: &str) -> Result<(), String> {
        if v.to_ascii_lowercase().contains("docker.sock") {
            return Err(
                "mounts the Docker engine socket; no catalog may (it is root on the host)".into(),
            );
        }
        if v.split(['/', ':', ',', '='])
            .any(|t| t.starts_with(OBJECT_PREFIX))
        {
            return Err(own_object("mount"));
        }
        let source = v.split(':').next().unwrap_or("");
        if source.contains("{{") {
            return Ok(());
        }
        if source.starts_with('/') {
            let Some(src) = components(source) else {
                return Err("has a `..` in its source path; write the path it means".into());
            };
            if let Some(p) = self
                .paths
                .iter()
                .find(|p| p.starts_with(&src) || src.starts_with(p))
            {
                return Err(format!(
                    "mounts /{} or a directory around it, which belongs to the front door or the engine",
                    p.join("/")
                ));
            }
        } else if let Some(n) = self
            .names
            .iter()
            .find(|n| source == n.as_str() || source.ends_with(&format!("_{n}")))
        {
            return Err(format!("mounts the front door's data volume ({n})"));
        }
        Ok(())
    }
}

fn own_object(verb: &str) -> String {
    format!("must not {verb} the front door's own Docker objects ({OBJECT_PREFIX}*)")
}

fn check_image(path: &str, v: Option<&Value>, issues: &mut Issues) {
    if let Some(img) = v.and_then(Value::as_str) {
        if img.split('/').any(|c| c.starts_with(OBJECT_PREFIX)) {
            issues.push(path, own_object("run images named like"));
        }
    }
}

fn list(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Components of an absolute path without empty and `.` parts; `None` when it has `..`.
fn components(p: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return None,
            c => out.push(c.to_string()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Format;

    fn issues(p: &Protected, yaml: &str) -> Vec<String> {
        let c = Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap();
        let mut i = Issues::default();
        p.check_catalog(&c, "", &mut i);
        i.into_vec().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn front_door_objects_socket_and_data_are_refused() {
        let p = Protected::new(["/srv/frontdoor/data", "extra-vol"]);
        for v in [
            "mcp-fd-init-0123456789ab:/x",
            "mcp-fd-t1-init-0123456789ab:/x:ro",
            "/var/lib/docker/volumes/mcp-fd-init-abc/_data:/x",
            "/var/run/docker.sock:/var/run/docker.sock",
            "/run/docker.sock:/s",
            "/home/me/DOCKER.SOCK:/s",
            "/:/host",
            "/var:/v",
            "/var/run:/r",
            "//var//./run/:/r",
            "/var/lib:/l",
            "/var/lib/docker/volumes:/l",
            "/srv/frontdoor/data/users:/d",
            "/srv:/d",
            "/tmp/../var/run:/r",
            "frontdoor-data:/d",
            "myproject_frontdoor-data:/d",
            "extra-vol:/e",
        ] {
            let got = issues(
                &p,
                &format!("registry:\n  s:\n    image: a/b\n    volumes: [{v:?}]\n"),
            );
            assert_eq!(got.len(), 1, "{v}: {got:?}");
            assert!(got[0].starts_with("registry.s.volumes[0]:"), "{v}: {got:?}");
        }
        for ok in [
            "/home/me/notes:/notes:ro",
            "my-volume:/data",
            "/srv/other:/o",
            "{{fs.paths|volume|into}}",
        ] {
            let got = issues(
                &p,
                &format!("registry:\n  s:\n    image: a/b\n    volumes: [{ok:?}]\n"),
            );
            assert!(got.is_empty(), "{ok}: {got:?}");
        }
    }

    #[test]
    fn images_hosts_and_tool_containers_are_checked_too() {
        let p = Protected::default();
        let got = issues(
            &p,
            r#"
registry:
  img: {image: "mcp-fd-init:latest"}
  hub: {image: "registry.example.com/mcp-fd-x/y:1"}
  rem: {type: remote, remote: {url: "http://mcp-fd-bob:8811/mcp"}}
  sse: {type: remote, sseEndpoint: "http://MCP-FD-bob:8811/sse"}
  hosts: {image: a/b, allowHosts: ["mcp-fd-bob:8811"], extraHosts: ["mcp-fd-x:10.0.0.1"]}
  poci:
    type: poci
    tools:
      - name: t
        container: {image: "mcp-fd-x", volumes: ["/var/run/docker.sock:/s"]}
"#,
        );
        for want in [
            "registry.img.image:",
            "registry.hub.image:",
            "registry.rem.remote.url:",
            "registry.sse.sseEndpoint:",
            "registry.hosts.allowHosts[0]:",
            "registry.hosts.extraHosts[0]:",
            "registry.poci.tools[0].container.image:",
            "registry.poci.tools[0].container.volumes[0]:",
        ] {
            assert!(got.iter().any(|g| g.starts_with(want)), "{want}: {got:#?}");
        }
        assert_eq!(got.len(), 8, "{got:#?}");
        // The example catalogs that ship with the front door pass.
        for c in [
            include_str!("../../../catalogs/official.yaml"),
            include_str!("../../../catalogs/organization.yaml"),
        ] {
            assert_eq!(issues(&p, c), Vec::<String>::new());
        }
    }
}
