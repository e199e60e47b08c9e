//! `mcp-frontdoor audit verify`: walks the retained files oldest first and checks every link
//! of the hash chain. Read-only; a broken link names the file, the line and what is wrong.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::chain::{is_hash, line_hash, log_files, GENESIS};

/// Where the retained chain starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// No chained lines at all.
    Empty,
    /// Right after the lines from before the chain existed (see [`VerifyReport::legacy`]).
    Legacy,
    /// At the genesis value: nothing of the log was ever deleted.
    Genesis,
    /// At a line in a file retention has deleted: that first link cannot be checked.
    Unchecked {
        /// The oldest retained file.
        file: PathBuf,
        /// Its first chained line's `prev`.
        prev: String,
    },
}

/// What an intact log holds.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The active file the walk started from.
    pub active: PathBuf,
    /// Each file walked, oldest first, with its number of lines.
    pub files: Vec<(PathBuf, usize)>,
    /// Lines whose link was checked (or that start the chain).
    pub lines: usize,
    /// Lines from before the chain existed (no `prev`), at the very start: not checked.
    pub legacy: usize,
    /// Hash of the newest line: keep it elsewhere to notice a rewrite of the whole tail.
    pub head: Option<String>,
    /// Where the chain starts.
    pub anchor: Anchor,
    /// A head from an earlier run that was asked for and found (see [`verify_with_head`]).
    pub earlier_head: Option<String>,
}

/// Why the log does not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be read.
    #[error("audit log {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The first broken link.
    #[error("audit log broken at {} line {line}: {problem} ({verified} lines before it verified)", file.display())]
    Broken {
        /// The file holding the bad line.
        file: PathBuf,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong.
        problem: String,
        /// Lines checked before it.
        verified: usize,
    },
    /// The head printed by an earlier run is no longer the hash of any retained line.
    #[error(
        "no retained line hashes to the earlier head {head}: lines after it were removed \
             or rewritten (or retention deleted its file)"
    )]
    HeadMissing {
        /// The head asked for.
        head: String,
    },
}

fn name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Walks every retained file of the log whose active file is `active`.
pub fn verify(active: &Path) -> Result<VerifyReport, VerifyError> {
    verify_with_head(active, None)
}

/// [`verify`], and also requires that some retained line hashes to `earlier_head` (a head an
/// earlier run printed): the one thing a chain cannot show alone is a rewritten or cut tail.
pub fn verify_with_head(
    active: &Path,
    earlier_head: Option<&str>,
) -> Result<VerifyReport, VerifyError> {
    let files = log_files(active).map_err(|source| VerifyError::Io {
        path: active.to_path_buf(),
        source,
    })?;
    let mut report = VerifyReport {
        active: active.to_path_buf(),
        files: Vec::new(),
        lines: 0,
        legacy: 0,
        head: None,
        anchor: Anchor::Empty,
        earlier_head: None,
    };
    // Hash of the line before and where it was, across files.
    let mut before: Option<(String, String)> = None;
    for (index, file) in files.iter().enumerate() {
        let io_err = |source| VerifyError::Io {
            path: file.clone(),
            source,
        };
        let mut reader = BufReader::new(File::open(file).map_err(io_err)?);
        let mut count = 0;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(io_err)? == 0 {
                break;
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
            }
            count += 1;
            let broken = |problem: String| VerifyError::Broken {
                file: file.clone(),
                line: count,
                problem,
                verified: report.lines + report.legacy,
            };
            let prev = link_of(&buf).map_err(broken)?;
            match (prev, &before) {
                // Lines without `prev` are accepted only before the first chained line of
                // the oldest file: the log as it was before the chain was introduced.
                (None, _) if index == 0 && report.lines == 0 => report.legacy += 1,
                (None, _) => {
                    return Err(broken(
                        "no `prev` field, but the lines before it are chained".into(),
                    ))
                }
                (Some(prev), Some((hash, at))) => {
                    if prev != *hash {
                        return Err(broken(format!(
                            "`prev` does not match the hash of {at}: that line was changed, \
                             or lines (or a whole file) between them were removed or reordered"
                        )));
                    }
                    if report.lines == 0 {
                        report.anchor = Anchor::Legacy;
                    }
                    report.lines += 1;
                }
                (Some(prev), None) => {
                    report.anchor = if prev == GENESIS {
                        Anchor::Genesis
                    } else if file.as_path() != active {
                        Anchor::Unchecked {
                            file: file.clone(),
                            prev,
                        }
                    } else {
                        return Err(broken(format!(
                            "the first line of the log must carry the genesis `prev` {GENESIS}; \
                             it links to an older line but no rotated file ({}.1) is left",
                            name(active)
                        )));
                    };
                    report.lines += 1;
                }
            }
            let hash = line_hash(&buf);
            if earlier_head == Some(hash.as_str()) {
                report.earlier_head = Some(hash.clone());
            }
            before = Some((hash, format!("{} line {count}", name(file))));
        }
        report.files.push((file.clone(), count));
    }
    report.head = before.map(|(hash, _)| hash);
    match earlier_head {
        Some(head) if report.earlier_head.is_none() => Err(VerifyError::HeadMissing {
            head: head.to_string(),
        }),
        _ => Ok(report),
    }
}

/// The `prev` of one line: `None` when the line has none, an error when it is not a line of
/// ours at all.
fn link_of(line: &[u8]) -> Result<Option<String>, String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|_| "not a JSON object (a torn or edited line)")?;
    let Some(obj) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    match obj.get("prev") {
        None => Ok(None),
        Some(serde_json::Value::String(p)) if is_hash(p) => Ok(Some(p.clone())),
        Some(_) => Err("`prev` is not 64 lower-case hex digits".into()),
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.files.is_empty() {
            return writeln!(f, "audit log {}: no files yet", self.active.display());
        }
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(p, n)| format!("{} ({n} lines)", name(p)))
            .collect();
        writeln!(
            f,
            "audit log intact: {} chained lines in {} files in {}: {}",
            self.lines,
            self.files.len(),
            crate::storage::atomic::parent_dir(&self.active).display(),
            files.join(", ")
        )?;
        if self.legacy > 0 {
            writeln!(
                f,
                "note: the first {} lines predate the hash chain (no `prev`) and are not checked",
                self.legacy
            )?;
        }
        match &self.anchor {
            Anchor::Empty => writeln!(f, "no chained lines yet")?,
            Anchor::Legacy => writeln!(f, "the chain starts right after those lines")?,
            Anchor::Genesis => writeln!(f, "the chain starts at genesis: nothing was deleted")?,
            Anchor::Unchecked { file, prev } => writeln!(
                f,
                "note: the first line of {} links to {prev}, a line in a file retention has \
                 deleted; that one link cannot be checked",
                name(file)
            )?,
        }
        if let Some(head) = &self.earlier_head {
            writeln!(f, "the earlier head {head} is still in the log")?;
        }
        if let Some(head) = &self.head {
            writeln!(
                f,
                "head: {head} (keep it elsewhere; `audit verify --head <it>` later shows a \
                 rewritten or cut tail)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::rotated_path;

    /// Writes `n` chained lines from genesis to `path` and returns them.
    fn chained(path: &Path, from: &str, n: usize) -> Vec<String> {
        let mut prev = from.to_string();
        let lines: Vec<String> = (0..n)
            .map(|i| {
                let l = format!(r#"{{"prev":"{prev}","n":{i}}}"#);
                prev = line_hash(l.as_bytes());
                l
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
        lines
    }

    fn broken_at(path: &Path) -> (String, usize, String) {
        match verify(path) {
            Err(VerifyError::Broken {
                file,
                line,
                problem,
                ..
            }) => (name(&file), line, problem),
            other => panic!("expected a break, got {other:?}"),
        }
    }

    #[test]
    fn an_intact_log_verifies_from_genesis() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let lines = chained(&p, GENESIS, 5);
        let r = verify(&p).unwrap();
        assert_eq!((r.lines, r.anchor.clone()), (5, Anchor::Genesis));
        assert_eq!(r.head, Some(line_hash(lines[4].as_bytes())));
        assert!(r.to_string().contains("5 chained lines"), "{r}");
        // An earlier head must still be in the log: a cut tail loses it.
        let third = line_hash(lines[2].as_bytes());
        assert!(verify_with_head(&p, Some(&third))
            .unwrap()
            .earlier_head
            .is_some());
        std::fs::write(&p, lines[..2].join("\n") + "\n").unwrap();
        assert!(verify(&p).is_ok(), "a cut tail alone leaves no broken link");
        assert!(matches!(
            verify_with_head(&p, Some(&third)),
            Err(VerifyError::HeadMissing { .. })
        ));
        assert_eq!(
            verify(&d.path().join("none.log")).unwrap().anchor,
            Anchor::Empty
        );
    }

    #[test]
    fn edits_deletions_and_reorders_are_caught_at_the_next_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let lines = chained(&p, GENESIS, 6);
        let cases: Vec<(Vec<String>, usize)> = vec![
            // Line 3 edited: line 4's link breaks.
            (
                {
                    let mut l = lines.clone();
                    l[2] = l[2].replace(r#""n":2"#, r#""n":7"#);
                    l
                },
                4,
            ),
            // Line 3 removed: the old line 4, now line 3, breaks.
            (
                {
                    let mut l = lines.clone();
                    l.remove(2);
                    l
                },
                3,
            ),
            // Lines 3 and 4 swapped.
            (
                {
                    let mut l = lines.clone();
                    l.swap(2, 3);
                    l
                },
                3,
            ),
        ];
        for (content, line) in cases {
            std::fs::write(&p, content.join("\n") + "\n").unwrap();
            let (file, at, problem) = broken_at(&p);
            assert_eq!((file.as_str(), at), ("audit.log", line), "{problem}");
        }
    }

    #[test]
    fn the_oldest_retained_file_may_start_mid_chain_but_the_active_file_alone_may_not() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let old = chained(&rotated_path(&p, 2), &"a".repeat(64), 2);
        let mid = chained(&rotated_path(&p, 1), &line_hash(old[1].as_bytes()), 2);
        chained(&p, &line_hash(mid[1].as_bytes()), 2);
        let r = verify(&p).unwrap();
        assert_eq!(r.lines, 6);
        assert!(matches!(r.anchor, Anchor::Unchecked { .. }));
        assert!(r.to_string().contains("cannot be checked"), "{r}");
        // A whole file removed from the middle breaks the link into the next one.
        std::fs::remove_file(rotated_path(&p, 1)).unwrap();
        let (file, line, _) = broken_at(&p);
        assert_eq!((file.as_str(), line), ("audit.log", 1));
        // With every rotated file gone, the active file must start at genesis.
        std::fs::remove_file(rotated_path(&p, 2)).unwrap();
        let (_, _, problem) = broken_at(&p);
        assert!(problem.contains("genesis"), "{problem}");
    }

    #[test]
    fn lines_from_before_the_chain_are_accepted_only_at_the_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("audit.log");
        let legacy = r#"{"time":"t","action":"secret.put"}"#;
        let first = format!(r#"{{"prev":"{}"}}"#, line_hash(legacy.as_bytes()));
        std::fs::write(&p, format!("{legacy}\n{legacy}\n{first}\n")).unwrap();
        let r = verify(&p).unwrap();
        assert_eq!((r.legacy, r.lines, r.anchor), (2, 1, Anchor::Legacy));
        std::fs::write(&p, format!("{legacy}\n{first}\n{legacy}\n")).unwrap();
        let (_, line, problem) = broken_at(&p);
        assert_eq!(line, 3, "{problem}");
        std::fs::write(&p, "not json\n").unwrap();
        assert_eq!(broken_at(&p).1, 1);
    }
}
