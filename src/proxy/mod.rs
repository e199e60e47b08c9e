//! The request path, in phases: authenticate → check origin and session → claim the user's
//! directory → ensure gateway → forward → stream back. Each phase is one function below;
//! nothing here buffers a body.

mod body;
mod headers;
pub mod rpc;
pub mod session_ids;
pub mod sessions;
mod upstream;

pub use body::find_session_id;
pub use upstream::{UpstreamClient, UpstreamError};

use crate::auth::{Authenticator, Principal};
use crate::error::Error;
use crate::gateways::{GatewayResolver, Upstream};
use crate::metrics::{Metrics, RouteClass};
use crate::server::drain::{drain, Drained, DRAIN_MAX_BYTES};
use crate::server::ConnInfo;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use body::{Counted, EndpointSniffer, Exchange, Keepalive, ProxyBody};
use http::{HeaderName, Method, Request};
use http_body_util::BodyExt;
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
        Err(Failed {
            err,
            slug,
            body,
            ids,
        }) => {
            let status = err.status().as_u16();
            proxy
                .metrics
                .record_request(route, status, started.elapsed());
            tracing::info!(
                %method, ?route, user = slug.as_deref().unwrap_or("-"), status,
                duration_ms = started.elapsed().as_millis() as u64, error = %err, "request"
            );
            if !matches!(route, RouteClass::Mcp | RouteClass::Sse) {
                // An unread body is discarded by the connection (`server::drain`).
                return err.into_response();
            }
            // MCP clients show JSON-RPC errors: find the request's id in a small body (this
            // also reads it before the early answer, see `server::drain`).
            let ids = match (ids, body) {
                (rpc::RpcIds::Unknown, Some(body)) => match drain(body).await {
                    Drained::Whole(bytes) => rpc::ids_of(&bytes),
                    Drained::Left => rpc::RpcIds::Unknown,
                },
                (ids, _) => ids,
            };
            err.into_jsonrpc_response(&ids)
        }
    }
}

/// A request the front door answers itself, with what is left of it.
struct Failed {
    err: Error,
    slug: Option<Arc<str>>,
    /// The request body when it was not sent on.
    body: Option<Body>,
    /// The JSON-RPC ids, when the body was read before forwarding.
    ids: rpc::RpcIds,
}

/// The most time a small MCP request body may take to arrive before it is forwarded.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A POST to `/mcp` with a small announced body is read before the gateway is asked for,
/// so its JSON-RPC id is known for any error after this point; anything else streams.
async fn read_small_rpc(req: Request<Body>) -> Result<(Request<Body>, rpc::RpcIds), Error> {
    use http_body::Body as _;
    let small = req.method() == Method::POST
        && req
            .body()
            .size_hint()
            .exact()
            .is_some_and(|n| n > 0 && n <= DRAIN_MAX_BYTES);
    if !small {
        return Ok((req, rpc::RpcIds::Unknown));
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, body.collect()).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(_)) => {
            return Err(Error::BadRequest(
                "the request body could not be read".into(),
            ))
        }
        Err(_) => {
            return Err(Error::BadRequest(format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            )))
        }
    };
    let ids = rpc::ids_of(&bytes);
    Ok((Request::from_parts(parts, Body::from(bytes)), ids))
}

async fn forward(
    proxy: &Proxy,
    req: Request<Body>,
    route: RouteClass,
    started: Instant,
) -> Result<Response, Failed> {
    // Until the request is sent on, a failure hands its body back (see `handle`).
    let early = |err: Error, slug: Option<Arc<str>>, req: Request<Body>, ids| Failed {
        err,
        slug,
        body: Some(req.into_body()),
        ids,
    };
    let principal = match authenticate(proxy, req.headers(), req.uri()).await {
        Ok(p) => p,
        Err(e) => return Err(early(e, None, req, rpc::RpcIds::Unknown)),
    };
    crate::server::mark_authenticated(req.extensions());
    let slug: Arc<str> = Arc::from(principal.slug.as_str());
    let fail = |err: Error| Failed {
        err,
        slug: Some(slug.clone()),
        body: None,
        ids: rpc::RpcIds::Unknown,
    };
    if let Err(o) = headers::origin_allowed(req.headers(), &proxy.allowed_origins) {
        let s = Some(slug.clone());
        return Err(early(
            Error::OriginForbidden(o),
            s,
            req,
            rpc::RpcIds::Unknown,
        ));
    }
    let session = match check_session(proxy, &req, &principal) {
        Ok(s) => s,
        Err(e) => return Err(early(e, Some(slug.clone()), req, rpc::RpcIds::Unknown)),
    };
    if let Err(e) = claim_user_dir(proxy, &principal).await {
        return Err(early(e, Some(slug.clone()), req, rpc::RpcIds::Unknown));
    }
    let (req, ids) = if route == RouteClass::Mcp {
        read_small_rpc(req).await.map_err(fail)?
    } else {
        (req, rpc::RpcIds::Unknown)
    };
    let fail = |err: Error| Failed {
        err,
        slug: Some(slug.clone()),
        body: None,
        ids: ids.clone(),
    };
    let mut upstream = match proxy.resolver.ensure(&principal).await {
        Ok(u) => u,
        Err(e) => return Err(early(e.into(), Some(slug.clone()), req, ids)),
    };
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
            Error::unauthorized(reason, proxy.auth.challenge(), headers)
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
