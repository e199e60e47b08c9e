//! Walking the lines of the retained audit files, oldest first or newest first, from files
//! opened together (so a rotation during the walk moves names, not the bytes being read).

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;

/// How far back one read goes when walking a file from its end.
const CHUNK: u64 = 64 << 10;

/// Calls `visit` with every non-empty line of `files` (given oldest first), without its
/// newline, in the order asked, until it breaks.
pub fn walk(
    files: &[File],
    newest_first: bool,
    mut visit: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> io::Result<()> {
    if newest_first {
        for f in files.iter().rev() {
            let mut lines = Backward::new(f)?;
            while let Some(line) = lines.next_line()? {
                if visit(&line).is_break() {
                    return Ok(());
                }
            }
        }
    } else {
        for f in files {
            let mut reader = BufReader::new(f);
            let mut line = Vec::new();
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line)? == 0 {
                    break;
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if !line.is_empty() && visit(&line).is_break() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// A file's lines from the last to the first, read in chunks from the end, so a page of the
/// newest lines costs a read of their bytes, not of the whole file.
struct Backward<'a> {
    file: &'a File,
    /// Bytes before this offset are not read yet.
    pos: u64,
    /// The start of the earliest line read so far, which may continue before `pos`.
    partial: Vec<u8>,
    /// Complete lines, in file order: `pop` gives the newest.
    ready: Vec<Vec<u8>>,
}

impl<'a> Backward<'a> {
    fn new(file: &'a File) -> io::Result<Self> {
        Ok(Self {
            pos: file.metadata()?.len(),
            file,
            partial: Vec::new(),
            ready: Vec::new(),
        })
    }

    fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(line) = self.ready.pop() {
                return Ok(Some(line));
            }
            if self.pos == 0 {
                let first = std::mem::take(&mut self.partial);
                return Ok((!first.is_empty()).then_some(first));
            }
            let from = self.pos.saturating_sub(CHUNK);
            let mut buf = vec![0u8; (self.pos - from) as usize];
            self.file.read_exact_at(&mut buf, from)?;
            self.pos = from;
            // `partial` ends at a newline or the end of the file, so every piece after the
            // first newline of `buf` is a whole line.
            buf.extend_from_slice(&self.partial);
            let mut pieces = buf.split(|&b| b == b'\n');
            self.partial = pieces.next().unwrap_or_default().to_vec();
            self.ready
                .extend(pieces.filter(|p| !p.is_empty()).map(<[u8]>::to_vec));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn file_with(text: &str) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        // As the log's files are: opened fresh, at their start.
        f.seek(SeekFrom::Start(0)).unwrap();
        f
    }

    fn collect(files: &[File], newest_first: bool) -> Vec<String> {
        let mut out = Vec::new();
        walk(files, newest_first, |l| {
            out.push(String::from_utf8(l.to_vec()).unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    #[test]
    fn both_directions_see_the_same_lines_across_files_and_chunks() {
        let long = "x".repeat(150_000);
        let a = format!("a1\n{long}\na3\n");
        let b = "b1\n\nb2"; // an empty line and no final newline
        let files = [file_with(&a), file_with(b), file_with("")];
        let forward = collect(&files, false);
        assert_eq!(forward, ["a1", long.as_str(), "a3", "b1", "b2"]);
        let mut backward = collect(&files, true);
        backward.reverse();
        assert_eq!(backward, forward);
    }

    #[test]
    fn a_walk_stops_when_asked() {
        let files = [file_with("1\n2\n3\n")];
        let mut seen = Vec::new();
        walk(&files, true, |l| {
            seen.push(l.to_vec());
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!(seen, [b"3".to_vec(), b"2".to_vec()]);
    }
}
