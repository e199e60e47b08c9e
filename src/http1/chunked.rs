//! The body framing of an HTTP/1.1 message (RFC 9112 section 6): a client's request, a
//! gateway's answer. Decoded from the bytes as they arrive. Data is handed on as slices of the
//! read buffer (no copy); everything else (chunk sizes, extensions, trailers) is consumed a byte
//! at a time into the state, so no partial line is ever kept as bytes between reads. Every
//! length either side sends is attacker input (tenants are clients and run the servers behind
//! their gateways): sizes are checked for overflow and lines are bounded.

use bytes::{Buf, Bytes};

/// The longest chunk-size line (size and extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// The most trailer bytes read (and dropped) after the last chunk.
const MAX_TRAILERS: usize = 16 * 1024;

/// How the body ends.
#[derive(Debug)]
pub enum Framing {
    /// `Content-Length`: this many bytes are left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunk),
    /// Neither: the body is everything until the gateway closes.
    UntilClose,
    /// Nothing more.
    Done,
}

/// Where a chunked decoder is.
#[derive(Debug)]
pub enum Chunk {
    /// Reading the size line: the size so far, its digits, where in the line it is.
    Size {
        size: u64,
        digits: usize,
        at: SizeLine,
        line: usize,
    },
    /// `left` data bytes of the current chunk to come.
    Data { left: u64 },
    /// The CRLF after a chunk's data; `cr` once the CR was seen.
    DataEnd { cr: bool },
    /// Trailer lines after the last chunk: bytes so far, of the current line, and whether the
    /// CR that must end it was seen.
    Trailers { total: usize, line: usize, cr: bool },
}

/// Where a chunk-size line is (RFC 9112 7.1: `size [BWS] *(";" extension) CRLF`). Lines end
/// with CRLF only: a bare LF, or a CR followed by anything but LF, is refused, as hyper and
/// current Go do, so no two readers can split the line differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeLine {
    Digits,
    /// Spaces or tabs after the digits: only more of them, `;` or the CR may follow.
    Space,
    /// After a `;`: extensions, read and dropped (no CR or LF inside).
    Extension,
    /// The CR: the LF must follow.
    Cr,
}

impl Chunk {
    pub fn start() -> Self {
        Chunk::Size {
            size: 0,
            digits: 0,
            at: SizeLine::Digits,
            line: 0,
        }
    }
}

/// A body that does not follow its own framing.
#[derive(Debug, thiserror::Error)]
#[error("malformed body: {0}")]
pub struct Malformed(pub &'static str);

impl Framing {
    pub fn is_done(&self) -> bool {
        matches!(self, Framing::Done)
    }

    /// Takes the next piece of body data out of `input`, consuming any framing before it.
    /// `Ok(None)` when `input` is used up (or the body is done) without more data.
    pub fn next_data(&mut self, input: &mut Bytes) -> Result<Option<Bytes>, Malformed> {
        loop {
            match self {
                // Bytes left in `input` are past the body's end: not ours to hand on, and a
                // connection that sent them is not used again (the caller's to judge).
                Framing::Done => return Ok(None),
                Framing::UntilClose => {
                    return Ok((!input.is_empty()).then(|| std::mem::take(input)));
                }
                Framing::Length(left) => {
                    let data = take(input, left);
                    if *left == 0 {
                        *self = Framing::Done;
                    }
                    return Ok(data);
                }
                Framing::Chunked(Chunk::Data { left }) => {
                    let data = take(input, left);
                    if *left == 0 {
                        *self = Framing::Chunked(Chunk::DataEnd { cr: false });
                    }
                    return Ok(data);
                }
                Framing::Chunked(state) => {
                    let Some(&b) = input.first() else {
                        return Ok(None);
                    };
                    input.advance(1);
                    if let Some(next) = step(state, b)? {
                        *self = next;
                    }
                }
            }
        }
    }

    /// The gateway closed its connection: fine only where the framing says the body ends.
    pub fn at_close(&mut self) -> Result<(), Malformed> {
        match self {
            Framing::UntilClose | Framing::Done => {
                *self = Framing::Done;
                Ok(())
            }
            Framing::Length(_) => Err(Malformed("closed before Content-Length bytes arrived")),
            Framing::Chunked(_) => Err(Malformed("closed before the last chunk")),
        }
    }

    /// The exact length left, when known.
    pub fn exact(&self) -> Option<u64> {
        match self {
            Framing::Length(n) => Some(*n),
            Framing::Done => Some(0),
            _ => None,
        }
    }
}

/// Up to `left` bytes of data off the front of `input` (`None` when it is empty).
fn take(input: &mut Bytes, left: &mut u64) -> Option<Bytes> {
    if input.is_empty() {
        return None;
    }
    let n = (*left).min(input.len() as u64) as usize;
    *left -= n as u64;
    Some(input.split_to(n))
}

/// One framing byte of a chunked body; `Some` when the state moves on to another kind.
fn step(state: &mut Chunk, b: u8) -> Result<Option<Framing>, Malformed> {
    match state {
        Chunk::Size {
            size,
            digits,
            at,
            line,
        } => {
            *line += 1;
            if *line > MAX_SIZE_LINE {
                return Err(Malformed("chunk size line too long"));
            }
            match (*at, b) {
                (SizeLine::Cr, b'\n') => {
                    if *digits == 0 {
                        return Err(Malformed("chunk without a size"));
                    }
                    return Ok(Some(if *size == 0 {
                        Framing::Chunked(Chunk::Trailers {
                            total: 0,
                            line: 0,
                            cr: false,
                        })
                    } else {
                        Framing::Chunked(Chunk::Data { left: *size })
                    }));
                }
                (SizeLine::Cr, _) | (_, b'\n') => {
                    return Err(Malformed("chunk size line not ended by CRLF"))
                }
                (_, b'\r') => *at = SizeLine::Cr,
                (SizeLine::Extension, _) => {}
                (_, b';') => *at = SizeLine::Extension,
                (SizeLine::Digits | SizeLine::Space, b' ' | b'\t') => *at = SizeLine::Space,
                (SizeLine::Space, _) => return Err(Malformed("chunk size is not hexadecimal")),
                (SizeLine::Digits, _) => {
                    let d = (b as char)
                        .to_digit(16)
                        .ok_or(Malformed("chunk size is not hexadecimal"))?;
                    *size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(d)))
                        .ok_or(Malformed("chunk size overflows"))?;
                    *digits += 1;
                }
            }
            Ok(None)
        }
        Chunk::DataEnd { cr } => match (b, *cr) {
            (b'\r', false) => {
                *cr = true;
                Ok(None)
            }
            (b'\n', true) => Ok(Some(Framing::Chunked(Chunk::start()))),
            _ => Err(Malformed("chunk data not followed by CRLF")),
        },
        Chunk::Trailers { total, line, cr } => {
            *total += 1;
            if *total > MAX_TRAILERS {
                return Err(Malformed("trailers too long"));
            }
            match (b, *cr) {
                (b'\n', true) if *line == 0 => Ok(Some(Framing::Done)),
                (b'\n', true) => {
                    *line = 0;
                    *cr = false;
                    Ok(None)
                }
                (b'\r', false) => {
                    *cr = true;
                    Ok(None)
                }
                (b'\n', false) | (_, true) => Err(Malformed("trailer line not ended by CRLF")),
                _ => {
                    *line += 1;
                    Ok(None)
                }
            }
        }
        Chunk::Data { .. } => unreachable!("data is taken by slices in next_data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `step` bytes; the data and the final state.
    fn decode(mut f: Framing, wire: &[u8], piece: usize) -> (Vec<u8>, Result<Framing, Malformed>) {
        let mut out = Vec::new();
        for part in wire.chunks(piece.max(1)) {
            let mut input = Bytes::copy_from_slice(part);
            loop {
                match f.next_data(&mut input) {
                    Ok(Some(d)) => out.extend_from_slice(&d),
                    Ok(None) => break,
                    Err(e) => return (out, Err(e)),
                }
            }
        }
        (out, Ok(f))
    }

    #[test]
    fn chunked_bodies_decode_the_same_whatever_the_read_boundaries() {
        let wire =
            b"5\r\nhello\r\n7 \t;ext=\"a b\";x\r\n, world\r\n0\r\nx-trailer: 1\r\ny: 2\r\n\r\n";
        for piece in 1..wire.len() {
            let (data, end) = decode(Framing::Chunked(Chunk::start()), wire, piece);
            assert_eq!(data, b"hello, world", "piece {piece}");
            assert!(end.unwrap().is_done(), "piece {piece}");
        }
    }

    #[test]
    fn a_stream_ends_only_at_its_last_chunk() {
        let (data, end) = decode(Framing::Chunked(Chunk::start()), b"3\r\nabc\r\n", 2);
        assert_eq!(data, b"abc");
        let mut end = end.unwrap();
        assert!(!end.is_done());
        assert!(end.at_close().is_err(), "closed mid-stream is an error");
        let mut f = Framing::UntilClose;
        assert!(f.at_close().is_ok() && f.is_done());
    }

    #[test]
    fn hostile_chunk_sizes_and_lines_are_refused() {
        for (wire, why) in [
            (&b"fffffffffffffffff\r\n"[..], "overflow"),
            (b"zz\r\n", "not hex"),
            (b"\r\n", "no size"),
            (b"3\r\nabcX", "no CRLF after data"),
            (b"3\nabc\r\n0\r\n\r\n", "bare LF after the size"),
            (b"3\rXabc\r\n", "CR then not LF"),
            (b"3 4\r\nabc\r\n", "a second number after a space"),
            (b"3;a\nb\r\nabc\r\n", "LF inside an extension"),
            (b"3\r\nabc\n0\r\n\r\n", "bare LF after data"),
            (b"0\r\nx: 1\n\r\n", "bare LF in a trailer"),
            (b"0\r\n\n", "bare LF ending the trailers"),
            (b"0\r\nx: 1\rY\r\n\r\n", "CR inside a trailer line"),
        ] {
            let (_, end) = decode(Framing::Chunked(Chunk::start()), wire, 64);
            assert!(end.is_err(), "{why}: {wire:?}");
        }
        let long_ext = [b"1;".as_slice(), &vec![b'a'; MAX_SIZE_LINE], b"\r\n"].concat();
        assert!(decode(Framing::Chunked(Chunk::start()), &long_ext, 512)
            .1
            .is_err());
        let long_trailers = [b"0\r\n".as_slice(), &vec![b'a'; MAX_TRAILERS + 1]].concat();
        assert!(
            decode(Framing::Chunked(Chunk::start()), &long_trailers, 512)
                .1
                .is_err()
        );
        // The biggest size that fits is a size, not an error (it then simply never arrives).
        let (_, end) = decode(
            Framing::Chunked(Chunk::start()),
            b"ffffffffffffffff\r\n",
            64,
        );
        assert!(end.is_ok());
    }

    #[test]
    fn content_length_stops_at_its_length() {
        let (data, end) = decode(Framing::Length(5), b"hello, and more", 4);
        assert_eq!(data, b"hello");
        assert!(end.unwrap().is_done());
        let mut short = Framing::Length(5);
        assert!(short.at_close().is_err());
    }
}
