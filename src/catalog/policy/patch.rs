//! Overrides of servers that admin catalogs offer: the subtle route, because a patch lands
//! on an admin's recipe and keeps its image, secrets and network.
//!
//! `false` (disable) and `true` (keep) are always fine. A patch may touch only
//! [`PATCH_FIELDS`]; of those, `disableNetwork` may only become `true`, and `env` may only
//! change the values the server fills from its config: an admin entry written as a template
//! (`value: "{{github.host}}"`, how a docker/mcp-gateway server takes user configuration) may
//! get a value of the user's; entries with a fixed value must stay exactly as the admin wrote
//! them, and no new names may appear. The first part is checked on the patch alone; the `env`
//! part needs the server the patch lands on, so it runs whenever the layers are put together.

use serde_json::{Map, Value};

use super::super::issues::Issues;
use super::super::overrides::{Override, Overrides};
use super::custom::refusal;

/// Fields an override may carry for a server an admin catalog offers.
pub const PATCH_FIELDS: &[&str] = &[
    "title",
    "description",
    "icon",
    "readme",
    "metadata",
    "prefix",
    "disableNetwork",
    "env",
];

/// Checks what can be checked without the server underneath; paths `<prefix>.<server>.<field>`.
pub(super) fn check_static(o: &Overrides, prefix: &str, issues: &mut Issues) {
    for (name, ov) in &o.0 {
        let Override::Patch(patch) = ov else {
            continue;
        };
        for (key, v) in patch {
            let path = format!("{prefix}.{name}.{key}");
            if !PATCH_FIELDS.contains(&key.as_str()) {
                let why = refusal(key).map_or_else(
                    || {
                        format!(
                            "is not a field users may override (allowed: {}; `false` disables the server)",
                            PATCH_FIELDS.join(", ")
                        )
                    },
                    str::to_string,
                );
                issues.push(path, why);
            } else if key == "disableNetwork" && v != &Value::Bool(true) {
                issues.push(
                    path,
                    "may only be true: users may cut a server's network, not restore or widen it",
                );
            }
        }
    }
}

/// True when docker/mcp-gateway evaluates this env value against the server's config.
fn is_template(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.contains("{{") && s.contains("}}"))
}

fn entries(v: Option<&Value>) -> Vec<(&str, &Value)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.get("name")?.as_str()?;
            Some((name, e.get("value").unwrap_or(&Value::Null)))
        })
        .collect()
}

/// Checks a patch's `env` against the admin server it lands on.
pub(super) fn check_env(
    path: &str,
    below: &Map<String, Value>,
    patch: &Map<String, Value>,
    issues: &mut Issues,
) {
    let Some(new) = patch.get("env") else {
        return;
    };
    let admin = entries(below.get("env"));
    let new = entries(Some(new)); // `null` (delete) reads as an empty list
    for (i, (name, value)) in new.iter().enumerate() {
        match admin.iter().find(|(n, _)| n == name) {
            None => issues.push(
                format!("{path}.env[{i}]"),
                format!(
                    "adds {name:?}; users may only set env values the server takes from its \
                     config (written as {{{{...}}}} in the admin catalog)"
                ),
            ),
            Some((_, fixed)) if !is_template(fixed) && fixed != value => issues.push(
                format!("{path}.env[{i}]"),
                format!("changes {name:?}, which the admin catalog fixes"),
            ),
            Some(_) => {}
        }
    }
    for (name, fixed) in &admin {
        if !is_template(fixed) && !new.iter().any(|(n, v)| n == name && v == fixed) {
            issues.push(
                format!("{path}.env"),
                format!("drops {name:?}, which the admin catalog fixes; keep it as it is"),
            );
        }
    }
}
