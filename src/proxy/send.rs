//! Phase 4, sending: the request as the gateway gets it, and the one retry the resolver's
//! policy allows when the gateway it named turns out to be gone.

use super::body::Counted;
use super::headers;
use super::upstream::{UpstreamBody, UpstreamError};
use super::Proxy;
use crate::auth::Principal;
use crate::error::Error;
use crate::gateways::{Retry, Upstream};
use crate::server::ConnInfo;
use axum::body::Body;
use http::{Method, Request};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The gateway's answer, with the upstream it came from (its lease is held while the body
/// streams) and the count of request bytes sent to it (`None`: the request had no body).
pub struct Sent {
    pub resp: http::Response<UpstreamBody>,
    pub upstream: Upstream,
    pub bytes_in: Option<Arc<AtomicU64>>,
}

/// Sends `req` to `upstream`; on a refused connection, follows `upstream.retry`.
pub async fn send(
    proxy: &Proxy,
    who: &Principal,
    req: Request<Body>,
    mut upstream: Upstream,
) -> Result<Sent, Error> {
    let retry = std::mem::replace(&mut upstream.retry, Retry::Never);
    // Only a request that can be replaced keeps a copy of its head (a fixed upstream pays none).
    let replay = match retry {
        Retry::IfGone(_) => Replay::of(&req),
        Retry::Never => None,
    };
    let (first, bytes_in) = upstream_request(req, &upstream)?;
    let err = match proxy.client.send(first).await {
        Ok(resp) => {
            return Ok(Sent {
                resp,
                upstream,
                bytes_in,
            })
        }
        Err(e) => counted(proxy, e),
    };
    let (UpstreamError::Connect, Retry::IfGone(check)) = (&err, retry) else {
        return Err(err.into());
    };
    // Rare (the gateway stopped under the request): in a box of its own, so every request's
    // future does not carry room for a second exchange.
    Box::pin(again(proxy, who, err, check, replay, upstream)).await
}

/// The gateway `upstream` turned out gone: asks the resolver's check, and sends the request
/// once more to the gateway it names now, if the request can be sent twice.
async fn again(
    proxy: &Proxy,
    who: &Principal,
    err: UpstreamError,
    check: Arc<dyn crate::gateways::GoneCheck>,
    replay: Option<Replay>,
    upstream: Upstream,
) -> Result<Sent, Error> {
    // Asked even when this request cannot be sent again: the next one gets a fresh gateway.
    if !check.gone(who).await {
        return Err(err.into());
    }
    let Some(again) = replay else {
        return Err(err.into());
    };
    let fresh = proxy.resolver.ensure(who).await?;
    drop(upstream);
    let (req, bytes_in) = upstream_request(again.request(), &fresh)?;
    match proxy.client.send(req).await {
        Ok(resp) => Ok(Sent {
            resp,
            upstream: fresh,
            bytes_in,
        }),
        Err(e) => Err(counted(proxy, e).into()),
    }
}

/// Every failure to reach a gateway is counted by reason.
fn counted(proxy: &Proxy, e: UpstreamError) -> UpstreamError {
    proxy
        .metrics
        .upstream_errors
        .get_or_create(&crate::metrics::ReasonLabels { reason: e.label() })
        .inc();
    e
}

/// The request as the gateway gets it: same path and query, clean headers, the gateway's own
/// token, and the client body streamed as it arrives; with the count of its body's bytes
/// (`None` for a request without a body: most GETs and DELETEs, which pay for no counter).
fn upstream_request(
    req: Request<Body>,
    upstream: &Upstream,
) -> Result<(Request<Body>, Option<Arc<AtomicU64>>), Error> {
    let (mut parts, body) = req.into_parts();
    let info = parts.extensions.get::<ConnInfo>();
    let host = parts.headers.get(http::header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    });
    let fwd = headers::Forwarded {
        client_ip: info.map_or([127, 0, 0, 1].into(), |i| i.peer.ip()),
        proto: if info.is_some_and(|i| i.tls) {
            "https"
        } else {
            "http"
        },
        host: host.as_ref(),
    };
    headers::to_upstream(&mut parts.headers, upstream.authorization.as_ref(), &fwd);
    // The same path and query (shared, not copied) on the gateway's address.
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.scheme = Some(http::uri::Scheme::HTTP);
    uri.authority = Some(upstream.base.clone());
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri =
        http::Uri::from_parts(uri).map_err(|e| Error::Internal(format!("upstream uri: {e}")))?;
    parts.version = http::Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    // Nothing to count (or box) for a request without a body.
    let (body, bytes_in) = if http_body::Body::is_end_stream(&body) {
        (Body::empty(), None)
    } else {
        let count = Arc::new(AtomicU64::new(0));
        (Body::new(Counted::new(body, count.clone())), Some(count))
    };
    Ok((Request::from_parts(parts, body), bytes_in))
}

/// The head of a request with no body, kept so it can be sent a second time.
struct Replay {
    method: Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    conn: Option<ConnInfo>,
}

impl Replay {
    /// Only bodiless requests of methods without side effects on a fresh gateway (a POST
    /// body is streamed, so it cannot be sent twice).
    fn of(req: &Request<Body>) -> Option<Self> {
        use http_body::Body as _;
        let safe = matches!(
            *req.method(),
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
        );
        (safe && req.body().is_end_stream()).then(|| Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            conn: req.extensions().get::<ConnInfo>().cloned(),
        })
    }

    fn request(self) -> Request<Body> {
        let mut req = Request::new(Body::empty());
        *req.method_mut() = self.method;
        *req.uri_mut() = self.uri;
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers;
        if let Some(c) = self.conn {
            req.extensions_mut().insert(c);
        }
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::Ordering;

    fn upstream() -> Upstream {
        Upstream {
            base: http::uri::Authority::from_static("127.0.0.1:9"),
            authorization: None,
            lease: None,
            retry: Retry::Never,
        }
    }

    #[tokio::test]
    async fn a_body_is_counted_as_it_streams_and_a_bodiless_request_gets_no_counter() {
        let req = Request::post("/mcp")
            .body(Body::from("{\"id\":1}"))
            .unwrap();
        let (out, count) = upstream_request(req, &upstream()).unwrap();
        let count = count.expect("a body is counted");
        let sent = out.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&sent[..], b"{\"id\":1}");
        assert_eq!(
            count.load(Ordering::Relaxed),
            8,
            "every byte sent is counted"
        );

        let req = Request::get("/mcp").body(Body::empty()).unwrap();
        let (out, count) = upstream_request(req, &upstream()).unwrap();
        assert!(http_body::Body::is_end_stream(out.body()));
        assert!(count.is_none());
    }
}
