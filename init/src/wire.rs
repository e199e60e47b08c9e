//! The delivery wire format between the front door and its gateway init, std only: this file
//! is compiled into the init (`mod wire` in `main.rs`) and into the front door
//! (`src/gateways/deliver.rs` includes it by path), so both sides share one definition.
//!
//! A line `mcp-frontdoor-files 1 <token>`, then per file a line
//! `file <mode-octal> <length> <absolute path>` followed by that many bytes, then `end`. All
//! ours, so no tar.

use std::io::{BufRead, Read};
use std::path::{Component, Path};

/// Everything one delivery may carry (a catalog is at most 5 MB).
pub const MAX_TOTAL: u64 = 64 << 20;
const MAGIC: &str = "mcp-frontdoor-files 1 ";

/// Appends a whole delivery to `out` (the caller owns the buffer, so it can wipe it: the
/// contents are secrets).
pub fn encode_into<'a>(
    out: &mut Vec<u8>,
    token: &str,
    files: impl IntoIterator<Item = (&'a str, u32, &'a [u8])>,
) {
    out.extend_from_slice(MAGIC.as_bytes());
    out.extend_from_slice(token.as_bytes());
    out.push(b'\n');
    for (path, mode, contents) in files {
        out.extend_from_slice(format!("file {mode:o} {} {path}\n", contents.len()).as_bytes());
        out.extend_from_slice(contents);
    }
    out.extend_from_slice(b"end\n");
}

/// One file of a delivery.
#[derive(Debug, PartialEq)]
pub struct File {
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// Reads a whole delivery; nothing is written unless all of it is well-formed.
pub fn read_delivery(r: &mut impl BufRead, token: &str) -> Result<Vec<File>, String> {
    let mut line = String::new();
    let mut next_line = |r: &mut dyn BufRead| -> Result<String, String> {
        line.clear();
        r.take(4096)
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        if !line.ends_with('\n') {
            return Err("truncated header line".into());
        }
        Ok(line.trim_end_matches('\n').to_string())
    };
    let hello = next_line(r)?;
    let offered = hello.strip_prefix(MAGIC).ok_or("not a file delivery")?;
    if !constant_time_eq(offered.as_bytes(), token.as_bytes()) {
        return Err("wrong token".into());
    }
    let mut files = Vec::new();
    let mut total = 0u64;
    loop {
        let head = next_line(r)?;
        if head == "end" {
            return Ok(files);
        }
        let mut parts = head.splitn(4, ' ');
        let (Some("file"), Some(mode), Some(len), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("bad record {head:?}"));
        };
        let mode = u32::from_str_radix(mode, 8).map_err(|_| "bad mode")?;
        let len = len.parse::<u64>().map_err(|_| "bad length")?;
        total += len;
        if total > MAX_TOTAL {
            return Err("delivery too large".into());
        }
        let p = Path::new(path);
        if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
            return Err(format!("refusing path {path:?}"));
        }
        let mut contents = Vec::with_capacity(len as usize);
        r.take(len)
            .read_to_end(&mut contents)
            .map_err(|e| format!("read: {e}"))?;
        if contents.len() as u64 != len {
            return Err("truncated file".into());
        }
        files.push(File {
            path: path.to_string(),
            mode: mode & 0o7777,
            contents,
        });
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(token: &str, files: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_into(&mut v, token, files.iter().copied());
        v
    }

    #[test]
    fn the_encoding_is_the_documented_text() {
        assert_eq!(
            delivery("tok", &[("/a/s.env", 0o400, b"k=v\n")]),
            b"mcp-frontdoor-files 1 tok\nfile 400 4 /a/s.env\nk=v\nend\n"
        );
    }

    #[test]
    fn reads_a_delivery_with_binary_contents() {
        let bytes = delivery(
            "t0k",
            &[
                ("/a/b.yaml", 0o444, b"x: 1\n"),
                ("/a/s.env", 0o400, b"k=v\nend\n"),
            ],
        );
        let files = read_delivery(&mut &bytes[..], "t0k").unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].path, "/a/s.env");
        assert_eq!(files[1].mode, 0o400);
        // A body that looks like a record line is still a body.
        assert_eq!(files[1].contents, b"k=v\nend\n");
    }

    #[test]
    fn refuses_wrong_tokens_bad_paths_and_truncation() {
        let ok = delivery("right", &[("/a/x", 0o444, b"1")]);
        assert!(read_delivery(&mut &ok[..], "wrong").is_err());
        let up = delivery("t", &[("/a/../etc/x", 0o444, b"1")]);
        assert!(read_delivery(&mut &up[..], "t").is_err());
        let rel = delivery("t", &[("a/x", 0o444, b"1")]);
        assert!(read_delivery(&mut &rel[..], "t").is_err());
        let cut = &ok[..ok.len() - 6];
        assert!(read_delivery(&mut &cut[..], "right").is_err());
        assert!(read_delivery(&mut &b"GET / HTTP/1.1\r\n"[..], "t").is_err());
    }
}
