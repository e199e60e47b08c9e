//! The catalog module's error type.

use std::io;
use std::path::PathBuf;

use super::format::Format;
use super::issues::{PolicyError, ValidationError};
use crate::storage::{FileOp, IoError, NameError, NameKind, StorageError};

/// What the HTTP layer should make of an error; one variant per status family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The caller sent something wrong (400).
    BadRequest,
    /// The catalog is well formed but declares what its author may not (400
    /// `policy_violation`).
    Policy,
    /// The caller sent something too big (413).
    TooLarge,
    /// The named catalog or user does not exist (404).
    NotFound,
    /// The server side failed: disk, or a stored file that no longer parses (500).
    Internal,
}

/// Everything that can go wrong reading, validating, merging or storing catalogs.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The body is over a size or count limit; it was not (fully) parsed.
    #[error("{what} is too large: {actual} {unit}, limit {limit}")]
    TooLarge {
        /// What was measured ("catalog body", "registry").
        what: &'static str,
        /// Measured size.
        actual: usize,
        /// Allowed maximum.
        limit: usize,
        /// "bytes" or "servers".
        unit: &'static str,
    },
    /// The body is not valid YAML/JSON of the expected shape.
    #[error("cannot parse {format} catalog{}: {message}", at_path(.path))]
    Parse {
        /// Which syntax was expected.
        format: Format,
        /// Path inside the document where parsing stopped, when known (`registry.github`).
        path: Option<String>,
        /// Parser message, with line/column where the parser gives one.
        message: String,
    },
    /// The body parsed but breaks catalog rules; every problem is listed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The body (or a user's stored layers) declares what the catalog policy refuses.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A base catalog name, team name or user slug is unsafe as a path component.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The named base catalog, team catalog or user does not exist.
    #[error("{} {name:?} not found", kind.noun())]
    NotFound {
        /// What was looked up.
        kind: NameKind,
        /// The name that was looked up.
        name: String,
    },
    /// A file stored in the data dir no longer parses or validates (edited by hand?).
    #[error("stored file {} is unusable (fix or remove it): {source}", path.display())]
    BadFile {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: Box<CatalogError>,
    },
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

fn at_path(path: &Option<String>) -> String {
    match path {
        Some(p) if !p.is_empty() && p != "." => format!(" at {p}"),
        _ => String::new(),
    }
}

impl CatalogError {
    /// Which HTTP status family this error belongs to.
    pub fn class(&self) -> ErrorClass {
        match self {
            CatalogError::TooLarge { .. } => ErrorClass::TooLarge,
            CatalogError::Parse { .. }
            | CatalogError::Invalid(_)
            | CatalogError::InvalidName(_) => ErrorClass::BadRequest,
            CatalogError::Policy(_) => ErrorClass::Policy,
            CatalogError::NotFound { .. } => ErrorClass::NotFound,
            CatalogError::BadFile { .. } | CatalogError::Io(_) => ErrorClass::Internal,
        }
    }

    /// Builds an [`CatalogError::Io`].
    pub fn io(op: FileOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CatalogError::Io(IoError::new(op, path, source))
    }

    /// Re-labels a parse/validation error as coming from a stored file, which makes it an
    /// operator problem (500) instead of a caller problem (400).
    pub(crate) fn in_file(self, path: impl Into<PathBuf>) -> Self {
        match self {
            e @ (CatalogError::Io(_) | CatalogError::BadFile { .. }) => e,
            e => CatalogError::BadFile {
                path: path.into(),
                source: Box::new(e),
            },
        }
    }
}

/// Storage errors keep their op and path; a stored file over its size limit is a
/// [`CatalogError::BadFile`] as before (an operator problem, 500).
impl From<StorageError> for CatalogError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Io(e) => CatalogError::Io(e),
            StorageError::TooLarge {
                path,
                actual,
                limit,
            } => CatalogError::TooLarge {
                what: "stored file",
                actual,
                limit,
                unit: "bytes",
            }
            .in_file(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_distinguishable() {
        let nf = CatalogError::NotFound {
            kind: NameKind::Team,
            name: "ml".into(),
        };
        assert_eq!(nf.class(), ErrorClass::NotFound);
        assert_eq!(nf.to_string(), "team catalog \"ml\" not found");
        let parse = CatalogError::Parse {
            format: Format::Yaml,
            path: Some("registry.x".into()),
            message: "bad".into(),
        };
        assert_eq!(parse.class(), ErrorClass::BadRequest);
        let stored = parse.in_file("/d/catalogs/base/x.yaml");
        assert_eq!(stored.class(), ErrorClass::Internal);
        let msg = stored.to_string();
        assert!(msg.contains("/d/catalogs/base/x.yaml"), "{msg}");
        assert!(msg.contains("at registry.x"), "{msg}");
    }

    #[test]
    fn storage_errors_keep_their_kind_and_wording() {
        let big = StorageError::TooLarge {
            path: "/d/users/a/custom.yaml".into(),
            actual: 11,
            limit: 10,
        };
        let storage_msg = big.to_string();
        let e = CatalogError::from(big);
        assert!(matches!(e, CatalogError::BadFile { .. }), "{e:?}");
        assert_eq!(e.class(), ErrorClass::Internal);
        assert_eq!(
            e.to_string(),
            "stored file /d/users/a/custom.yaml is unusable (fix or remove it): \
             stored file is too large: 11 bytes, limit 10"
        );
        assert_eq!(e.to_string(), storage_msg);
        let io = StorageError::io(FileOp::Rename, "/d/x", std::io::Error::other("boom"));
        let e = CatalogError::from(io);
        assert!(
            matches!(
                e,
                CatalogError::Io(IoError {
                    op: FileOp::Rename,
                    ..
                })
            ),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "cannot rename /d/x: boom");
    }
}
