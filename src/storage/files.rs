//! Small file helpers shared by the catalog store, secrets, owners and audit: private
//! permissions, bounded reads and atomic replacement.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use super::atomic::{parent_dir, write_atomic_steps, Step};
use super::error::{FileOp, StorageError};

/// Mode of every directory the front door creates in the data dir.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the front door writes in the data dir.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and missing parents with mode 0700; returns whether `dir` itself was new.
pub fn create_private_dir(dir: &Path) -> Result<bool, StorageError> {
    if dir.is_dir() {
        return Ok(false);
    }
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(|e| StorageError::io(FileOp::CreateDir, dir, e))?;
    Ok(true)
}

/// Reads a whole file of at most `limit` bytes; `Ok(None)` when it does not exist.
pub fn read_limited(path: &Path, limit: usize) -> Result<Option<Vec<u8>>, StorageError> {
    match File::open(path) {
        Ok(f) => read_open_limited(f, path, limit).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(FileOp::Read, path, e)),
    }
}

/// Reads an already opened file, refusing more than `limit` bytes without reading them all.
pub fn read_open_limited(f: File, path: &Path, limit: usize) -> Result<Vec<u8>, StorageError> {
    let mut buf = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| StorageError::io(FileOp::Read, path, e))?;
    if buf.len() > limit {
        return Err(StorageError::TooLarge {
            path: path.to_path_buf(),
            actual: buf.len(),
            limit,
        });
    }
    Ok(buf)
}

/// Replaces `path` atomically with `bytes` (mode 0600): a reader sees the old or the new
/// content, never a mix, and the new content is on disk before this returns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    write_atomic_steps(path, bytes, FILE_MODE).map_err(|(step, e)| {
        let op = match step {
            Step::Write | Step::SyncDir => FileOp::Write,
            Step::Rename => FileOp::Rename,
        };
        StorageError::io(op, path, e)
    })
}

/// Removes a file and syncs its directory; `Ok(false)` when it did not exist.
pub fn remove_file(path: &Path) -> Result<bool, StorageError> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_dir(&parent_dir(path))?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io(FileOp::Remove, path, e)),
    }
}

/// Names of the entries of `dir` (empty when it does not exist), skipping dot files
/// (temp files) and names that are not UTF-8.
pub fn list_dir(dir: &Path) -> Result<Vec<(String, fs::FileType)>, StorageError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StorageError::io(FileOp::List, dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| StorageError::io(FileOp::List, dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let ft = entry
            .file_type()
            .map_err(|e| StorageError::io(FileOp::List, dir, e))?;
        out.push((name, ft));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(FileOp::Write, dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::IoError;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_is_private_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        assert!(create_private_dir(&sub).unwrap());
        assert!(!create_private_dir(&sub).unwrap());
        let mode = fs::metadata(&sub).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let f = sub.join("x.yaml");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        let mode = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(list_dir(&sub).unwrap().len(), 1);
        assert!(remove_file(&f).unwrap());
        assert!(!remove_file(&f).unwrap());
        assert_eq!(read_limited(&f, 10).unwrap(), None);
    }

    #[test]
    fn bounded_read_refuses_big_files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("big");
        fs::write(&f, vec![b'x'; 11]).unwrap();
        let err = read_limited(&f, 10).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert_eq!(read_limited(&f, 11).unwrap().unwrap().len(), 11);
    }

    #[test]
    fn failed_write_reports_path_and_op() {
        let err = write_atomic(Path::new("/nonexistent-dir-xyz/f"), b"x").unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Io(IoError {
                    op: FileOp::Write,
                    ..
                })
            ),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent-dir-xyz/f"), "{err}");
    }
}
