//! Bulk enable/disable (`POST /api/v1/users/{user}/servers`): one change of a user's
//! overrides. Disabling writes `<server>: false`; enabling removes a `false` and keeps any
//! patch. The new overrides then go through [`CatalogStore::put_user_catalogs`], the same
//! policy check as every other user write.

use indexmap::IndexSet;
use serde::Deserialize;

use super::error::CatalogError;
use super::model::Format;
use super::overrides::{Override, Overrides};
use super::parse::{check_size, parse_json, parse_yaml};
use super::server_name::check_server_name;
use super::store::CatalogStore;
use super::user::UserCatalogUpdate;
use super::validate::Issues;

/// The most names one bulk change may carry (both lists together).
pub const MAX_TOGGLED: usize = 500;

/// A validated bulk change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerToggle {
    pub enable: Vec<String>,
    pub disable: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    enable: Vec<String>,
    #[serde(default)]
    disable: Vec<String>,
}

impl ServerToggle {
    /// Parses `{"enable": [...], "disable": [...]}` and checks the names' shape: at most
    /// [`MAX_TOGGLED`], each a server name, none twice and none in both lists.
    pub fn parse(bytes: &[u8], format: Format) -> Result<Self, CatalogError> {
        check_size(bytes)?;
        // A map first: serde would also read the struct from a list of two lists.
        let map: Option<serde_json::Map<String, serde_json::Value>> = match format {
            Format::Yaml => parse_yaml(bytes)?,
            Format::Json => parse_json(bytes)?,
        };
        let raw: Raw = serde_json::from_value(serde_json::Value::Object(map.unwrap_or_default()))
            .map_err(|e| CatalogError::Parse {
            format,
            path: None,
            message: e.to_string(),
        })?;
        let total = raw.enable.len() + raw.disable.len();
        if total > MAX_TOGGLED {
            return Err(CatalogError::TooLarge {
                what: "server list",
                actual: total,
                limit: MAX_TOGGLED,
                unit: "names",
            });
        }
        let mut issues = Issues::default();
        if total == 0 {
            issues.push(
                "enable",
                "name at least one server in `enable` or `disable`",
            );
        }
        let mut seen = IndexSet::new();
        for (list, names) in [("enable", &raw.enable), ("disable", &raw.disable)] {
            for (i, name) in names.iter().enumerate() {
                let path = format!("{list}[{i}]");
                if let Err(e) = check_server_name(name) {
                    issues.push(path, e);
                } else if !seen.insert(name.as_str()) {
                    issues.push(path, format!("`{name}` is named twice"));
                }
            }
        }
        issues.finish()?;
        Ok(ServerToggle {
            enable: raw.enable,
            disable: raw.disable,
        })
    }

    /// `overrides` with this change applied.
    pub fn apply(&self, overrides: &Overrides) -> Overrides {
        let mut out = overrides.clone();
        for name in &self.disable {
            out.0.insert(name.clone(), Override::Enabled(false));
        }
        for name in &self.enable {
            if out.0.get(name) == Some(&Override::Enabled(false)) {
                out.0.shift_remove(name);
            }
        }
        out
    }
}

impl CatalogStore {
    /// Applies `toggle` to the user's overrides: every name must be a server the user's
    /// layers offer (base, their teams' or their custom catalog); a refusal writes nothing.
    pub fn toggle_servers(
        &self,
        slug: &str,
        teams: &[String],
        toggle: &ServerToggle,
    ) -> Result<(), CatalogError> {
        let inputs = self.load_layers(slug, teams)?;
        let offered = |name: &str| {
            inputs
                .base
                .iter()
                .any(|b| b.catalog.value().registry.contains_key(name))
                || inputs
                    .teams
                    .iter()
                    .any(|t| t.catalog.value().registry.contains_key(name))
                || inputs
                    .custom
                    .as_ref()
                    .is_some_and(|c| c.value().registry.contains_key(name))
        };
        let mut issues = Issues::default();
        for (list, names) in [("enable", &toggle.enable), ("disable", &toggle.disable)] {
            for (i, name) in names.iter().enumerate() {
                if !offered(name) {
                    issues.push(
                        format!("{list}[{i}]"),
                        format!(
                            "`{name}` is neither offered to this user nor in their custom catalog"
                        ),
                    );
                }
            }
        }
        issues.finish()?;
        let update = UserCatalogUpdate {
            overrides: Some(toggle.apply(inputs.overrides.value())),
            ..Default::default()
        };
        self.put_user_catalogs(slug, teams, &update)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ErrorClass;
    use serde_json::json;

    #[test]
    fn refuses_doubles_bad_names_and_too_many() {
        let e = ServerToggle::parse(br#"{"enable": ["a"], "disable": ["a"]}"#, Format::Json)
            .unwrap_err();
        assert!(e.to_string().contains("`a` is named twice"), "{e}");
        let e = ServerToggle::parse(br#"{"enable": ["../x"]}"#, Format::Json).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadRequest);
        let e = ServerToggle::parse(br#"{"enabled": ["a"]}"#, Format::Json).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadRequest);
        let many: Vec<String> = (0..=MAX_TOGGLED).map(|i| format!("s{i}")).collect();
        let body = serde_json::to_vec(&json!({ "disable": many })).unwrap();
        let e = ServerToggle::parse(&body, Format::Json).unwrap_err();
        assert_eq!(e.class(), ErrorClass::TooLarge);
        assert!(ServerToggle::parse(b"{}", Format::Json).is_err());
        let e = ServerToggle::parse(br#"[["fetch"], []]"#, Format::Json).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadRequest);
    }

    #[test]
    fn enable_removes_only_a_false_and_keeps_patches() {
        let before = Overrides::from_map(
            [
                ("off".to_string(), json!(false)),
                ("patched".to_string(), json!({"title": "T"})),
            ]
            .into_iter()
            .collect(),
        )
        .unwrap();
        let t = ServerToggle {
            enable: vec!["off".into(), "patched".into()],
            disable: vec!["new".into()],
        };
        let after = t.apply(&before);
        assert!(!after.0.contains_key("off"));
        assert!(matches!(after.0.get("patched"), Some(Override::Patch(_))));
        assert_eq!(after.0.get("new"), Some(&Override::Enabled(false)));
    }
}
