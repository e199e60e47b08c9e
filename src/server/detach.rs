//! A request head that owns its bytes. hyper parses a request's target and header values as
//! slices of the connection's read buffer. While one of them lives, that buffer is shared,
//! and hyper reads the connection while a request is in flight (to notice a client that went
//! away): finding its buffer shared, it allocates a fresh 8 KiB one, once per request. The
//! head is copied once here instead (a few hundred bytes, one allocation), before hyper reads
//! again, so hyper keeps reusing its own buffer. Only for the connections hyper serves (HTTP/2,
//! and a plain connection whose version was not known before its first read); `h1`'s heads
//! are one copy already.

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery};
use http::{HeaderValue, Uri};

/// Replaces the target and header values of `parts` by slices of one copy.
pub(super) fn head(parts: &mut Parts) {
    let original = parts.uri.clone();
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    let path = uri.path_and_query.as_ref().map_or("", |p| p.as_str());
    let authority = uri.authority.as_ref().map_or("", |a| a.as_str());
    let values: usize = parts.headers.values().map(HeaderValue::len).sum();
    let mut buf = BytesMut::with_capacity(path.len() + authority.len() + values);
    buf.extend_from_slice(path.as_bytes());
    buf.extend_from_slice(authority.as_bytes());
    for v in parts.headers.values() {
        buf.extend_from_slice(v.as_bytes());
    }
    let copy = buf.freeze();
    let mut at = 0;
    let mut next = |len: usize| {
        let piece = copy.slice(at..at + len);
        at += len;
        piece
    };
    // Each piece holds the same bytes that parsed before, so each parses again.
    if let Some(p) = uri.path_and_query.take() {
        let piece = next(p.as_str().len());
        uri.path_and_query = Some(PathAndQuery::from_maybe_shared(piece).unwrap_or(p));
    }
    if let Some(a) = uri.authority.take() {
        let piece = next(a.as_str().len());
        uri.authority = Some(Authority::from_maybe_shared(piece).unwrap_or(a));
    }
    parts.uri = Uri::from_parts(uri).unwrap_or(original);
    for v in parts.headers.values_mut() {
        let piece: Bytes = next(v.len());
        if let Ok(mut owned) = HeaderValue::from_maybe_shared(piece) {
            owned.set_sensitive(v.is_sensitive());
            *v = owned;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_the_same_after_the_copy() {
        let req = http::Request::builder()
            .method("POST")
            .uri("https://example.test:8443/mcp/x?session=1&a=%20b")
            .header("authorization", "Bearer abc.def.ghi")
            .header("mcp-session-id", "s-1")
            .header("accept", "application/json")
            .header("accept", "text/event-stream")
            .body(())
            .unwrap();
        let (mut parts, ()) = req.into_parts();
        parts
            .headers
            .get_mut("authorization")
            .unwrap()
            .set_sensitive(true);
        let before = parts.clone();
        head(&mut parts);
        assert_eq!(parts.uri, before.uri);
        assert_eq!(parts.uri.to_string(), before.uri.to_string());
        assert_eq!(parts.headers, before.headers);
        assert!(parts.headers["authorization"].is_sensitive());
        let accept: Vec<_> = parts.headers.get_all("accept").iter().collect();
        assert_eq!(accept, ["application/json", "text/event-stream"]);
    }

    #[test]
    fn an_origin_form_target_stays_one() {
        let (mut parts, ()) = http::Request::builder()
            .uri("/healthz")
            .body(())
            .unwrap()
            .into_parts();
        head(&mut parts);
        assert_eq!(parts.uri, "/healthz");
        assert!(parts.uri.authority().is_none());
    }
}
