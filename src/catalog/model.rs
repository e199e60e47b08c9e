//! The docker/mcp-gateway catalog format, read from YAML or JSON and written as YAML.
//!
//! Lossless by design: a server entry is kept as an ordered map, so every field, known to us
//! or not, round-trips in its original order. The top level keeps `name`, `displayName` and
//! `registry` first, then any other keys in their original order.

use super::format::Format;
use std::ops::Deref;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::CatalogError;
use super::parse::{check_size, parse_json, parse_yaml, to_yaml};

/// A catalog file: `name`, `displayName`, `registry` of servers, plus any unknown keys.
///
/// Deserialize is hand-written (not `#[serde(flatten)]`) so the registry streams through the
/// server-count limit and error paths stay precise.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Catalog {
    /// Catalog id, e.g. `docker-mcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Human-readable title.
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// Servers by name, in file order.
    pub registry: IndexMap<String, Server>,
    /// Top-level keys this crate does not interpret, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One server entry (`image`, `title`, `type`, `env`, `secrets`, ...), kept as an ordered map.
///
/// Shared behind an `Arc`: a merge copies pointers, not maps, and only a server that an
/// override patches is copied (on write, by [`Server::fields_mut`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Server(Arc<Map<String, Value>>);

impl Deref for Server {
    type Target = Map<String, Value>;
    fn deref(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl From<Map<String, Value>> for Server {
    fn from(m: Map<String, Value>) -> Self {
        Server(Arc::new(m))
    }
}

impl Serialize for Server {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Server {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(Server::from)
    }
}

/// The `type` of a server; absent means [`ServerType::Server`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerType {
    /// A container image the gateway runs.
    Server,
    /// A remote MCP endpoint (`remote.url`).
    Remote,
    /// A "plain OCI" tool collection (`tools[].container.image`).
    Poci,
    /// Anything else; validation refuses it.
    Other(String),
}

impl Server {
    /// The fields, for changing (copies them first if they are shared).
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        Arc::make_mut(&mut self.0)
    }

    /// A string field, or `None` when absent or not a string.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The container image reference, if any.
    pub fn image(&self) -> Option<&str> {
        self.str_field("image")
    }

    /// The server type, defaulting to `server` when the field is absent.
    pub fn server_type(&self) -> ServerType {
        match self.0.get("type") {
            None | Some(Value::Null) => ServerType::Server,
            Some(Value::String(s)) => match s.as_str() {
                "server" => ServerType::Server,
                "remote" => ServerType::Remote,
                "poci" => ServerType::Poci,
                other => ServerType::Other(other.to_owned()),
            },
            Some(other) => ServerType::Other(other.to_string()),
        }
    }

    /// Names listed under `secrets[].name` (what the gateway will look up).
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.0
            .get("secrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
    }
}

impl Catalog {
    /// Parses a catalog body, refusing oversized input before parsing.
    ///
    /// This checks syntax and limits only; call [`super::validate::validate`] (or use
    /// [`super::validate::parse_validated`]) before trusting the content.
    pub fn parse(bytes: &[u8], format: Format) -> Result<Catalog, CatalogError> {
        check_size(bytes)?;
        match format {
            Format::Yaml => parse_yaml(bytes),
            Format::Json => parse_json(bytes),
        }
    }

    /// Serializes to YAML (the format the gateway reads).
    pub fn to_yaml(&self) -> Result<String, CatalogError> {
        to_yaml(self)
    }

    /// Names of all servers, in registry order.
    pub fn server_names(&self) -> impl Iterator<Item = &str> {
        self.registry.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"name: docker-mcp
displayName: Docker MCP Catalog
x-top: keep me
registry:
  fetch:
    description: Fetches a URL
    title: Fetch
    type: server
    image: mcp/fetch:latest
    x-custom:
      zeta: 1
      alpha: [a, b]
    secrets:
    - name: fetch.token
      env: FETCH_TOKEN
  github:
    image: ghcr.io/github/github-mcp-server:v0.1
    allowHosts:
    - api.github.com:443
    flag: 'yes'
"#;

    #[test]
    fn yaml_round_trip_keeps_unknown_fields_in_order() {
        let c = Catalog::parse(SAMPLE.as_bytes(), Format::Yaml).unwrap();
        assert_eq!(c.name.as_deref(), Some("docker-mcp"));
        assert_eq!(c.extra["x-top"], "keep me");
        let fetch = &c.registry["fetch"];
        let keys: Vec<_> = fetch.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "description",
                "title",
                "type",
                "image",
                "x-custom",
                "secrets"
            ]
        );
        let inner: Vec<_> = fetch["x-custom"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(inner, ["zeta", "alpha"]);
        assert_eq!(fetch.secret_names().collect::<Vec<_>>(), ["fetch.token"]);
        assert_eq!(c.registry["github"]["flag"], "yes");

        let yaml = c.to_yaml().unwrap();
        let again = Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap();
        assert_eq!(again, c);
        // Quoted so a YAML 1.1 reader (the gateway) does not see a boolean.
        assert!(
            yaml.contains("flag: \"yes\"") || yaml.contains("flag: 'yes'"),
            "{yaml}"
        );
    }

    #[test]
    fn json_and_yaml_agree() {
        let c = Catalog::parse(SAMPLE.as_bytes(), Format::Yaml).unwrap();
        let json = serde_json::to_vec(&c).unwrap();
        let from_json = Catalog::parse(&json, Format::Json).unwrap();
        assert_eq!(from_json, c);
    }

    #[test]
    fn server_type_defaults_to_server() {
        let c = Catalog::parse(SAMPLE.as_bytes(), Format::Yaml).unwrap();
        assert_eq!(c.registry["github"].server_type(), ServerType::Server);
        assert_eq!(
            c.registry["github"].image(),
            Some("ghcr.io/github/github-mcp-server:v0.1")
        );
    }
}
