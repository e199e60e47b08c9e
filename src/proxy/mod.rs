//! The request path, in phases: authenticate → admit (origin, session) → resolve (claim the
//! user's directory, ensure their gateway) → send (with the resolver's retry policy) →
//! respond (stream back). Each phase is one function; the request's context travels through
//! them, and every request leaves through one exit (`proxy::exchange`) that counts and logs
//! it, answered or refused. Nothing here buffers a body beyond a small JSON-RPC request.

mod admit;
mod body;
pub mod exchange;
mod headers;
mod relay;
pub mod rpc;
pub mod sealed;
mod send;
pub mod session_ids;
pub mod sessions;
pub mod upstream;

pub use body::find_session_id;
pub use upstream::UpstreamClient;

use crate::auth::Principal;
use crate::error::Error;
use crate::gate::AuthGate;
use crate::gateways::{GatewayResolver, Upstream};
use crate::metrics::{Metrics, RouteClass};
use crate::server::drain::{drain, whole, Drained, DRAIN_MAX_BYTES};
use admit::SessionUse;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use body::{EndpointSniffer, Keepalive, ProxyBody};
use bytes::Bytes;
use exchange::RequestLine;
use http::{HeaderName, Method, Request};
use send::Sent;
use sessions::SessionBindings;
use std::sync::Arc;
use std::time::Duration;

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// Everything the data plane needs, shared by all requests (authentication is the app's,
/// shared with the API: [`AuthGate`]).
pub struct Proxy {
    pub resolver: Arc<dyn GatewayResolver>,
    pub client: UpstreamClient,
    pub sessions: Arc<SessionBindings>,
    /// Seals the gateways' `Mcp-Session-Id`s for their user (any replica opens them).
    pub seal: Arc<sealed::SessionSeal>,
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

/// One request on its way through the phases: what is known about it so far.
struct Context {
    line: RequestLine,
    /// A small JSON-RPC body read before forwarding; its ids are looked for only when the
    /// front door answers the request itself (a refusal echoes them), never on the way through.
    rpc_body: Option<Bytes>,
}

/// A request the front door answers itself.
struct Failed {
    err: Error,
    /// The request body when it was not sent on.
    body: Option<Body>,
}

impl Failed {
    /// Before the request is sent on, a failure hands its body back (see [`refuse`]).
    fn unsent(err: impl Into<Error>, req: Request<Body>) -> Self {
        Self {
            err: err.into(),
            body: Some(req.into_body()),
        }
    }
}

impl From<Error> for Failed {
    fn from(err: Error) -> Self {
        Self { err, body: None }
    }
}

/// Handles one request for a user's gateway.
pub async fn handle(proxy: Arc<Proxy>, gate: Arc<AuthGate>, req: Request<Body>) -> Response {
    let mut cx = Context {
        line: RequestLine::new(req.method().clone(), classify(req.uri().path())),
        rpc_body: None,
    };
    match run(&proxy, &gate, &mut cx, req).await {
        Ok((sent, session)) => respond(&proxy, cx, sent, session),
        // Boxed: reading a refused body for its JSON-RPC id is room the answered path
        // need not carry.
        Err(failed) => Box::pin(refuse(&proxy, cx, failed)).await,
    }
}

/// The phases, in order.
async fn run(
    proxy: &Proxy,
    gate: &AuthGate,
    cx: &mut Context,
    req: Request<Body>,
) -> Result<(Sent, SessionUse), Failed> {
    // Phase 1: who is calling.
    let who = match gate.check(req.headers(), req.uri(), req.extensions()).await {
        Ok(p) => p,
        Err(e) => return Err(Failed::unsent(e, req)),
    };
    cx.line.user = Some(Arc::from(who.slug.as_str()));
    // Phase 2: from an allowed page, naming only the caller's own sessions.
    let mut session = match admit::admit(
        &req,
        &who,
        &proxy.allowed_origins,
        &proxy.sessions,
        &proxy.seal,
    ) {
        Ok(s) => s,
        Err(e) => return Err(Failed::unsent(e, req)),
    };
    let mut req = req;
    admit::unseal_headers(req.headers_mut(), &mut session);
    let req = if cx.line.route == RouteClass::Mcp {
        let (req, body) = read_small_rpc(req).await?;
        cx.rpc_body = body;
        req
    } else {
        req
    };
    // Phase 3: the caller's gateway.
    let upstream = match resolve(proxy, &who).await {
        Ok(u) => u,
        Err(e) => return Err(Failed::unsent(e, req)),
    };
    // Phase 4: sent, once more if the resolver's policy allows (`send`).
    let sent = send::send(proxy, &who, req, upstream).await?;
    if cx.line.route == RouteClass::Sse && sent.resp.status().is_redirection() {
        return Err(Error::LegacySseUnsupported.into());
    }
    Ok((sent, session))
}

/// The exit of a request the front door answers itself: counted and logged now; on the MCP
/// routes as a JSON-RPC error, which MCP clients show.
async fn refuse(proxy: &Proxy, cx: Context, Failed { err, body }: Failed) -> Response {
    let route = cx.line.route;
    drop(
        cx.line
            .answered(err.status().as_u16(), proxy.metrics.clone())
            .failed(&err),
    );
    if !matches!(route, RouteClass::Mcp | RouteClass::Sse) {
        // An unread body is discarded by the connection (`server::drain`).
        return err.into_response();
    }
    // Find the request's id in a small body (this also reads it before the early answer, see
    // `server::drain`).
    let ids = match (cx.rpc_body, body) {
        (Some(read), _) => rpc::ids_of(&read),
        (None, Some(body)) => match drain(body).await {
            Drained::Whole(bytes) => rpc::ids_of(&bytes),
            Drained::Left => rpc::RpcIds::Unknown,
        },
        (None, None) => rpc::RpcIds::Unknown,
    };
    err.into_jsonrpc_response(&ids)
}

/// The most time a small MCP request body may take to arrive before it is forwarded.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Before resolving: a POST to `/mcp` with a small announced body is read before the gateway
/// is asked for, so its JSON-RPC id can be echoed by any error after this point; anything else
/// streams. Returns the request with the body in one piece, and that piece.
async fn read_small_rpc(req: Request<Body>) -> Result<(Request<Body>, Option<Bytes>), Error> {
    use http_body::Body as _;
    let small = req.method() == Method::POST
        && req
            .body()
            .size_hint()
            .exact()
            .is_some_and(|n| n > 0 && n <= DRAIN_MAX_BYTES);
    if !small {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, whole(body, DRAIN_MAX_BYTES)).await {
        Ok(Some(b)) => b,
        Ok(None) => {
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
    Ok((
        Request::from_parts(parts, Body::from(bytes.clone())),
        Some(bytes),
    ))
}

/// Phase 3: the user's gateway, started from their own directory (claimed for the caller's id
/// first: its owner marker matches, or it is made for them now; never another id's,
/// `crate::owners`).
async fn resolve(proxy: &Proxy, who: &Principal) -> Result<Upstream, Error> {
    if let Some(owners) = &proxy.owners {
        // Every request after the first of a user: one map lookup by the slug it already has.
        if !owners.is_verified(&who.slug, &who.user) {
            owners
                .claim(&who.user, crate::owners::Access::Write)
                .await?;
        }
    }
    Ok(proxy.resolver.ensure(who).await?)
}

/// The gateway's `Mcp-Session-Id` leaves sealed for its user: the client's own sealed id when
/// it names the same session (so the id a client holds stays the same), else a fresh one.
fn seal_response_session(
    proxy: &Proxy,
    headers: &mut http::HeaderMap,
    user: &str,
    session: &SessionUse,
) {
    let Some(upstream) = headers.remove(&MCP_SESSION_ID) else {
        return;
    };
    let Ok(upstream) = upstream.to_str() else {
        return;
    };
    let sealed = match (&session.upstream, &session.sent) {
        (Some(same), Some(sent)) if same == upstream => Some(sent.clone()),
        _ => proxy
            .seal
            .seal(user, upstream)
            .and_then(|s| http::HeaderValue::from_str(&s).ok()),
    };
    match sealed {
        Some(v) => {
            headers.insert(MCP_SESSION_ID, v);
        }
        None => tracing::warn!(user, "gateway session id too long to seal; not handed on"),
    }
}

/// Phase 5, the exit of an answered request: the gateway's answer, headers cleaned, body
/// streamed frame by frame; counted now, logged when the body ends.
fn respond(proxy: &Proxy, cx: Context, sent: Sent, session: SessionUse) -> Response {
    let Sent {
        resp,
        upstream,
        bytes_in,
    } = sent;
    let route = cx.line.route;
    let (mut parts, body) = resp.into_parts();
    let is_stream = headers::to_client(&mut parts.headers);
    let user = cx.line.user.clone().unwrap_or_default();
    seal_response_session(proxy, &mut parts.headers, &user, &session);
    let mut exchange = cx
        .line
        .answered(parts.status.as_u16(), proxy.metrics.clone())
        .proxied(bytes_in, upstream.lease);
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
