//! A user's own servers (`custom.yaml`): an allow-list of fields, so a field the gateway
//! learns tomorrow is refused from tenants until someone decides it is safe.
//!
//! Allowed: what describes the server (`name`, `title`, `description`, `icon`, `readme`,
//! `metadata`, `prefix`, `tools` as a listing), what configures it inside its own container
//! (`env`, `secrets`, `config`, `longLived`, `disableNetwork`), the `image` when
//! `catalogs.user_policy.images` allows it, and `remote` / `sseEndpoint` when
//! `remote_urls` allows the URL. Never: `volumes`, `user`, `command`, `extraHosts`,
//! `allowHosts`, `oauth`, `policy`, `poci` servers (they name containers per tool), or any
//! top-level key besides `name` and `displayName`.

use serde_json::{Map, Value};

use super::super::issues::Issues;
use super::super::model::Catalog;
use super::pattern::{any_matches, canonical_url, describe};
use super::UserPolicy;

/// Fields a custom server may carry.
pub const CUSTOM_FIELDS: &[&str] = &[
    "name",
    "type",
    "image",
    "title",
    "description",
    "icon",
    "readme",
    "metadata",
    "prefix",
    "longLived",
    "env",
    "secrets",
    "config",
    "disableNetwork",
    "tools",
    "remote",
    "sseEndpoint",
];

/// Keys of a `tools[]` entry that only describe a tool.
const TOOL_FIELDS: &[&str] = &["name", "description", "arguments", "annotations"];
/// Keys of `remote`.
const REMOTE_FIELDS: &[&str] = &["url", "transport_type", "headers"];

/// Why a known field is refused to tenants (the message names what it would do).
pub(super) fn refusal(field: &str) -> Option<&'static str> {
    Some(match field {
        "volumes" => "users may not mount volumes (the gateway passes them to `docker run -v`)",
        "user" => "users may not choose the user a server runs as",
        "command" => "users may not change a server's command or entrypoint",
        "extraHosts" => "users may not add host entries to a server",
        "allowHosts" => "users may not widen a server's network reach (allowHosts is for admins)",
        "oauth" => "users may not declare OAuth providers",
        "policy" => "users may not set policy decisions",
        "image" => "users may not change which image a server runs",
        "remote" | "sseEndpoint" => "users may not change where a remote server connects",
        "secrets" => "users may not change which secrets a server receives",
        "type" => "users may not change a server's type",
        "tools" => "users may not change a server's tools",
        _ => return None,
    })
}

/// Checks a user's custom catalog; issue paths start with `<prefix>.`.
pub(super) fn check_catalog(policy: &UserPolicy, c: &Catalog, prefix: &str, issues: &mut Issues) {
    for key in c.extra.keys() {
        issues.push(
            format!("{prefix}.{key}"),
            "users may set only `name`, `displayName` and `registry` at the top of a catalog",
        );
    }
    for (name, server) in &c.registry {
        let path = format!("{prefix}.registry.{name}");
        if !policy.custom_servers {
            issues.push(
                &path,
                "servers of your own are not allowed here (catalogs.user_policy.custom_servers \
                 is false); ask an admin to offer it in a base or team catalog",
            );
        }
        check_server(policy, &path, server, issues);
    }
}

fn check_server(policy: &UserPolicy, path: &str, s: &Map<String, Value>, issues: &mut Issues) {
    for key in s.keys() {
        if !CUSTOM_FIELDS.contains(&key.as_str()) {
            let why = refusal(key).map_or_else(
                || {
                    format!(
                        "is not a field users may set (allowed: {})",
                        CUSTOM_FIELDS.join(", ")
                    )
                },
                str::to_string,
            );
            issues.push(format!("{path}.{key}"), why);
        }
    }
    match s.get("type").and_then(Value::as_str) {
        Some("poci") => issues.push(
            format!("{path}.type"),
            "users may not declare poci servers (each tool names a container to run)",
        ),
        Some("remote") if policy.remote_urls.is_empty() => issues.push(
            format!("{path}.type"),
            "remote servers of your own are not allowed (catalogs.user_policy.remote_urls is empty)",
        ),
        _ => {}
    }
    if let Some(img) = s.get("image").and_then(Value::as_str) {
        if let Err(why) = check_image(policy, img) {
            issues.push(format!("{path}.image"), why);
        }
    }
    if let Some(remote) = s.get("remote").and_then(Value::as_object) {
        for key in remote.keys() {
            if !REMOTE_FIELDS.contains(&key.as_str()) {
                issues.push(
                    format!("{path}.remote.{key}"),
                    format!(
                        "is not a field users may set (allowed: {})",
                        REMOTE_FIELDS.join(", ")
                    ),
                );
            }
        }
        if let Some(url) = remote.get("url") {
            check_url(policy, &format!("{path}.remote.url"), url, issues);
        }
    }
    if let Some(url) = s.get("sseEndpoint") {
        check_url(policy, &format!("{path}.sseEndpoint"), url, issues);
    }
    if let Some(tools) = s.get("tools") {
        let Some(items) = tools.as_array() else {
            issues.push(
                format!("{path}.tools"),
                "must be a list of tool descriptions",
            );
            return;
        };
        for (i, t) in items.iter().enumerate() {
            let Some(t) = t.as_object() else {
                issues.push(format!("{path}.tools[{i}]"), "must be a map");
                continue;
            };
            for key in t.keys() {
                if !TOOL_FIELDS.contains(&key.as_str()) {
                    issues.push(
                        format!("{path}.tools[{i}].{key}"),
                        format!(
                            "users may only describe tools ({}); tool containers are for admins",
                            TOOL_FIELDS.join(", ")
                        ),
                    );
                }
            }
        }
    }
}

fn check_image(policy: &UserPolicy, img: &str) -> Result<(), String> {
    if policy.images.is_empty() {
        return Err(format!(
            "image {img:?}: no image is allowed for servers of your own \
             (catalogs.user_policy.images is empty)"
        ));
    }
    if !any_matches(&policy.images, img) {
        return Err(format!(
            "image {img:?} is not allowed (catalogs.user_policy.images: {})",
            describe(&policy.images)
        ));
    }
    if policy.require_digest && !img.contains("@sha256:") {
        return Err(format!(
            "image {img:?} must be pinned by digest (image@sha256:<64 hex>)"
        ));
    }
    Ok(())
}

fn check_url(policy: &UserPolicy, path: &str, url: &Value, issues: &mut Issues) {
    let Some(url) = url.as_str() else {
        return; // shape validation reports it
    };
    let verdict = canonical_url(url).and_then(|c| {
        if any_matches(&policy.remote_urls, &c) {
            Ok(())
        } else if policy.remote_urls.is_empty() {
            Err("is not allowed: no remote servers of your own \
                 (catalogs.user_policy.remote_urls is empty)"
                .into())
        } else {
            Err(format!(
                "is not allowed (catalogs.user_policy.remote_urls: {})",
                describe(&policy.remote_urls)
            ))
        }
    });
    if let Err(why) = verdict {
        issues.push(path, format!("{url:?} {why}"));
    }
}
