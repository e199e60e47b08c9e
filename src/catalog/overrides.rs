//! A user's `overrides.yaml`: `{<server>: false}` disables a server, `{<server>: {...}}`
//! patches it.
//!
//! Patch semantics are JSON Merge Patch (RFC 7396), which is what users expect from a
//! "change just this" file: maps merge recursively, a `null` value deletes the key, and
//! anything else (scalars, lists) replaces the old value whole. `true` is accepted as
//! "explicitly enabled" and changes nothing. Overrides for servers that are not in the merged
//! catalog are kept (the server may come back) but have no effect: a patch never creates a
//! server; users add servers in `custom.yaml`.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::CatalogError;
use super::format::Format;
use super::issues::Issues;
use super::parse::MAX_SERVERS;
use super::parse::{check_size, parse_json, parse_yaml};
use super::server_name::check_server_name;
use super::validate::check_server_fields;

/// What one override entry does.
#[derive(Clone, Debug, PartialEq)]
pub enum Override {
    /// `false` removes the server; `true` leaves it as it is.
    Enabled(bool),
    /// RFC 7396 merge patch applied to the server's fields.
    Patch(Map<String, Value>),
}

/// All of a user's overrides, by server name, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides(pub IndexMap<String, Override>);

impl Serialize for Overrides {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            match v {
                Override::Enabled(b) => m.serialize_entry(k, b)?,
                Override::Patch(p) => m.serialize_entry(k, p)?,
            }
        }
        m.end()
    }
}

/// The file as read, before it is checked and typed.
#[derive(Deserialize)]
#[serde(transparent)]
struct RawOverrides(Option<IndexMap<String, Value>>);

impl Overrides {
    /// Parses and validates an overrides body (YAML or JSON).
    pub fn parse(bytes: &[u8], format: Format) -> Result<Overrides, CatalogError> {
        check_size(bytes)?;
        let raw: RawOverrides = match format {
            Format::Yaml => parse_yaml(bytes)?,
            Format::Json => parse_json(bytes)?,
        };
        Self::from_map(raw.0.unwrap_or_default())
    }

    /// Checks and types an already parsed overrides map.
    pub(crate) fn from_map(raw: IndexMap<String, Value>) -> Result<Overrides, CatalogError> {
        if raw.len() > MAX_SERVERS {
            return Err(CatalogError::TooLarge {
                what: "overrides",
                actual: raw.len(),
                limit: MAX_SERVERS,
                unit: "servers",
            });
        }
        let mut issues = Issues::default();
        let mut out = IndexMap::with_capacity(raw.len());
        for (name, v) in raw {
            if let Err(why) = check_server_name(&name) {
                issues.push(name.clone(), why);
            }
            match v {
                Value::Bool(b) => {
                    out.insert(name, Override::Enabled(b));
                }
                Value::Object(patch) => {
                    check_server_fields(&name, &patch, true, &mut issues);
                    out.insert(name, Override::Patch(patch));
                }
                _ => issues.push(
                    name,
                    "must be false (disable), true, or a map of fields to patch",
                ),
            }
        }
        issues.finish()?;
        Ok(Overrides(out))
    }

    /// Serializes to YAML.
    pub fn to_yaml(&self) -> Result<String, CatalogError> {
        super::parse::to_yaml(self)
    }

    /// True when there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Applies an RFC 7396 merge patch to `target` in place.
pub fn merge_patch(target: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, pv) in patch {
        match pv {
            Value::Null => {
                target.shift_remove(k);
            }
            Value::Object(pm) => {
                let slot = target
                    .entry(k.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(tm) = slot {
                    merge_patch(tm, pm);
                }
            }
            other => {
                target.insert(k.clone(), other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_disable_enable_and_patch() {
        let yaml = "github: false\nfetch: true\nfs:\n  env: [{name: ROOT, value: /data}]\n";
        let o = Overrides::parse(yaml.as_bytes(), Format::Yaml).unwrap();
        assert_eq!(o.0["github"], Override::Enabled(false));
        assert_eq!(o.0["fetch"], Override::Enabled(true));
        assert!(matches!(o.0["fs"], Override::Patch(_)));
        let back = Overrides::parse(o.to_yaml().unwrap().as_bytes(), Format::Yaml).unwrap();
        assert_eq!(back, o);
        assert!(Overrides::parse(b"", Format::Yaml).unwrap().is_empty());
        assert!(Overrides::parse(b"{}", Format::Json).unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        let yaml = "github: 3\nBad: false\nfs: {image: \"not valid\"}\n";
        let err = Overrides::parse(yaml.as_bytes(), Format::Yaml).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("github: must be false"), "{msg}");
        assert!(msg.contains("Bad: server name"), "{msg}");
        assert!(msg.contains("fs.image"), "{msg}");
    }

    #[test]
    fn merge_patch_is_rfc7396() {
        let mut target = json!({"a": 1, "m": {"x": 1, "y": 2}, "l": [1, 2], "s": "k"});
        let patch = json!({"a": null, "m": {"y": 3, "z": 4}, "l": [9], "s": {"n": 1}, "new": "v"});
        let (Value::Object(t), Value::Object(p)) = (&mut target, &patch) else {
            unreachable!()
        };
        merge_patch(t, p);
        assert_eq!(
            target,
            json!({"m": {"x": 1, "y": 3, "z": 4}, "l": [9], "s": {"n": 1}, "new": "v"})
        );
    }
}
