//! A user's configuration as one document, for export and import
//! (`GET/PUT /api/v1/users/{user}/config`): `{version: 1, user, custom, overrides}`. Secrets
//! are not part of it. An import replaces both parts and goes through
//! [`UserCatalogUpdate::parse`] and [`CatalogStore::put_user_catalogs`], the same checks as
//! `PUT /users/{user}/catalogs`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::CatalogError;
use super::model::{Catalog, Format};
use super::overrides::Overrides;
use super::parse::{check_size, parse_json, parse_yaml, to_yaml};
use super::store::CatalogStore;
use super::user::UserCatalogUpdate;
use super::validate::{Issues, ValidationError};

/// The document's format version; others are refused.
pub const CONFIG_VERSION: u32 = 1;

/// An exported configuration.
#[derive(Debug, Serialize)]
pub struct UserConfig {
    pub version: u32,
    /// Whose it is (informational: an import goes to the user of its path).
    pub user: String,
    /// The custom catalog, `null` when the user has none.
    pub custom: Option<Catalog>,
    pub overrides: Overrides,
}

impl UserConfig {
    /// As YAML.
    pub fn to_yaml(&self) -> Result<String, CatalogError> {
        to_yaml(self)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: Value,
    /// Ignored: the path names the user (so an export of one user imports into another).
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<Value>,
    #[serde(default)]
    custom: Option<Value>,
    #[serde(default)]
    overrides: Option<Value>,
}

/// Parses an import: version 1, no unknown keys; `custom` absent or `null` means none,
/// `overrides` absent means none. Validated like a `PUT /users/{user}/catalogs` body.
pub fn parse_import(bytes: &[u8], format: Format) -> Result<UserCatalogUpdate, CatalogError> {
    check_size(bytes)?;
    // A map first: serde would also read a struct from a list (`[1, 2]` as version and user).
    let map: Option<Map<String, Value>> = match format {
        Format::Yaml => parse_yaml(bytes)?,
        Format::Json => parse_json(bytes)?,
    };
    let Some(map) = map else {
        return Err(invalid("version", "an empty document; export one first"));
    };
    let raw: Raw = serde_json::from_value(Value::Object(map)).map_err(|e| CatalogError::Parse {
        format,
        path: None,
        message: e.to_string(),
    })?;
    if raw.version != CONFIG_VERSION {
        return Err(invalid(
            "version",
            &format!(
                "must be {CONFIG_VERSION} (this front door reads version {CONFIG_VERSION} only)"
            ),
        ));
    }
    // The two parts, as the catalogs route's body: its parser validates them, naming
    // `custom.…` and `overrides.…` in its messages.
    let mut parts = Map::new();
    let clear_custom = matches!(raw.custom, None | Some(Value::Null));
    if let Some(c) = raw.custom.filter(|c| !c.is_null()) {
        parts.insert("custom".into(), c);
    }
    parts.insert(
        "overrides".into(),
        raw.overrides
            .filter(|o| !o.is_null())
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    let body = serde_json::to_vec(&parts).map_err(|e| CatalogError::Parse {
        format: Format::Json,
        path: None,
        message: e.to_string(),
    })?;
    let mut update = UserCatalogUpdate::parse(&body, Format::Json)?;
    update.clear_custom = clear_custom;
    Ok(update)
}

fn invalid(path: &str, message: &str) -> CatalogError {
    let mut issues = Issues::default();
    issues.push(path, message);
    CatalogError::Invalid(ValidationError {
        issues: issues.into_vec(),
    })
}

impl CatalogStore {
    /// The user's configuration for export.
    pub fn export_user_config(&self, slug: &str) -> Result<UserConfig, CatalogError> {
        Ok(UserConfig {
            version: CONFIG_VERSION,
            user: slug.to_string(),
            custom: self.get_custom(slug)?.map(|c| (*c).clone()),
            overrides: self.get_overrides(slug)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ErrorClass;

    #[test]
    fn version_and_keys_are_checked() {
        let e = parse_import(br#"{"version": 2, "overrides": {}}"#, Format::Json).unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let e = parse_import(br#"{"overrides": {}}"#, Format::Json).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadRequest);
        let e = parse_import(br#"[1, 2]"#, Format::Json).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadRequest);
        let e =
            parse_import(br#"{"version": 1, "secrets": {"a.b": "x"}}"#, Format::Json).unwrap_err();
        assert_eq!(e.class(), ErrorClass::BadRequest);
        let e =
            parse_import(br#"{"version": 1, "overrides": {"x": 3}}"#, Format::Json).unwrap_err();
        assert!(e.to_string().contains("overrides.x"), "{e}");
    }

    #[test]
    fn null_custom_clears_and_user_is_ignored() {
        let u = parse_import(
            b"version: 1\nuser: someone-else\ncustom: null\noverrides: {fetch: false}\n",
            Format::Yaml,
        )
        .unwrap();
        assert!(u.clear_custom && u.custom.is_none());
        assert_eq!(u.overrides.unwrap().0.len(), 1);
        let u = parse_import(
            br#"{"version": 1, "custom": {"registry": {"mine": {"image": "me/x"}}}}"#,
            Format::Json,
        )
        .unwrap();
        assert!(!u.clear_custom && u.custom.is_some());
        assert!(u.overrides.unwrap().0.is_empty());
    }
}
