//! The secrets module's error type. No variant carries a secret value.

use std::path::PathBuf;

use crate::catalog::ErrorClass;
use crate::storage::{too_large_reason, IoError, NameError, StorageError};

/// Everything that can go wrong with keys, sealing or secrets files.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// No usable master key configuration (start-up error).
    #[error("master key: {0}")]
    KeyConfig(String),
    /// A secret name is not of the form `<server>.<key>`.
    #[error("invalid secret name: {0}")]
    InvalidName(String),
    /// A secret value cannot be stored (the reason never quotes the value).
    #[error("invalid value for secret {name:?}: {reason}")]
    InvalidValue {
        /// The secret's name.
        name: String,
        /// Why, without the value.
        reason: &'static str,
    },
    /// The user slug is unsafe as a path component.
    #[error(transparent)]
    InvalidSlug(#[from] NameError),
    /// The user has no secret of that name.
    #[error("user {slug:?} has no secret named {name:?}")]
    NotFound {
        /// User slug.
        slug: String,
        /// Secret name.
        name: String,
    },
    /// A value was sealed with a key that is not in the key ring.
    #[error(
        "{} holds values sealed with key id {kid}, which is not in the key ring \
         (was a previous key removed from the master key file? keep it as a later line until \
         `mcp-frontdoor secrets rotate` has run)",
        path.display()
    )]
    UnknownKey {
        /// The secrets file.
        path: PathBuf,
        /// The key id found in it.
        kid: String,
    },
    /// Decryption failed: wrong key material under a known id, or the file was tampered with
    /// or copied from another user.
    #[error("cannot open secret {name:?} in {}: wrong key or tampered file", path.display())]
    Decrypt {
        /// The secrets file.
        path: PathBuf,
        /// The entry that failed.
        name: String,
    },
    /// A secrets file does not have the expected structure.
    #[error("secrets file {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file changed while `rotate` was re-sealing it; run rotate again.
    #[error("{} changed during rotation; nothing was written, run rotate again", path.display())]
    Concurrent {
        /// The file.
        path: PathBuf,
    },
    /// The operating system's random generator failed.
    #[error("random generator failed: {0}")]
    Rng(String),
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl SecretsError {
    /// Which HTTP status family this error belongs to.
    pub fn class(&self) -> ErrorClass {
        match self {
            SecretsError::InvalidName(_)
            | SecretsError::InvalidValue { .. }
            | SecretsError::InvalidSlug(_) => ErrorClass::BadRequest,
            SecretsError::NotFound { .. } => ErrorClass::NotFound,
            _ => ErrorClass::Internal,
        }
    }
}

/// File helpers report [`StorageError`]; keep their op and path.
impl From<StorageError> for SecretsError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Io(e) => SecretsError::Io(e),
            StorageError::TooLarge {
                path,
                actual,
                limit,
            } => SecretsError::Corrupt {
                path,
                reason: too_large_reason(actual, limit),
            },
        }
    }
}
