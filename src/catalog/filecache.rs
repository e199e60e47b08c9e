//! Parsed-file cache keyed by path and validated by a stamp of the open file.
//!
//! Loading a user's inputs then costs one `open` + `fstat` per file instead of a parse, so a
//! cache hit on the merged catalog stays in the microseconds. The stamp (device, inode, size,
//! mtime) of the *open* file is compared, so a file replaced by rename — how every write here
//! works — is always seen as new.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::RwLock;

use super::error::CatalogError;
use super::parse::MAX_CATALOG_BYTES;
use crate::storage::files::read_open_limited;
use crate::storage::FileOp;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

impl Stamp {
    fn of(m: &Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: m.modified().ok(),
        }
    }
}

/// Cache of values parsed from files.
#[derive(Debug)]
pub(crate) struct FileCache<T> {
    entries: RwLock<HashMap<PathBuf, (Stamp, T)>>,
}

impl<T: Clone> FileCache<T> {
    pub(crate) fn new() -> Self {
        FileCache {
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Returns the parsed content of `path` (`None` if it does not exist), parsing only when
    /// the file changed since the last call. Parse errors are reported against the file.
    pub(crate) fn load(
        &self,
        path: &Path,
        parse: impl FnOnce(&[u8]) -> Result<T, CatalogError>,
    ) -> Result<Option<T>, CatalogError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.entries.write().remove(path);
                return Ok(None);
            }
            Err(e) => return Err(CatalogError::io(FileOp::Read, path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| CatalogError::io(FileOp::Read, path, e))?;
        let stamp = Stamp::of(&meta);
        if let Some((s, v)) = self.entries.read().get(path) {
            if *s == stamp {
                return Ok(Some(v.clone()));
            }
        }
        let bytes = read_open_limited(file, path, MAX_CATALOG_BYTES)?;
        let value = parse(&bytes).map_err(|e| e.in_file(path))?;
        self.entries
            .write()
            .insert(path.to_path_buf(), (stamp, value.clone()));
        Ok(Some(value))
    }

    /// Forgets `path` (after this process wrote or removed it).
    pub(crate) fn forget(&self, path: &Path) {
        self.entries.write().remove(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::files::write_atomic;
    use std::cell::Cell;

    #[test]
    fn reparses_only_on_change() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let cache: FileCache<String> = FileCache::new();
        let parses = Cell::new(0);
        let parse = |b: &[u8]| {
            parses.set(parses.get() + 1);
            Ok(String::from_utf8_lossy(b).into_owned())
        };
        assert_eq!(cache.load(&p, parse).unwrap(), None);
        write_atomic(&p, b"one").unwrap();
        assert_eq!(cache.load(&p, parse).unwrap().as_deref(), Some("one"));
        assert_eq!(cache.load(&p, parse).unwrap().as_deref(), Some("one"));
        assert_eq!(parses.get(), 1);
        write_atomic(&p, b"two").unwrap();
        assert_eq!(cache.load(&p, parse).unwrap().as_deref(), Some("two"));
        assert_eq!(parses.get(), 2);
    }
}
