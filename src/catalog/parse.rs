//! Reading catalog-shaped documents under limits: size before parsing, server count while
//! parsing, and a tight YAML alias/anchor budget so alias bombs fail fast.

use serde::de;
use serde::Serialize;

use super::error::CatalogError;
use super::format::Format;

/// Largest catalog body accepted, checked before any parsing.
pub const MAX_CATALOG_BYTES: usize = 5 * 1024 * 1024;
/// Most servers one catalog may list; enforced while parsing, not after.
pub const MAX_SERVERS: usize = 10_000;

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
    over_limit();
    let res =
        serde_saphyr::with_deserializer_from_slice_with_options(bytes, yaml_options(), |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                path = Some(e.path().to_string());
                e.into_inner()
            })
        });
    let over = over_limit();
    res.map_err(|e| match over {
        true => too_many_servers(),
        false => CatalogError::Parse {
            format: Format::Yaml,
            path,
            message: e.to_string(),
        },
    })
}

/// Parses JSON into any model type.
pub(crate) fn parse_json<T: de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CatalogError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    over_limit();
    let value = serde_path_to_error::deserialize(&mut de);
    let over = over_limit();
    let value = value.map_err(|e| {
        if over {
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

/// What the registry reader says when it stops at [`MAX_SERVERS`]; serde carries only this
/// text, so the reader also raises [`OVER_LIMIT`], by which the error is recognised.
pub(crate) const TOO_MANY_SERVERS: &str = "registry lists more than the maximum number of servers";

thread_local! {
    /// Set by a reader that stopped at a limit during the parse running on this thread.
    static OVER_LIMIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by a reader that stops at a limit, just before it fails.
pub(crate) fn note_over_limit() {
    OVER_LIMIT.with(|f| f.set(true));
}

/// Whether the parse that just ended on this thread stopped at a limit (and clears it).
fn over_limit() -> bool {
    OVER_LIMIT.with(|f| f.replace(false))
}

fn too_many_servers() -> CatalogError {
    CatalogError::TooLarge {
        what: "registry",
        actual: MAX_SERVERS + 1,
        limit: MAX_SERVERS,
        unit: "servers",
    }
}
