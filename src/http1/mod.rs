//! HTTP/1.1 pieces both sides of the front door share: the body framing it decodes from
//! clients (`server::h1`) and from gateways (`proxy::relay`), and the reading of list-valued
//! headers.

pub mod chunked;

use http::header::{HeaderMap, HeaderName};

/// Whether a comma-separated header lists `token` (case-insensitively).
pub fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
