//! The hash chain and the files it runs through.
//!
//! Every line carries `prev`, the SHA-256 (hex) of the line before it, byte for byte without
//! its newline; the first line of a fresh log carries [`GENESIS`]. Rotation keeps the chain:
//! the first line of a new `audit.log` links to the last line of `audit.log.1`. So editing,
//! removing or reordering any line breaks the link of the line after it.
//!
//! Files, oldest first: `audit.log.<N>` (highest N) … `audit.log.1`, `audit.log`.

use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// `prev` of the first line of a log that has never lost a file.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain hash of one line (its bytes without the newline).
pub fn line_hash(line: &[u8]) -> String {
    let digest = Sha256::digest(line);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// Whether `s` has the shape of a chain hash (64 lower-case hex digits).
pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `audit.log.<n>` beside the active file.
pub fn rotated_path(active: &Path, n: u32) -> PathBuf {
    let mut name = active.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    active.with_file_name(name)
}

/// The numbers of the rotated files that exist, ascending (newest first). Names that are not
/// exactly `<active>.<decimal without leading zero>` are not ours and are ignored.
pub fn rotated_numbers(active: &Path) -> io::Result<Vec<u32>> {
    let dir = crate::storage::atomic::parent_dir(active);
    let Some(base) = active.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}.");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = digits.parse::<u32>() {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Every file of the log that exists, oldest first (the active file last).
pub fn log_files(active: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = rotated_numbers(active)?
        .into_iter()
        .rev()
        .map(|n| rotated_path(active, n))
        .collect();
    if active.is_file() {
        files.push(active.to_path_buf());
    }
    Ok(files)
}

/// The last line of `f` (without its newline; a final line without one counts whole), or
/// `None` when the file is empty. Reads backwards, so a large file costs one line.
pub fn last_line(f: &File) -> io::Result<Option<Vec<u8>>> {
    const CHUNK: u64 = 8 << 10;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8];
    f.read_exact_at(&mut last, len - 1)?;
    let end = if last[0] == b'\n' { len - 1 } else { len };
    // `line` holds the bytes from `start` to `end`, filled from the back.
    let mut line: Vec<u8> = Vec::new();
    let mut start = end;
    while start > 0 {
        let from = start.saturating_sub(CHUNK);
        let mut buf = vec![0u8; (start - from) as usize];
        f.read_exact_at(&mut buf, from)?;
        if let Some(nl) = buf.iter().rposition(|&b| b == b'\n') {
            buf.drain(..=nl);
            buf.extend_from_slice(&line);
            return Ok(Some(buf));
        }
        buf.extend_from_slice(&line);
        line = buf;
        start = from;
    }
    Ok(Some(line))
}

/// The hash the next line written to `active` must carry: the last line of the newest file
/// that has one, else [`GENESIS`].
pub fn head_on_disk(active: &Path) -> io::Result<String> {
    for file in log_files(active)?.iter().rev() {
        let f = match File::open(file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(line) = last_line(&f)? {
            return Ok(line_hash(&line));
        }
    }
    Ok(GENESIS.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_hex() {
        assert_eq!(
            line_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_hash(&line_hash(b"")));
        assert!(is_hash(GENESIS));
        assert!(!is_hash("ABC"));
    }

    #[test]
    fn last_line_reads_backwards_across_chunks() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let long = "y".repeat(20_000);
        for (content, want) in [
            ("".to_string(), None),
            ("one\n".to_string(), Some("one".to_string())),
            ("one\ntwo\n".to_string(), Some("two".to_string())),
            ("one\ntorn".to_string(), Some("torn".to_string())),
            (format!("x\n{long}\n"), Some(long.clone())),
            (long.clone(), Some(long.clone())),
        ] {
            std::fs::write(&p, &content).unwrap();
            let got = last_line(&File::open(&p).unwrap()).unwrap();
            assert_eq!(got.map(|l| String::from_utf8(l).unwrap()), want);
        }
    }

    #[test]
    fn files_are_listed_oldest_first_and_strangers_ignored() {
        let d = tempfile::tempdir().unwrap();
        let active = d.path().join("audit.log");
        for name in [
            "audit.log",
            "audit.log.1",
            "audit.log.10",
            "audit.log.2",
            "audit.log.02",
            "audit.log.x",
            ".audit.log.1.tmp",
        ] {
            std::fs::write(d.path().join(name), "").unwrap();
        }
        let names: Vec<String> = log_files(&active)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["audit.log.10", "audit.log.2", "audit.log.1", "audit.log"]
        );
    }
}
