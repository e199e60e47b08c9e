//! Retention by age (`audit.max_age`): lines older than that are deleted, oldest first, on
//! top of the size bound that rotation keeps (`max_file_size` × `max_files`).
//!
//! Only the oldest end of the log is ever cut, so what stays is still one chain whose first
//! link points into deleted lines, the case `audit verify` already reports for rotation.
//! Cutting happens in rotated files only: when the active file starts with an old line it is
//! rotated first, so a rotated file is left whenever lines were deleted (`verify` counts a
//! chain that starts mid-air in `audit.log` itself as truncated). Whole files go when their
//! newest line is old; the first file that still has young lines is rewritten without its old
//! ones (a new file renamed over it). The newest line of the log always stays, so a restart
//! still finds the chain's head on disk.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::chain::log_files;
use super::AuditLog;
use crate::storage::atomic::write_atomic;
use crate::storage::files::FILE_MODE;
use crate::time::rfc3339_utc;

/// How often retention runs (and once at start).
const EVERY: Duration = Duration::from_secs(3600);

/// What one retention pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub files: usize,
    pub lines: usize,
}

#[derive(Deserialize)]
struct Time<'a> {
    #[serde(borrow)]
    time: std::borrow::Cow<'a, str>,
}

/// Whether the line is older than `cutoff`; `None` when it carries no readable time.
fn older(line: &[u8], cutoff: &str) -> Option<bool> {
    serde_json::from_slice::<Time>(line)
        .ok()
        .map(|t| *t.time < *cutoff)
}

/// How many leading lines of `lines` are old: lines without a readable time (a torn write)
/// go with the lines before them; at most `keep_last` lines are spared at the end.
fn old_prefix(lines: &[&[u8]], cutoff: &str, spare_last: bool) -> usize {
    let limit = lines.len().saturating_sub(usize::from(spare_last));
    let mut n = 0;
    while n < limit {
        match older(lines[n], cutoff) {
            Some(false) => break,
            Some(true) => n += 1,
            // Unreadable: old only when it follows old lines (or opens the file and an old
            // line follows it).
            None if n > 0 || lines.get(n + 1).and_then(|l| older(l, cutoff)) == Some(true) => {
                n += 1
            }
            None => break,
        }
    }
    n
}

/// The bytes of the file at `path` (a rotated file: at most `max_file_size`).
fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// Deletes the lines of the log at `active` written before `cutoff`; `rotate` rotates the
/// active file (the caller holds the writer's lock).
pub(super) fn prune(
    active: &Path,
    cutoff: SystemTime,
    rotate: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<Pruned> {
    let cutoff = rfc3339_utc(cutoff);
    // Only the active file's first line decides; the rest of it is not read.
    let mut first = Vec::new();
    BufReader::new(File::open(active)?).read_until(b'\n', &mut first)?;
    let first_is_old = split_lines(&first)
        .first()
        .is_some_and(|l| older(l, &cutoff) != Some(false));
    if first_is_old {
        rotate()?;
    }
    // Oldest first; the active file (last) only holds young lines now, or none.
    let mut files = log_files(active)?;
    let active_empty = match files.last() {
        Some(last) if last == active => fs::metadata(last)?.len() == 0,
        _ => true,
    };
    files.retain(|f| f != active);
    let mut pruned = Pruned::default();
    for (i, path) in files.iter().enumerate() {
        // The newest line of the log is in the last rotated file when the active one is empty.
        let holds_newest = active_empty && i + 1 == files.len();
        let bytes = read_all(path)?;
        let lines = split_lines(&bytes);
        let old = old_prefix(&lines, &cutoff, holds_newest);
        if old == lines.len() {
            fs::remove_file(path)?;
            pruned.files += 1;
            pruned.lines += old;
            continue;
        }
        if old > 0 {
            let mut rest = Vec::with_capacity(bytes.len());
            for l in &lines[old..] {
                rest.extend_from_slice(l);
                rest.push(b'\n');
            }
            write_atomic(path, &rest, FILE_MODE)?;
            pruned.lines += old;
        }
        break;
    }
    Ok(pruned)
}

impl AuditLog {
    /// Deletes the lines written more than `max_age` ago (see the module comment).
    pub fn prune_older_than(&self, max_age: Duration) -> io::Result<Pruned> {
        let cutoff = SystemTime::now()
            .checked_sub(max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        // Under the writer's lock: no line is appended to a file while it is rewritten. The
        // writer notices the replaced file by its inode and reopens it.
        self.exclusive(|path, rotate| prune(path, cutoff, rotate))
    }
}

/// Runs retention at start and then hourly until `stop`; `max_age` zero turns it off.
pub fn spawn_retention(log: Arc<AuditLog>, max_age: Duration, stop: CancellationToken) {
    if max_age.is_zero() {
        return;
    }
    tokio::spawn(async move {
        loop {
            let log = log.clone();
            match tokio::task::spawn_blocking(move || log.prune_older_than(max_age)).await {
                Ok(Ok(p)) if p.lines > 0 => {
                    tracing::info!(
                        files = p.files,
                        lines = p.lines,
                        "audit retention deleted old lines"
                    )
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "audit retention failed"),
                Err(e) => tracing::warn!(error = %e, "audit retention task failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::super::{
        chain, verify, Action, Actor, Anchor, AuditEntry, Outcome, RotationPolicy, Target,
    };
    use super::*;
    use std::time::UNIX_EPOCH;

    fn entry_at(secs: u64, i: usize) -> AuditEntry {
        let mut e = AuditEntry::new(
            Actor::System,
            Action::GatewayStop,
            Target::gateway(&format!("u{i}")),
            Outcome::Success,
        );
        e.time = UNIX_EPOCH + Duration::from_secs(secs);
        e
    }

    fn all_targets(active: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for f in chain::log_files(active).unwrap() {
            for l in fs::read_to_string(f).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                out.push(v["target"].as_str().unwrap().to_string());
            }
        }
        out
    }

    #[test]
    fn old_files_go_whole_the_boundary_file_is_cut_and_the_chain_still_verifies() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let policy = RotationPolicy {
            max_file_size: 1024,
            max_files: 100,
        };
        let log = AuditLog::open(&path, policy).unwrap();
        // 40 lines one second apart from t=1000.
        for i in 0..40 {
            log.append(&entry_at(1000 + i as u64, i)).unwrap();
        }
        let files_before = chain::log_files(&path).unwrap().len();
        assert!(files_before > 4);
        let p = log
            .exclusive(|path, rotate| prune(path, UNIX_EPOCH + Duration::from_secs(1025), rotate))
            .unwrap();
        assert_eq!(p.lines, 25);
        assert!(p.files >= 2, "{p:?}");
        let left = all_targets(&path);
        let want: Vec<String> = (25..40).map(|i| format!("gateway:u{i}")).collect();
        assert_eq!(left, want);
        let report = verify(&path).unwrap();
        assert_eq!(report.lines, 15);
        assert!(
            matches!(report.anchor, Anchor::Unchecked { .. }),
            "{report}"
        );
        // The writer goes on with the chain (its file may have been replaced under it).
        log.append(&entry_at(2000, 99)).unwrap();
        assert_eq!(verify(&path).unwrap().lines, 16);
    }

    #[test]
    fn the_newest_line_always_stays_so_a_restart_keeps_the_chain() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let log = AuditLog::open(&path, RotationPolicy::default()).unwrap();
        for i in 0..5 {
            log.append(&entry_at(1000 + i as u64, i)).unwrap();
        }
        let p = log.prune_older_than(Duration::from_secs(60)).unwrap();
        assert_eq!(p.lines, 4);
        assert_eq!(all_targets(&path), ["gateway:u4"]);
        // What is left verifies: the rotated file that holds it shows where lines went.
        assert!(matches!(
            verify(&path).unwrap().anchor,
            Anchor::Unchecked { .. }
        ));
        drop(log);
        let log = AuditLog::open(&path, RotationPolicy::default()).unwrap();
        log.append(&entry_at(3000, 5)).unwrap();
        let report = verify(&path).unwrap();
        assert_eq!(report.lines, 2, "{report}");
    }

    #[test]
    fn young_lines_and_torn_lines_between_young_ones_stay() {
        let lines: Vec<&[u8]> = vec![
            br#"{"time":"2026-01-01T00:00:00.000Z"}"#,
            b"torn",
            br#"{"time":"2026-01-03T00:00:00.000Z"}"#,
            b"torn again",
        ];
        assert_eq!(old_prefix(&lines, "2026-01-02T00:00:00.000Z", false), 2);
        assert_eq!(old_prefix(&lines, "2025-01-01T00:00:00.000Z", false), 0);
        assert_eq!(old_prefix(&lines, "2027-01-01T00:00:00.000Z", true), 3);
        let torn_first: Vec<&[u8]> = vec![b"torn", br#"{"time":"2026-01-03T00:00:00.000Z"}"#];
        assert_eq!(
            old_prefix(&torn_first, "2026-01-02T00:00:00.000Z", false),
            0
        );
    }
}
