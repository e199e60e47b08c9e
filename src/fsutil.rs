//! File writes that never leave a half-written file: temp file in the same directory (so the
//! rename stays on one filesystem), write, fsync, rename over the target, fsync the directory
//! so the rename itself survives a crash. The one implementation; `catalog::fsutil` wraps it
//! with its error type.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Which step of an atomic write failed (the catalog store counts them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Creating, writing or syncing the temp file.
    Write,
    /// Renaming it over the target.
    Rename,
    /// Syncing the directory.
    SyncDir,
}

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Atomically replaces `path` with `bytes`, created with permission `mode`; on failure the
/// temp file is removed and the step that failed is named.
pub fn write_atomic_steps(path: &Path, bytes: &[u8], mode: u32) -> Result<(), (Step, io::Error)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = parent_dir(path);
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Leading dot: directory listings skip it, and no valid stored name starts with one.
    let tmp = dir.join(format!(
        ".{base}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        // The umask may have narrowed `mode`; the caller's intent wins.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err((Step::Write, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err((Step::Rename, e));
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| (Step::SyncDir, e))
}

/// [`write_atomic_steps`] for callers that only need the I/O error.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_steps(path, bytes, mode).map_err(|(_, e)| e)
}

/// Why a file this process must read (a key, a certificate) cannot be read, saying what to
/// run when it is a permission problem: the file's mode and owner and this process's ids. In
/// the compose deployment the front door runs as uid 0 without capabilities, and uid 0 without
/// `CAP_DAC_OVERRIDE` reads only files it owns or that its group or others may read, so a key
/// left 0600 by the user who made it is unreadable there. The path itself is left to the
/// caller's message.
pub fn read_error(path: &Path, e: &io::Error) -> String {
    if e.kind() != io::ErrorKind::PermissionDenied {
        return e.to_string();
    }
    use std::os::unix::fs::MetadataExt;
    let me = process_ids()
        .map(|(u, g)| format!("this process runs as uid {u}, gid {g}"))
        .unwrap_or_else(|| "this process's uid is unknown".into());
    let (uid, gid) = process_ids().unwrap_or((0, 0));
    // docker-compose.yml mounts ./certs there: name the host's file too.
    let compose = path
        .strip_prefix("/etc/mcp-frontdoor/certs")
        .map(|rest| {
            format!(
                " (docker-compose.yml: on the host, `sudo chown {uid}:{gid} certs/{}`)",
                rest.display()
            )
        })
        .unwrap_or_default();
    match fs::metadata(path) {
        Ok(m) => format!(
            "permission denied: the file has mode {:04o} and belongs to uid {}, gid {}; {me}, \
             and without CAP_DAC_OVERRIDE (a container with cap_drop ALL) even uid 0 reads only \
             what it owns or what its group or others may read. Give the file to this uid, \
             keeping it private: `chown {uid}:{gid} {p}` where the file lives{compose}",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            p = path.display(),
        ),
        Err(_) => format!(
            "permission denied: a directory on the way to it cannot be searched by this \
             process ({me}); check the directories' modes and owners"
        ),
    }
}

/// Effective uid and gid of this process (from /proc, without unsafe FFI).
fn process_ids() -> Option<(u32, u32)> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let effective = |key: &str| -> Option<u32> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((effective("Uid:")?, effective("Gid:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_with_the_mode_asked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_failed_write_names_its_step_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("is-a-dir");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("x"), b"x").unwrap();
        let (step, _) = write_atomic_steps(&target, b"data", 0o600).unwrap_err();
        assert_eq!(step, Step::Rename);
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "temp file removed"
        );
    }
}
