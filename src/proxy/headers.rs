//! Header hygiene between client and gateway. Headers are removed from the map in place, so
//! repeated headers (`Set-Cookie`, `Vary`, ...) keep every value.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::io::Write as _;

/// Hop-by-hop headers (RFC 9110 section 7.6.1) plus the legacy ones proxies also drop.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

// Our own headers as names, not strings: a `&str` key makes `HeaderMap::insert` allocate a
// copy of a non-standard name on every request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, &[]);
}

/// Removes the hop-by-hop headers, the ones `Connection` names, and `also`, in one pass over
/// the headers there are: a removal (a hash lookup) only for a header that is present, which
/// is usually none, rather than one per name that could be.
fn strip(headers: &mut HeaderMap, also: &[HeaderName]) {
    // On the stack: every request to a gateway drops at least its `Authorization` and `Host`.
    type Names = smallvec::SmallVec<[HeaderName; 8]>;
    let named: Names = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let doomed: Names = headers
        .keys()
        .filter(|n| {
            HOP_BY_HOP.contains(n) || *n == header::UPGRADE || also.contains(n) || named.contains(n)
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// What the gateway needs to know about the original request.
pub struct Forwarded<'a> {
    pub client_ip: std::net::IpAddr,
    pub proto: &'static str,
    pub host: Option<&'a HeaderValue>,
}

/// Rewrites client request headers for the gateway: hop-by-hop, the client's credentials,
/// `Origin` (already checked) and any client-supplied forwarding headers go; the gateway's own
/// token and our `X-Forwarded-*` come in. MCP headers pass untouched.
pub fn to_upstream(
    headers: &mut HeaderMap,
    gateway_auth: Option<&HeaderValue>,
    fwd: &Forwarded<'_>,
) {
    let host = fwd.host.cloned();
    strip(
        headers,
        &[
            header::AUTHORIZATION,
            header::ORIGIN,
            header::HOST,
            header::FORWARDED,
            X_FORWARDED_FOR,
            X_FORWARDED_PROTO,
            X_FORWARDED_HOST,
            HeaderName::from_static("x-real-ip"),
        ],
    );
    if let Some(v) = gateway_auth {
        headers.insert(header::AUTHORIZATION, v.clone());
    }
    // We are the edge: a client's own X-Forwarded-For would be a claim we cannot check.
    // Formatted on the stack (an address is at most 45 bytes): one allocation, not two.
    let mut ip = std::io::Cursor::new([0u8; 64]);
    if write!(ip, "{}", fwd.client_ip).is_ok() {
        let n = ip.position() as usize;
        if let Ok(v) = HeaderValue::from_bytes(&ip.get_ref()[..n]) {
            headers.insert(X_FORWARDED_FOR, v);
        }
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(fwd.proto));
    if let Some(h) = host {
        headers.insert(X_FORWARDED_HOST, h);
    }
}

/// Cleans a gateway response for the client; event streams are marked unbufferable for any
/// proxy in front of us.
pub fn to_client(headers: &mut HeaderMap) -> bool {
    strip_hop_by_hop(headers);
    let is_stream = is_event_stream(headers);
    if is_stream {
        headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    }
    is_stream
}

/// True for `text/event-stream` responses.
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // Asked of every answer: compared in place, not on a lowercased copy.
            const SSE: &str = "text/event-stream";
            v.trim_start()
                .get(..SSE.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(SSE))
        })
}

/// Checks `Origin` against the allow list. Requests without `Origin` (non-browser MCP
/// clients) pass; a browser page from elsewhere must not drive a user's tools (DNS rebinding).
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("<non-ascii>");
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        Ok(())
    } else {
        Err(origin.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_and_hop_by_hop_are_removed_repeated_kept() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        strip_hop_by_hop(&mut h);
        assert!(h.get("x-secret-hop").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h.get_all(header::SET_COOKIE).iter().count(), 2);
    }

    #[test]
    fn origin_rules() {
        let mut h = HeaderMap::new();
        assert!(origin_allowed(&h, &[]).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(origin_allowed(&h, &[]).is_err());
        assert!(origin_allowed(&h, &["https://evil.example/".into()]).is_ok());
        assert!(origin_allowed(&h, &["*".into()]).is_ok());
    }
}
