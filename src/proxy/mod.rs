//! The request path, in phases: authenticate → check origin and session → claim the user's
//! directory → ensure gateway → forward → stream back. Each phase is one function below;
//! nothing here buffers a body.

mod body;
mod headers;
pub mod session_ids;
pub mod sessions;
mod upstream;

pub use body::find_session_id;
pub use upstream::{UpstreamClient, UpstreamError};

use crate::auth::{Authenticator, Principal};
use crate::error::Error;
use crate::gateways::{GatewayResolver, Upstream};
use crate::metrics::{Metrics, RouteClass};
use crate::server::ConnInfo;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use body::{Counted, EndpointSniffer, Exchange, Keepalive, ProxyBody};
use http::{HeaderName, Method, Request};
use sessions::SessionBindings;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// Everything the data plane needs, shared by all requests.
pub struct Proxy {
    pub auth: Arc<Authenticator>,
    pub resolver: Arc<dyn GatewayResolver>,
    pub client: UpstreamClient,
    pub sessions: Arc<SessionBindings>,
    /// Set when gateways are started from the user's own data (the per-user lifecycle): the
    /// user directory is claimed for the caller's id before anything reads it.
    pub owners: Option<Arc<crate::owners::Owners>>,
    pub metrics: Arc<Metrics>,
    pub allowed_origins: Vec<String>,
    /// `None` turns keep-alive comments off.
    pub sse_keepalive: Option<Duration>,
}

/// The route class of a path that goes to a gateway.
pub fn classify(path: &str) -> RouteClass {
    match path {
        "/mcp" | "/mcp/" => RouteClass::Mcp,
        "/sse" | "/message" | "/messages" | "/messages/" => RouteClass::Sse,
        _ => RouteClass::Gateway,
    }
}

/// Handles one request for a user's gateway.
pub async fn handle(proxy: Arc<Proxy>, req: Request<Body>) -> Response {
    let started = Instant::now();
    let route = classify(req.uri().path());
    let method = req.method().clone();
    match forward(&proxy, req, route, started).await {
        Ok(resp) => resp,
        Err((err, slug)) => {
            let status = err.status().as_u16();
            proxy
                .metrics
                .record_request(route, status, started.elapsed());
            tracing::info!(
                %method, ?route, user = slug.as_deref().unwrap_or("-"), status,
                duration_ms = started.elapsed().as_millis() as u64, error = %err, "request"
            );
            err.into_response()
        }
    }
}

type Failed = (Error, Option<Arc<str>>);

async fn forward(
    proxy: &Proxy,
    req: Request<Body>,
    route: RouteClass,
    started: Instant,
) -> Result<Response, Failed> {
    let principal = authenticate(proxy, req.headers(), req.uri())
        .await
        .map_err(|e| (e, None))?;
    let slug: Arc<str> = Arc::from(principal.slug.as_str());
    let fail = |e: Error| (e, Some(slug.clone()));
    headers::origin_allowed(req.headers(), &proxy.allowed_origins)
        .map_err(|o| fail(Error::OriginForbidden(o)))?;
    let session = check_session(proxy, &req, &principal).map_err(fail)?;
    claim_user_dir(proxy, &principal).await.map_err(fail)?;
    let mut upstream = proxy
        .resolver
        .ensure(&principal)
        .await
        .map_err(|e| fail(e.into()))?;
    let bytes_in = Arc::new(AtomicU64::new(0));
    let method = req.method().clone();
    // A request without a body can be sent again if the gateway turns out to be gone (only
    // a lifecycle can replace it: a fixed upstream pays no copy).
    let replay = proxy
        .resolver
        .replaces_unreachable()
        .then(|| Replay::of(&req))
        .flatten();
    let upstream_req = upstream_request(req, &upstream, bytes_in.clone()).map_err(fail)?;
    let count = |e: &UpstreamError| {
        proxy
            .metrics
            .upstream_errors
            .get_or_create(&crate::metrics::ReasonLabels { reason: e.label() })
            .inc();
    };
    let resp = match proxy.client.send(upstream_req).await {
        Ok(resp) => resp,
        Err(e) => {
            count(&e);
            if !matches!(e, UpstreamError::Connect) {
                return Err(fail(e.into()));
            }
            // Killed moments ago, its die event still on the way: have the lifecycle look
            // now, so this request (if it can be replayed) or the next gets a fresh gateway.
            let fresh = proxy.resolver.unreachable(&principal).await;
            let Some(again) = replay.filter(|_| fresh) else {
                return Err(fail(e.into()));
            };
            upstream = proxy
                .resolver
                .ensure(&principal)
                .await
                .map_err(|e| fail(e.into()))?;
            let req =
                upstream_request(again.request(), &upstream, bytes_in.clone()).map_err(fail)?;
            proxy.client.send(req).await.map_err(|e| {
                count(&e);
                fail(e.into())
            })?
        }
    };
    if route == RouteClass::Sse && resp.status().is_redirection() {
        return Err(fail(Error::LegacySseUnsupported));
    }
    let exchange = Exchange {
        method,
        route,
        slug,
        status: resp.status().as_u16(),
        started,
        bytes_in,
        bytes_out: 0,
        metrics: proxy.metrics.clone(),
        stream: false,
        finished: false,
        _lease: upstream.lease,
    };
    Ok(stream_back(proxy, resp, exchange, session, route))
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
            conn: req.extensions().get::<ConnInfo>().copied(),
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

/// Phase 1: who is calling. Failures are counted by reason and answered with the challenge.
async fn authenticate(
    proxy: &Proxy,
    headers: &http::HeaderMap,
    uri: &http::Uri,
) -> Result<Arc<Principal>, Error> {
    proxy
        .auth
        .authenticate(headers, uri)
        .await
        .map_err(|reason| {
            proxy
                .metrics
                .auth_failures
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: reason.label(),
                })
                .inc();
            Error::Unauthorized {
                reason,
                challenge: proxy.auth.challenge(),
            }
        })
}

/// Before a gateway is asked for: the user directory it is started from is the caller's (its
/// owner marker matches, or it is made for them now), never another id's (`crate::owners`).
async fn claim_user_dir(proxy: &Proxy, who: &Principal) -> Result<(), Error> {
    if let Some(owners) = &proxy.owners {
        // Every request after the first of a user: one map lookup by the slug it already has.
        if !owners.is_verified(&who.slug, &who.user) {
            owners
                .claim(&who.user, crate::owners::Access::Write)
                .await?;
        }
    }
    Ok(())
}

/// What the request said about its MCP session.
struct SessionUse {
    id: Option<String>,
    ending: bool,
}

/// Phase 2: a session id owned by another user never reaches a gateway.
fn check_session(proxy: &Proxy, req: &Request<Body>, who: &Principal) -> Result<SessionUse, Error> {
    // The legacy SSE transport carries its session in the message endpoint's query.
    let (header_id, query_id) =
        session_ids::of_request(req.headers(), req.uri().query()).map_err(|e| {
            tracing::warn!(user = %who.slug, error = %e, "session id refused");
            Error::BadRequest(e.to_string())
        })?;
    for id in header_id.iter().chain(query_id.iter()) {
        if !proxy.sessions.may_use(id, &who.slug) {
            tracing::warn!(user = %who.slug, "session id of another user presented; refused");
            return Err(Error::SessionNotFound);
        }
    }
    Ok(SessionUse {
        ending: req.method() == Method::DELETE && header_id.is_some(),
        id: header_id,
    })
}

/// Phase 3: the request as the gateway gets it: same path and query, clean headers, the
/// gateway's own token, and the client body streamed as it arrives.
fn upstream_request(
    req: Request<Body>,
    upstream: &Upstream,
    bytes_in: Arc<AtomicU64>,
) -> Result<Request<Body>, Error> {
    let (mut parts, body) = req.into_parts();
    let info = parts.extensions.get::<ConnInfo>().copied();
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
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    parts.uri = http::Uri::builder()
        .scheme("http")
        .authority(upstream.base.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| Error::Internal(format!("upstream uri: {e}")))?;
    parts.version = http::Version::HTTP_11;
    parts.extensions = http::Extensions::new();
    Ok(Request::from_parts(
        parts,
        Body::new(Counted::new(body, bytes_in)),
    ))
}

/// Phase 4: the gateway's answer, headers cleaned, body streamed frame by frame.
fn stream_back(
    proxy: &Proxy,
    resp: http::Response<hyper::body::Incoming>,
    mut exchange: Exchange,
    session: SessionUse,
    route: RouteClass,
) -> Response {
    let (mut parts, body) = resp.into_parts();
    let is_stream = headers::to_client(&mut parts.headers);
    let mut changed = false;
    if let Some(id) = parts
        .headers
        .get(&MCP_SESSION_ID)
        .and_then(|v| v.to_str().ok())
    {
        changed |= proxy.sessions.bind(id, &exchange.slug);
    }
    if session.ending && parts.status.is_success() {
        if let Some(id) = &session.id {
            changed |= proxy.sessions.unbind(id, &exchange.slug);
        }
    }
    // Counting locks every shard of the map: only when the count moved.
    if changed {
        proxy
            .metrics
            .bound_sessions
            .set(proxy.sessions.len() as i64);
    }
    proxy
        .metrics
        .record_request(route, parts.status.as_u16(), exchange.started.elapsed());
    let (keepalive, sniffer) = if is_stream {
        exchange.open_stream();
        (
            proxy.sse_keepalive.map(Keepalive::new),
            (route == RouteClass::Sse).then(|| EndpointSniffer::new(proxy.sessions.clone())),
        )
    } else {
        (None, None)
    };
    let body = Body::new(ProxyBody::new(body, exchange, keepalive, sniffer));
    Response::from_parts(parts, body)
}
