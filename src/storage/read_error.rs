//! Messages for files this process must read but cannot (keys, certificates), naming the fix
//! when it is a permission problem.

use std::fs;
use std::io;
use std::path::Path;

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
