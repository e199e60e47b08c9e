//! How a catalog document becomes a [`Catalog`]: read by hand (not `#[serde(flatten)]`) so the
//! registry streams through the server-count limit and error paths stay precise.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::model::{Catalog, Server};
use super::parse::{note_over_limit, MAX_SERVERS, TOO_MANY_SERVERS};

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
                note_over_limit();
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
    use super::super::error::CatalogError;
    use super::super::format::Format;
    use super::super::parse::{MAX_CATALOG_BYTES, MAX_SERVERS};
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
    fn a_limit_is_recognised_by_kind_not_by_its_words() {
        // A duplicate server named like the limit's message is a parse error, not a limit.
        let yaml = format!("registry:\n  '{TOO_MANY_SERVERS}': {{image: a}}\n  '{TOO_MANY_SERVERS}': {{image: b}}\n");
        let err = Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap_err();
        assert!(matches!(err, CatalogError::Parse { .. }), "{err:?}");
        let json =
            format!(r#"{{"registry":{{"{TOO_MANY_SERVERS}":{{}},"{TOO_MANY_SERVERS}":{{}}}}}}"#);
        let err = Catalog::parse(json.as_bytes(), Format::Json).unwrap_err();
        assert!(matches!(err, CatalogError::Parse { .. }), "{err:?}");
    }

    fn assert_too_many_servers(doc: &str, format: Format) {
        let err = Catalog::parse(doc.as_bytes(), format).unwrap_err();
        assert!(
            matches!(
                err,
                CatalogError::TooLarge {
                    unit: "servers",
                    ..
                }
            ),
            "{format:?}: {err}"
        );
    }

    #[test]
    fn too_many_servers_is_refused() {
        let mut yaml = String::from("registry:\n");
        for i in 0..=MAX_SERVERS {
            yaml.push_str(&format!("  s{i}: {{image: a}}\n"));
        }
        assert_too_many_servers(&yaml, Format::Yaml);
        let mut json = String::from("{\"registry\":{");
        for i in 0..=MAX_SERVERS {
            json.push_str(&format!("\"s{i}\":{{\"image\":\"a\"}},"));
        }
        json.pop();
        json.push_str("}}");
        assert_too_many_servers(&json, Format::Json);
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
