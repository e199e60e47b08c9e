//! Catalog rules beyond syntax, with messages that name the server and field.
//!
//! Required: every server name matches `[a-z0-9][a-z0-9._-]*` (≤ 128); `type` is `server`
//! (the default), `remote` or `poci`; `server` entries need a valid `image`; `remote` entries
//! need `remote.url` (or the legacy `sseEndpoint`). Known fields must have the shape the
//! gateway's Go reader expects, since one malformed entry would stop a user's whole gateway.
//! Unknown fields are not judged.

use serde_json::{Map, Value};

use super::error::CatalogError;
use super::format::Format;
use super::image_ref::check_image_ref;
use super::issues::{Issues, ValidationError};
use super::model::{Catalog, ServerType};
use super::parse::MAX_SERVERS;
use super::server_name::{check_secret_name, check_server_name};

/// Parses and validates a catalog body: what the REST API calls before writing anything.
pub fn parse_validated(bytes: &[u8], format: Format) -> Result<Catalog, CatalogError> {
    let catalog = Catalog::parse(bytes, format)?;
    validate(&catalog)?;
    Ok(catalog)
}

/// Checks a whole catalog and reports every problem found.
pub fn validate(catalog: &Catalog) -> Result<(), ValidationError> {
    let mut issues = Issues::default();
    if catalog.registry.len() > MAX_SERVERS {
        issues.push(
            "registry",
            format!(
                "lists {} servers, limit {MAX_SERVERS}",
                catalog.registry.len()
            ),
        );
    }
    for (name, server) in &catalog.registry {
        let path = format!("registry.{name}");
        if let Err(msg) = check_server_name(name) {
            issues.push(&path, msg);
        }
        check_server_fields(&path, server, false, &mut issues);
    }
    issues.finish()
}

/// Checks the known fields of one server map. With `partial` (an override patch) required
/// fields may be absent and `null` (delete this field) is allowed everywhere.
pub(crate) fn check_server_fields(
    path: &str,
    fields: &Map<String, Value>,
    partial: bool,
    issues: &mut Issues,
) {
    let present = |k: &str| match fields.get(k) {
        None => None,
        Some(Value::Null) if partial => None,
        Some(v) => Some(v),
    };
    let ty = present("type").map_or(Ok(ServerType::Server), |v| match v.as_str() {
        Some("server") => Ok(ServerType::Server),
        Some("remote") => Ok(ServerType::Remote),
        Some("poci") => Ok(ServerType::Poci),
        _ => Err(()),
    });
    if ty.is_err() {
        issues.push(
            format!("{path}.type"),
            "must be one of \"server\" (the default), \"remote\" or \"poci\"",
        );
    }
    match present("image") {
        Some(Value::String(img)) => {
            if let Err(why) = check_image_ref(img) {
                issues.push(format!("{path}.image"), format!("image {img:?} {why}"));
            }
        }
        Some(_) => issues.push(format!("{path}.image"), "must be a string"),
        None if !partial && ty == Ok(ServerType::Server) => issues.push(
            format!("{path}.image"),
            "is required for servers of type \"server\" (e.g. image: mcp/fetch:latest)",
        ),
        None => {}
    }
    if !partial && ty == Ok(ServerType::Remote) {
        let url = fields
            .get("remote")
            .and_then(|r| r.get("url"))
            .and_then(Value::as_str)
            .or_else(|| fields.get("sseEndpoint").and_then(Value::as_str));
        match url {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {}
            Some(u) => issues.push(
                format!("{path}.remote.url"),
                format!("{u:?} must be an http(s) URL"),
            ),
            None => issues.push(
                format!("{path}.remote.url"),
                "is required for servers of type \"remote\"",
            ),
        }
    }
    for key in ["title", "description", "icon", "readme", "user", "prefix"] {
        if present(key).is_some_and(|v| !v.is_string()) {
            issues.push(format!("{path}.{key}"), "must be a string");
        }
    }
    for key in ["longLived", "disableNetwork"] {
        if present(key).is_some_and(|v| !v.is_boolean()) {
            issues.push(format!("{path}.{key}"), "must be true or false");
        }
    }
    for key in ["command", "volumes", "allowHosts", "extraHosts"] {
        if let Some(v) = present(key) {
            check_string_list(&format!("{path}.{key}"), v, issues);
        }
    }
    if present("config").is_some_and(|v| !v.is_array()) {
        issues.push(format!("{path}.config"), "must be a list");
    }
    if let Some(v) = present("remote") {
        if !v.is_object() {
            issues.push(
                format!("{path}.remote"),
                "must be a map (url, transport_type, headers)",
            );
        }
    }
    if let Some(v) = present("env") {
        check_named_list(&format!("{path}.env"), v, "value", issues);
    }
    if let Some(v) = present("secrets") {
        check_named_list(&format!("{path}.secrets"), v, "env", issues);
        for (i, s) in v.as_array().into_iter().flatten().enumerate() {
            if let Some(Err(why)) = s.get("name").and_then(Value::as_str).map(check_secret_name) {
                issues.push(format!("{path}.secrets[{i}].name"), why);
            }
        }
    }
}

fn check_string_list(path: &str, v: &Value, issues: &mut Issues) {
    match v.as_array() {
        Some(items) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) if s.chars().any(char::is_control) => {
                        issues.push(format!("{path}[{i}]"), "contains control characters")
                    }
                    Some(_) => {}
                    None => issues.push(format!("{path}[{i}]"), "must be a string"),
                }
            }
        }
        None => issues.push(path, "must be a list of strings"),
    }
}

/// `env` and `secrets`: a list of maps, each with a string `name` and a scalar `<second>`.
fn check_named_list(path: &str, v: &Value, second: &str, issues: &mut Issues) {
    let Some(items) = v.as_array() else {
        issues.push(path, format!("must be a list of {{name, {second}}} maps"));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let Some(m) = item.as_object() else {
            issues.push(p, format!("must be a map with `name` and `{second}`"));
            continue;
        };
        match m.get("name") {
            Some(Value::String(n)) if !n.is_empty() => {}
            _ => issues.push(
                format!("{p}.name"),
                "is required and must be a non-empty string",
            ),
        }
        if m.get(second).is_some_and(|x| x.is_array() || x.is_object()) {
            issues.push(format!("{p}.{second}"), "must be a string");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues_of(yaml: &str) -> Vec<String> {
        let c = Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap();
        match validate(&c) {
            Ok(()) => vec![],
            Err(e) => e.issues.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn good_catalog_passes() {
        let yaml = r#"
registry:
  fetch: {image: "mcp/fetch:latest", title: Fetch, env: [{name: A, value: "1"}]}
  remote-one: {type: remote, remote: {url: "https://mcp.example.com/mcp"}}
  tools.poci: {type: poci, tools: [{name: t, container: {image: alpine}}]}
  github:
    image: ghcr.io/github/github-mcp-server:v1
    secrets: [{name: github.personal_access_token, env: GITHUB_TOKEN}]
    allowHosts: [api.github.com:443]
    x-unknown: {anything: [1, 2]}
"#;
        assert_eq!(issues_of(yaml), Vec::<String>::new());
    }

    #[test]
    fn each_problem_names_server_and_field() {
        let yaml = r#"
registry:
  Bad_Name: {image: alpine}
  noimage: {title: x}
  spaced: {image: "mcp/fetch latest"}
  weird: {type: lambda, image: alpine}
  remote: {type: remote}
  envs: {image: a, env: "A=1", secrets: [{env: X}], allowHosts: [1]}
"#;
        let got = issues_of(yaml);
        let want = [
            "registry.Bad_Name: server name",
            "registry.noimage.image: is required",
            "registry.spaced.image: image \"mcp/fetch latest\" contains whitespace",
            "registry.weird.type: must be one of",
            "registry.remote.remote.url: is required",
            "registry.envs.allowHosts[0]: must be a string",
            "registry.envs.env: must be a list",
            "registry.envs.secrets[0].name: is required",
        ];
        for w in want {
            assert!(
                got.iter().any(|g| g.starts_with(w)),
                "missing {w:?} in {got:#?}"
            );
        }
    }

    #[test]
    fn secret_names_must_have_server_dot_key_form() {
        let yaml = "registry:\n  a: {image: a, secrets: [{name: nodot, env: X}]}\n";
        let got = issues_of(yaml);
        assert!(got[0].starts_with("registry.a.secrets[0].name:"), "{got:?}");
    }

    #[test]
    fn parse_validated_reports_invalid_as_bad_request() {
        let err = parse_validated(b"registry: {x: {}}", Format::Yaml).unwrap_err();
        assert_eq!(err.class(), super::super::error::ErrorClass::BadRequest);
        assert!(err.to_string().contains("registry.x.image"), "{err}");
    }
}
