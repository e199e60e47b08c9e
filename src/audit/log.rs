//! The audit file: appended one whole line per `write` (O_APPEND), fsync'd before the caller
//! answers, rotated by size without losing a line, and chained across files and restarts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::chain::{head_on_disk, line_hash, rotated_numbers, rotated_path};
use super::AuditEntry;
use crate::config::AuditConfig;
use crate::storage::files::{create_private_dir, FILE_MODE};

/// When the active file is rotated and how many rotated files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate before a line would take `audit.log` past this many bytes.
    pub max_file_size: u64,
    /// Rotated files kept; older ones are deleted.
    pub max_files: u32,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        (&AuditConfig::default()).into()
    }
}

impl From<&AuditConfig> for RotationPolicy {
    fn from(c: &AuditConfig) -> Self {
        // `validate()` refuses smaller values; commands that read the config unvalidated
        // (`secrets rotate`) must not rotate every line away either.
        RotationPolicy {
            max_file_size: c.max_file_size.0.max(1 << 10),
            max_files: u32::try_from(c.max_files).unwrap_or(u32::MAX).max(1),
        }
    }
}

/// The audit module's error.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log could not be opened or written.
    #[error("audit log {}: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// Opens `path` for appending (created 0600); readable too, to find its last line.
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
}

/// The open active file and where the chain stands.
#[derive(Debug)]
struct Active {
    file: File,
    /// (device, inode) of `file`, to notice a rename or replacement under our feet.
    id: (u64, u64),
    /// Its length after our last write; anything else means another writer (the CLI's
    /// `secrets rotate`) appended, or a write tore, and the head is read again from disk.
    len: u64,
    /// Hash of the last line written, the next line's `prev`.
    head: String,
}

impl Active {
    /// Opens (creating, 0600) the active file and recovers the chain head from disk.
    fn open(path: &Path) -> io::Result<Self> {
        let file = open_append(path)?;
        let meta = file.metadata()?;
        let mut active = Active {
            id: (meta.dev(), meta.ino()),
            len: meta.len(),
            file,
            head: String::new(),
        };
        active.recover(path)?;
        Ok(active)
    }

    /// Re-reads length and head from disk. A torn last line (a crash mid-write) is ended with
    /// a newline first, so the next line starts on its own; the torn one stays, for `audit
    /// verify` to report, and the chain links to its bytes as written.
    fn recover(&mut self, path: &Path) -> io::Result<()> {
        let mut len = self.file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut last, len - 1)?;
            if last[0] != b'\n' {
                self.file.write_all(b"\n")?;
                self.file.sync_data()?;
                len += 1;
            }
        }
        self.len = len;
        self.head = head_on_disk(path)?;
        Ok(())
    }
}

/// Append-only, hash-chained, size-rotated audit log; safe to share across threads.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    policy: RotationPolicy,
    active: Mutex<Active>,
}

impl AuditLog {
    /// Opens (creating, 0600, and its directory, 0700) the log for appending; the chain
    /// continues from the last line on disk.
    pub fn open(path: &Path, policy: RotationPolicy) -> Result<Self, AuditError> {
        let io_err = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|e| io_err(io::Error::other(e.to_string())))?;
        }
        let active = Active::open(path).map_err(io_err)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            policy,
            active: Mutex::new(active),
        })
    }

    /// The active file (`audit.log`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as a JSON line chained to the line before, and fsyncs it before
    /// returning.
    pub fn append(&self, entry: &AuditEntry) -> Result<(), AuditError> {
        let io_err = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        // Everything under the lock: the head, the size check and the write are one step.
        let mut active = self.active.lock();
        self.catch_up(&mut active).map_err(io_err)?;
        let mut bytes = entry.encode(&active.head).map_err(|e| io_err(e.into()))?;
        let head = line_hash(&bytes);
        bytes.push(b'\n');
        if active.len > 0 && active.len + bytes.len() as u64 > self.policy.max_file_size {
            if let Err(e) = self.rotate(&mut active) {
                // Losing the line would be worse than a file over its size.
                tracing::warn!(error = %e, path = %self.path.display(),
                    "audit log rotation failed; appending to the current file");
            }
        }
        // One write of a whole line with O_APPEND: lines never interleave, even with
        // another process appending.
        let written = active
            .file
            .write_all(&bytes)
            .and_then(|()| active.file.sync_data());
        match written {
            Ok(()) => {
                active.len += bytes.len() as u64;
                active.head = head;
                Ok(())
            }
            Err(e) => {
                // Part of the line may be on disk: make the next append read the state again.
                active.len = u64::MAX;
                Err(io_err(e))
            }
        }
    }

    /// Brings `active` up to date when the file changed since our last write: renamed or
    /// replaced (reopen), or appended to by someone else (re-read the head).
    fn catch_up(&self, active: &mut Active) -> io::Result<()> {
        let same_file = fs::metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == active.id)
            .unwrap_or(false);
        if !same_file {
            *active = Active::open(&self.path)?;
        } else if active.file.metadata()?.len() != active.len {
            active.recover(&self.path)?;
        }
        Ok(())
    }

    /// Every retained file, oldest first, opened together under the writer's lock: a
    /// rotation during a read then moves names, not the bytes being read.
    pub(super) fn open_files(&self) -> io::Result<Vec<File>> {
        let _active = self.active.lock();
        let mut files = Vec::new();
        for path in super::chain::log_files(&self.path)? {
            match File::open(&path) {
                Ok(f) => files.push(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(files)
    }

    /// Runs `f` on the log's files with no line being appended meanwhile; `f` may rotate the
    /// active file through the function it is given.
    pub(super) fn exclusive<R>(
        &self,
        f: impl FnOnce(&Path, &mut dyn FnMut() -> io::Result<()>) -> io::Result<R>,
    ) -> io::Result<R> {
        let mut active = self.active.lock();
        self.catch_up(&mut active)?;
        let mut rotate = || self.rotate(&mut active);
        f(&self.path, &mut rotate)
    }

    /// `audit.log` → `audit.log.1`, older files one number up, files past `max_files`
    /// deleted, a fresh `audit.log` opened. Renames never overwrite: only the files below the
    /// first free number move (a crash mid-rotation leaves a gap, which the next rotation
    /// fills), so no line is ever lost to a rotation; only retention deletes.
    fn rotate(&self, active: &mut Active) -> io::Result<()> {
        let existing = rotated_numbers(&self.path)?;
        let mut free = 1;
        while existing.binary_search(&free).is_ok() {
            free += 1;
        }
        for n in (1..free).rev() {
            fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1))?;
        }
        fs::rename(&self.path, rotated_path(&self.path, 1))?;
        for n in rotated_numbers(&self.path)? {
            if n > self.policy.max_files {
                fs::remove_file(rotated_path(&self.path, n))?;
            }
        }
        let dir = crate::storage::atomic::parent_dir(&self.path);
        File::open(&dir).and_then(|d| d.sync_all())?;
        let file = open_append(&self.path)?;
        let meta = file.metadata()?;
        // The head stays: the new file's first line links to the old file's last.
        active.file = file;
        active.id = (meta.dev(), meta.ino());
        active.len = meta.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{chain, verify, Action, Actor, Anchor, Outcome, Target};
    use super::*;

    fn entry(i: usize) -> AuditEntry {
        AuditEntry::new(
            Actor::User(format!("user-{i}")),
            Action::SecretDelete,
            Target::secret(&format!("user-{i}"), "github.token"),
            Outcome::Success,
        )
    }

    fn lines_of(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn rotation_keeps_max_files_and_the_chain_verifies_across_them() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let policy = RotationPolicy {
            max_file_size: 1024,
            max_files: 3,
        };
        let log = AuditLog::open(&path, policy).unwrap();
        for i in 0..200 {
            log.append(&entry(i)).unwrap();
        }
        let mut names: Vec<String> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["audit.log", "audit.log.1", "audit.log.2", "audit.log.3"]
        );
        for n in &names {
            let len = fs::metadata(d.path().join(n)).unwrap().len();
            assert!(len <= 1024, "{n} is {len} bytes");
        }
        // The first line of each newer file links to the last line of the file before it.
        let files = chain::log_files(&path).unwrap();
        for pair in files.windows(2) {
            let last = lines_of(&pair[0]).pop().unwrap();
            let first: serde_json::Value = serde_json::from_str(&lines_of(&pair[1])[0]).unwrap();
            assert_eq!(first["prev"], chain::line_hash(last.as_bytes()));
        }
        let report = verify(&path).unwrap();
        assert_eq!(report.files.len(), 4);
        assert!(
            matches!(report.anchor, Anchor::Unchecked { ref file, .. } if file.ends_with("audit.log.3")),
            "{report}"
        );
        // The newest line is the last one written.
        let last: serde_json::Value =
            serde_json::from_str(&lines_of(&path).pop().unwrap()).unwrap();
        assert_eq!(last["actor"], "user:user-199");
    }

    #[test]
    fn rotation_loses_no_line_while_files_are_retained() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let policy = RotationPolicy {
            max_file_size: 2048,
            max_files: 50,
        };
        let log = AuditLog::open(&path, policy).unwrap();
        for i in 0..300 {
            log.append(&entry(i)).unwrap();
        }
        let report = verify(&path).unwrap();
        assert_eq!(report.lines, 300);
        assert!(report.files.len() > 5, "{report}");
        assert_eq!(report.anchor, Anchor::Genesis);
    }

    #[test]
    fn a_restart_continues_the_chain_even_right_after_a_rotation() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let policy = RotationPolicy {
            max_file_size: 1024,
            max_files: 5,
        };
        let log = AuditLog::open(&path, policy).unwrap();
        for i in 0..3 {
            log.append(&entry(i)).unwrap();
        }
        let head = chain::line_hash(lines_of(&path).pop().unwrap().as_bytes());
        drop(log);
        let log = AuditLog::open(&path, policy).unwrap();
        log.append(&entry(3)).unwrap();
        let fourth: serde_json::Value = serde_json::from_str(&lines_of(&path)[3]).unwrap();
        assert_eq!(fourth["prev"], head, "the restart picked up the last line");
        drop(log);
        // A rotation that left an empty audit.log: the head is in audit.log.1.
        fs::rename(&path, chain::rotated_path(&path, 1)).unwrap();
        fs::write(&path, "").unwrap();
        let log = AuditLog::open(&path, policy).unwrap();
        log.append(&entry(4)).unwrap();
        assert_eq!(verify(&path).unwrap().lines, 5);
    }

    #[test]
    fn another_writer_and_a_torn_line_are_picked_up_before_the_next_append() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let server = AuditLog::open(&path, RotationPolicy::default()).unwrap();
        server.append(&entry(0)).unwrap();
        // The CLI (`secrets rotate`) appends through its own handle while the server runs.
        AuditLog::open(&path, RotationPolicy::default())
            .unwrap()
            .append(&entry(1))
            .unwrap();
        server.append(&entry(2)).unwrap();
        assert_eq!(verify(&path).unwrap().lines, 3);
        // A torn write: the next line still starts on its own line, and verify names the tear.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"prev":"00"#).unwrap();
        server.append(&entry(3)).unwrap();
        let lines = lines_of(&path);
        assert_eq!(lines.len(), 5);
        let last: serde_json::Value = serde_json::from_str(&lines[4]).unwrap();
        assert_eq!(last["prev"], chain::line_hash(lines[3].as_bytes()));
        let err = verify(&path).unwrap_err().to_string();
        assert!(
            err.contains("line 4") && err.contains("not a JSON"),
            "{err}"
        );
    }
}
