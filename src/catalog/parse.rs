//! Reading catalog-shaped documents under limits: size before parsing, server count while
//! parsing, and a tight YAML alias/anchor budget so alias bombs fail fast.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::error::CatalogError;
use super::model::{Catalog, Format, Server, MAX_CATALOG_BYTES, MAX_SERVERS};

/// Serializes any model type to YAML; failure would be a bug, reported as a parse error.
pub(crate) fn to_yaml<T: Serialize>(value: &T) -> Result<String, CatalogError> {
    serde_saphyr::to_string(value).map_err(|e| CatalogError::Parse {
        format: Format::Yaml,
        path: None,
        message: format!("cannot serialize: {e}"),
    })
}

pub(crate) fn check_size(bytes: &[u8]) -> Result<(), CatalogError> {
    if bytes.len() > MAX_CATALOG_BYTES {
        return Err(CatalogError::TooLarge {
            what: "catalog body",
            actual: bytes.len(),
            limit: MAX_CATALOG_BYTES,
            unit: "bytes",
        });
    }
    Ok(())
}

/// YAML options: a tight alias budget (catalogs have no business with alias bombs), one
/// document, duplicate keys refused, and YAML 1.2 scalars so `yes`/`0755` stay strings as
/// the gateway's Go reader sees them.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_depth: 64,
            max_nodes: 2_000_000,
            max_events: 4_000_000,
            max_total_scalar_bytes: MAX_CATALOG_BYTES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    }
}

/// Parses YAML with the catalog budget into any model type.
pub(crate) fn parse_yaml<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CatalogError> {
    let mut path = None;
    let res =
        serde_saphyr::with_deserializer_from_slice_with_options(bytes, yaml_options(), |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                path = Some(e.path().to_string());
                e.into_inner()
            })
        });
    res.map_err(|e| match e {
        // Keep our own limit errors recognisable (they travel through serde as text).
        e if e.to_string().contains(TOO_MANY_SERVERS) => too_many_servers(),
        e => CatalogError::Parse {
            format: Format::Yaml,
            path,
            message: e.to_string(),
        },
    })
}

/// Parses JSON into any model type.
pub(crate) fn parse_json<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CatalogError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        if e.inner().to_string().contains(TOO_MANY_SERVERS) {
            return too_many_servers();
        }
        CatalogError::Parse {
            format: Format::Json,
            path: Some(e.path().to_string()),
            message: e.into_inner().to_string(),
        }
    })?;
    de.end().map_err(|e| CatalogError::Parse {
        format: Format::Json,
        path: None,
        message: e.to_string(),
    })?;
    Ok(value)
}

const TOO_MANY_SERVERS: &str = "registry lists more than the maximum number of servers";

fn too_many_servers() -> CatalogError {
    CatalogError::TooLarge {
        what: "registry",
        actual: MAX_SERVERS + 1,
        limit: MAX_SERVERS,
        unit: "servers",
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CatalogVisitor;
        impl<'de> Visitor<'de> for CatalogVisitor {
            type Value = Catalog;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a catalog map with `name`, `displayName` and `registry`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Catalog, E> {
                Ok(Catalog::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Catalog, A::Error> {
                let mut c = Catalog::default();
                let mut has_registry = false;
                while let Some(key) = map.next_key::<String>()? {
                    let seen = match key.as_str() {
                        "name" => c.name.replace(map.next_value()?).is_some(),
                        "displayName" => c.display_name.replace(map.next_value()?).is_some(),
                        "registry" => {
                            c.registry = map.next_value::<Registry>()?.0;
                            std::mem::replace(&mut has_registry, true)
                        }
                        _ => {
                            let v = map.next_value()?;
                            c.extra.insert(key.clone(), v).is_some()
                        }
                    };
                    if seen {
                        return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
                    }
                }
                Ok(c)
            }
        }
        d.deserialize_any(CatalogVisitor)
    }
}

/// `registry`, read one server at a time: stops at the first server past [`MAX_SERVERS`] and
/// refuses duplicate server names (JSON maps would otherwise keep the last one silently).
struct Registry(IndexMap<String, Server>);

impl<'de> Deserialize<'de> for Registry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RegistryVisitor)
    }
}

struct RegistryVisitor;

impl<'de> Visitor<'de> for RegistryVisitor {
    type Value = Registry;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of server names to server entries")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Registry, E> {
        Ok(Registry(IndexMap::new()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Registry, E> {
        Ok(Registry(IndexMap::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Registry, A::Error> {
        let mut out = IndexMap::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(name) = map.next_key::<String>()? {
            if out.len() >= MAX_SERVERS {
                return Err(de::Error::custom(TOO_MANY_SERVERS));
            }
            if out.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate server name {name:?} in registry"
                )));
            }
            let server: Server = map.next_value()?;
            out.insert(name, server);
        }
        Ok(Registry(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_body_is_refused_before_parsing() {
        let body = vec![b' '; MAX_CATALOG_BYTES + 1];
        let err = Catalog::parse(&body, Format::Yaml).unwrap_err();
        assert!(
            matches!(err, CatalogError::TooLarge { unit: "bytes", .. }),
            "{err}"
        );
    }

    #[test]
    fn too_many_servers_is_refused() {
        let mut yaml = String::from("registry:\n");
        for i in 0..=MAX_SERVERS {
            yaml.push_str(&format!("  s{i}: {{image: a}}\n"));
        }
        let err = Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::TooLarge {
                    unit: "servers",
                    ..
                }
            ),
            "{err}"
        );
        let mut json = String::from("{\"registry\":{");
        for i in 0..=MAX_SERVERS {
            json.push_str(&format!("\"s{i}\":{{\"image\":\"a\"}},"));
        }
        json.pop();
        json.push_str("}}");
        let err = Catalog::parse(json.as_bytes(), Format::Json).unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::TooLarge {
                    unit: "servers",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut doc = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        doc.push_str("registry: {}\n");
        let start = std::time::Instant::now();
        let err = Catalog::parse(doc.as_bytes(), Format::Yaml).unwrap_err();
        assert!(matches!(err, CatalogError::Parse { .. }), "{err}");
        // Generous: an expanding parser takes minutes and gigabytes; a loaded CI machine
        // must not turn this guard into a flaky timer.
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn duplicates_and_bad_shapes_name_the_place() {
        let dup = "registry:\n  a: {image: x}\n  a: {image: y}\n";
        let err = Catalog::parse(dup.as_bytes(), Format::Yaml).unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("duplicate"),
            "{err}"
        );
        let dup_json = br#"{"registry":{"a":{"image":"x"},"a":{"image":"y"}}}"#;
        let err = Catalog::parse(dup_json, Format::Json).unwrap_err();
        assert!(err.to_string().contains("duplicate server name"), "{err}");

        let bad = "registry:\n  github: just-a-string\n";
        let err = Catalog::parse(bad.as_bytes(), Format::Yaml).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("registry.github"), "{msg}");
        let err = Catalog::parse(b"{\"registry\": 3", Format::Json).unwrap_err();
        assert!(matches!(
            err,
            CatalogError::Parse {
                format: Format::Json,
                ..
            }
        ));
    }

    #[test]
    fn empty_registry_forms() {
        for body in ["registry:\n", "name: x\n", "registry: {}\n"] {
            let c = Catalog::parse(body.as_bytes(), Format::Yaml).unwrap();
            assert!(c.registry.is_empty(), "{body}");
        }
    }
}
