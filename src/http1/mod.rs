//! HTTP/1.1 pieces both sides of the front door share: the body framing it decodes from
//! clients (`server::h1`) and from gateways (`proxy::relay`), and the reading of list-valued
//! headers.

pub mod chunked;

use http::header::{self, HeaderMap, HeaderName};

/// Whether a comma-separated header lists `token` (case-insensitively).
pub fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A `Content-Length` that is not one decimal number.
#[derive(Debug)]
pub struct BadLength;

/// A message's `Content-Length`: `Ok(None)` without one, `Err` unless every value (repeated
/// headers, comma lists) is the same decimal number of digits only (no sign, no spaces
/// inside, no overflow). One reading for both sides: a length two readers could take
/// differently is how one request is smuggled inside another.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, BadLength> {
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let n = digits(part.trim_ascii()).ok_or(BadLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(BadLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}
