//! The body of `PUT /api/v1/users/{user}/catalogs`: a user's custom catalog and overrides in
//! one document, `{custom: <catalog>, overrides: {<server>: false | {...}}}`. A key that is
//! absent leaves that file as it is. Both parts are validated, and then held to the catalog
//! policy together with the layers they will be merged with, before anything is written.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

use super::digest::Digested;
use super::error::CatalogError;
use super::model::{Catalog, Format};
use super::overrides::Overrides;
use super::parse::{check_size, parse_json, parse_yaml};
use super::store::CatalogStore;
use super::validate::{validate, ValidationError};

/// A parsed and validated user catalog update.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserCatalogUpdate {
    /// New `custom.yaml`, if given.
    pub custom: Option<Catalog>,
    /// New `overrides.yaml`, if given.
    pub overrides: Option<Overrides>,
    /// Remove `custom.yaml` (an import without a custom catalog); `custom` is then `None`.
    pub clear_custom: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    custom: Option<Catalog>,
    #[serde(default)]
    overrides: Option<IndexMap<String, Value>>,
}

/// Prefixes issue paths so the caller sees `custom.registry.x.image`.
fn prefixed(prefix: &str, e: CatalogError) -> CatalogError {
    match e {
        CatalogError::Invalid(ValidationError { issues }) => {
            CatalogError::Invalid(ValidationError {
                issues: issues
                    .into_iter()
                    .map(|mut i| {
                        i.path = format!("{prefix}.{}", i.path);
                        i
                    })
                    .collect(),
            })
        }
        other => other,
    }
}

impl UserCatalogUpdate {
    /// Parses and validates the body (YAML or JSON, by the caller's `Content-Type`).
    pub fn parse(bytes: &[u8], format: Format) -> Result<Self, CatalogError> {
        check_size(bytes)?;
        let raw: Option<Raw> = match format {
            Format::Yaml => parse_yaml(bytes)?,
            Format::Json => parse_json(bytes)?,
        };
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        if let Some(c) = &raw.custom {
            validate(c).map_err(|e| prefixed("custom", e.into()))?;
        }
        let overrides = raw
            .overrides
            .map(Overrides::from_map)
            .transpose()
            .map_err(|e| prefixed("overrides", e))?;
        Ok(UserCatalogUpdate {
            custom: raw.custom,
            overrides,
            clear_custom: false,
        })
    }
}

impl CatalogStore {
    /// Writes the parts of `update` that are present (custom first, then overrides), once
    /// the layers they make with what is stored (and the admin layers of `teams`) pass the
    /// catalog policy; a refusal writes nothing.
    pub fn put_user_catalogs(
        &self,
        slug: &str,
        teams: &[String],
        update: &UserCatalogUpdate,
    ) -> Result<(), CatalogError> {
        let mut inputs = self.load_layers(slug, teams)?;
        if let Some(c) = &update.custom {
            inputs.custom = Some(Digested::new(c.clone()));
        } else if update.clear_custom {
            inputs.custom = None;
        }
        if let Some(o) = &update.overrides {
            inputs.overrides = Digested::new(o.clone());
        }
        self.policy().check_user_layers(&inputs, None)?;
        if let Some(c) = &update.custom {
            self.put_custom(slug, c)?;
        }
        if let Some(o) = &update.overrides {
            self.put_overrides(slug, o)?;
        }
        if update.clear_custom && update.custom.is_none() {
            self.delete_custom(slug)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{DataLayout, ErrorClass};
    use std::sync::Arc;

    #[test]
    fn parses_both_parts_or_either() {
        let body = br#"{"custom": {"registry": {"mine": {"image": "me/x"}}}, "overrides": {"fetch": false}}"#;
        let u = UserCatalogUpdate::parse(body, Format::Json).unwrap();
        assert!(u.custom.unwrap().registry.contains_key("mine"));
        assert_eq!(u.overrides.unwrap().0.len(), 1);
        let u = UserCatalogUpdate::parse(b"overrides: {fetch: false}\n", Format::Yaml).unwrap();
        assert!(u.custom.is_none() && u.overrides.is_some());
        assert_eq!(
            UserCatalogUpdate::parse(b"", Format::Yaml).unwrap(),
            Default::default()
        );
    }

    #[test]
    fn errors_name_the_part() {
        let err =
            UserCatalogUpdate::parse(b"custom: {registry: {x: {}}}\n", Format::Yaml).unwrap_err();
        assert!(err.to_string().contains("custom.registry.x.image"), "{err}");
        let err = UserCatalogUpdate::parse(b"overrides: {x: 3}\n", Format::Yaml).unwrap_err();
        assert!(err.to_string().contains("overrides.x"), "{err}");
        let err = UserCatalogUpdate::parse(b"customs: {}\n", Format::Yaml).unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadRequest);
    }

    #[test]
    fn store_writes_present_parts() {
        let d = tempfile::tempdir().unwrap();
        let s = CatalogStore::open(DataLayout::new(d.path()), Arc::default()).unwrap();
        let u = UserCatalogUpdate::parse(b"overrides: {fetch: false}\n", Format::Yaml).unwrap();
        s.put_user_catalogs("alice", &[], &u).unwrap();
        assert!(s.get_custom("alice").unwrap().is_none());
        assert_eq!(s.get_overrides("alice").unwrap().0.len(), 1);
    }
}
