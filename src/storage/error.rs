//! The storage module's error type: what failed (the kind, [`FileOp`] for I/O) and on which
//! path. Callers convert it into their own error types by variant, never by message text.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// File operation that failed; also the `op` label of the file error metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileOp {
    /// Reading a file or its metadata.
    Read,
    /// Writing or syncing a temp file.
    Write,
    /// Renaming a temp file into place.
    Rename,
    /// Creating a directory.
    CreateDir,
    /// Listing a directory.
    List,
    /// Removing a file.
    Remove,
}

impl FileOp {
    /// Lower-case name used in messages and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FileOp::Read => "read",
            FileOp::Write => "write",
            FileOp::Rename => "rename",
            FileOp::CreateDir => "create_dir",
            FileOp::List => "list",
            FileOp::Remove => "remove",
        }
    }
}

impl fmt::Display for FileOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed filesystem operation, with its op and path: the one I/O error of the data dir,
/// carried as it is by catalog, secrets and owner errors.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct IoError {
    /// Which operation.
    pub op: FileOp,
    /// On which path.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    pub fn new(op: FileOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Everything that can go wrong reading or writing the data dir.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A stored file is larger than its reader accepts (edited by hand?); it was not read
    /// whole.
    #[error(
        "stored file {} is unusable (fix or remove it): {}",
        path.display(),
        too_large_reason(*actual, *limit)
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Bytes read before giving up (at least `limit + 1`).
        actual: usize,
        /// Allowed maximum in bytes.
        limit: usize,
    },
}

impl StorageError {
    /// Builds a [`StorageError::Io`].
    pub fn io(op: FileOp, path: impl Into<PathBuf>, source: io::Error) -> Self {
        StorageError::Io(IoError::new(op, path, source))
    }

    /// The path the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            StorageError::Io(e) => &e.path,
            StorageError::TooLarge { path, .. } => path,
        }
    }
}

/// The reason part of a [`StorageError::TooLarge`] message (the wording catalog and secrets
/// errors have always used).
pub fn too_large_reason(actual: usize, limit: usize) -> String {
    format!("stored file is too large: {actual} bytes, limit {limit}")
}
