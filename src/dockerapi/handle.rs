//! One call of a gateway: classify, check (and rewrite), forward or refuse.

use super::create::{network_refs, police_create, CreatePolicy, MAX_CREATE_BODY};
use super::engine::EngineError;
use super::images::ImageRef;
use super::refusal::{json_response, Reason, Refusal};
use super::routes::{self, ContainerOp, Route};
use super::scope::Scope;
use super::{Body, Shared};
use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What a call came to.
enum Outcome {
    Answer(Response<Body>),
    Refused(Refusal),
    Engine(EngineError),
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        Outcome::Refused(r)
    }
}

impl From<EngineError> for Outcome {
    fn from(e: EngineError) -> Self {
        Outcome::Engine(e)
    }
}

/// Serves one request of the gateway `scope`.
pub async fn handle(
    shared: Arc<Shared>,
    scope: Arc<Scope>,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path.contains('%') {
        // Escapes could make the engine route what we matched differently; the CLI sends none.
        let r = Refusal::forbidden(Reason::Route, "escaped paths are not allowed");
        return refused(&shared, &scope, "other", r);
    }
    let (version, rest) = routes::split_version(&path);
    let route = routes::classify(req.method(), rest);
    let version = version.map(String::from);
    let class = route.class();
    tracing::debug!(user = %scope.slug, call = class, "gateway Docker API call");
    let mut slot = Some(req);
    let outcome = match dispatch(&shared, &scope, route, version.as_deref(), &mut slot).await {
        Ok(resp) => Outcome::Answer(resp),
        Err(o) => o,
    };
    if let (Outcome::Refused(_), Some(req)) = (&outcome, slot.take()) {
        // A client still sending its body would otherwise get a broken pipe, not the refusal.
        drain(req.into_body()).await;
    }
    match outcome {
        Outcome::Answer(resp) => resp,
        Outcome::Refused(r) => refused(&shared, &scope, class, r),
        Outcome::Engine(e) => {
            tracing::warn!(user = %scope.slug, call = class, error = %e, "gateway Docker API call failed at the engine");
            let body =
                serde_json::json!({"message": "mcp-frontdoor: the Docker engine is not reachable"});
            json_response(StatusCode::BAD_GATEWAY, Bytes::from(body.to_string()))
        }
    }
}

/// Reads and drops what is left of a refused request's body (bounded in size and time).
async fn drain(body: Incoming) {
    let read = Limited::new(body, MAX_CREATE_BODY).collect();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read).await;
}

fn refused(shared: &Shared, scope: &Scope, class: &str, r: Refusal) -> Response<Body> {
    shared.metrics.refused(r.reason);
    tracing::warn!(
        user = %scope.slug, call = class, reason = r.reason.label(), message = %r.message,
        "gateway Docker API call refused"
    );
    r.response()
}

async fn dispatch(
    shared: &Shared,
    scope: &Scope,
    route: Route,
    version: Option<&str>,
    slot: &mut Option<Request<Incoming>>,
) -> Result<Response<Body>, Outcome> {
    let prefix = version.map(|v| format!("/{v}")).unwrap_or_default();
    let query = slot
        .as_ref()
        .and_then(|r| r.uri().query())
        .map(String::from);
    let mut req = || take(slot);
    match route {
        Route::Ping | Route::Version => forward(shared, req()?, None).await,
        Route::ContainerCreate => create(shared, scope, &prefix, query.as_deref(), slot).await,
        Route::ContainerList => {
            let query = list_query(query.as_deref(), scope)?;
            let pq = format!("{prefix}/containers/json?{query}");
            forward(shared, req()?, Some(pq)).await
        }
        Route::Container { id, op } => {
            container(shared, scope, &prefix, &id, op, query.as_deref(), slot).await
        }
        Route::ImageInspect(name) => {
            if !scope.images.allows(&name) {
                return Err(image_refused(&name));
            }
            forward(shared, req()?, None).await
        }
        Route::ImagePull => {
            let q = query_map(query.as_deref())?;
            if q.contains_key("fromSrc") || q.contains_key("repo") {
                return Err(
                    Refusal::forbidden(Reason::Route, "image imports are not allowed").into(),
                );
            }
            let from = q.get("fromImage").map(String::as_str).unwrap_or("");
            let allowed = ImageRef::of_pull(from, q.get("tag").map(String::as_str))
                .is_some_and(|r| scope.images.allows_ref(&r));
            if !allowed {
                return Err(image_refused(from));
            }
            forward(shared, req()?, None).await
        }
        Route::NetworkInspect(id) => {
            if id == scope.gateway {
                return forward(shared, req()?, None).await;
            }
            // By id: the answer is only given when it is the user's network.
            match users_network(shared, scope, &prefix, &id).await? {
                Some((status, body)) => Ok(json_response(status, body)),
                None => Err(no_such("network", &id).into()),
            }
        }
        Route::Info => {
            Err(Refusal::forbidden(Reason::Route, "GET /info is not allowed for gateways").into())
        }
        Route::Other(kind) => Err(Refusal::forbidden(
            Reason::Route,
            format!("this call ({kind}) is not allowed for gateways"),
        )
        .into()),
    }
}

/// The request, for the one branch that forwards or reads it. It stays in `slot` until then so
/// that a refusal can drain its body; a second take would be a bug here, answered with a 500
/// rather than a panic.
fn take(slot: &mut Option<Request<Incoming>>) -> Result<Request<Incoming>, TakenTwice> {
    slot.take().ok_or(TakenTwice)
}

/// [`take`] found the request gone.
struct TakenTwice;

impl From<TakenTwice> for Outcome {
    fn from(_: TakenTwice) -> Self {
        tracing::error!("gateway Docker API: the request was taken twice (a bug)");
        let body = serde_json::json!({"message": "mcp-frontdoor: internal error"});
        Outcome::Answer(json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            Bytes::from(body.to_string()),
        ))
    }
}

/// The engine's inspect of network `id` (an id, an id prefix or a name) when it is the user's
/// network (Swarm overlays have 25-character ids, bridges 64), else `None`.
async fn users_network(
    shared: &Shared,
    scope: &Scope,
    prefix: &str,
    id: &str,
) -> Result<Option<(StatusCode, Bytes)>, EngineError> {
    if !routes::valid_container_ref(id) {
        return Ok(None);
    }
    let (status, body) = shared
        .engine
        .get(&format!("{prefix}/networks/{id}"))
        .await?;
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("Name").and_then(Value::as_str).map(String::from));
    Ok(
        (status.is_success() && name.as_deref() == Some(scope.gateway.as_str()))
            .then_some((status, body)),
    )
}

fn image_refused(name: &str) -> Outcome {
    let shown: String = name.chars().filter(|c| !c.is_control()).take(256).collect();
    Refusal::forbidden(
        Reason::Image,
        format!("image `{shown}` is not in this user's catalog"),
    )
    .into()
}

/// What Docker says for a missing object, for objects that exist but are not the gateway's
/// too (their existence is not the tenant's business).
fn no_such(kind: &str, id: &str) -> Refusal {
    let shown: String = id.chars().filter(|c| !c.is_control()).take(128).collect();
    let reason = if kind == "network" {
        Reason::Network
    } else {
        Reason::Container
    };
    Refusal::new(
        reason,
        StatusCode::NOT_FOUND,
        format!("No such {kind}: {shown}"),
    )
}

async fn create(
    shared: &Shared,
    scope: &Scope,
    prefix: &str,
    query: Option<&str>,
    slot: &mut Option<Request<Incoming>>,
) -> Result<Response<Body>, Outcome> {
    let q = query_map(query)?;
    if q.get("name").is_some_and(|n| !n.is_empty()) {
        return Err(Refusal::forbidden(
            Reason::Name,
            "container names are not allowed (names are shared by every user of the engine); servers go by id",
        )
        .into());
    }
    let (parts, body) = take(slot)?.into_parts();
    let body = Limited::new(body, MAX_CREATE_BODY)
        .collect()
        .await
        .map_err(|_| {
            Refusal::new(
                Reason::Body,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the create body is over {MAX_CREATE_BODY} bytes or broken"),
            )
        })?
        .to_bytes();
    let mut network_ids = Vec::new();
    for r in network_refs(&body, &scope.gateway) {
        if users_network(shared, scope, prefix, &r).await?.is_some() {
            network_ids.push(r);
        }
    }
    let p = &shared.policy;
    let policy = CreatePolicy {
        network: &scope.gateway,
        network_ids: &network_ids,
        labels: &scope.labels,
        images: &scope.images,
        memory: p.memory,
        nano_cpus: p.nano_cpus,
        pids: p.pids,
        cap_add: &p.cap_add,
        binds: &p.binds,
    };
    let rewritten = Bytes::from(police_create(&policy, &body)?);
    let mut parts = parts;
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, rewritten.len().into());
    let resp = forward_parts(shared, parts, full(rewritten), None, None).await?;
    if resp.status() != StatusCode::CREATED {
        return Ok(resp);
    }
    // Remember the id, so the attach/start/wait that follow need no lookup.
    let (parts, body) = resp.into_parts();
    let bytes = Limited::new(body, 64 << 10)
        .collect()
        .await
        .map_err(|_| EngineError::Body)?
        .to_bytes();
    if let Some(id) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("Id").and_then(Value::as_str).map(String::from))
    {
        scope.remember(&id);
    }
    Ok(Response::from_parts(parts, full(bytes)))
}

async fn container(
    shared: &Shared,
    scope: &Scope,
    prefix: &str,
    id: &str,
    op: ContainerOp,
    query: Option<&str>,
    slot: &mut Option<Request<Incoming>>,
) -> Result<Response<Body>, Outcome> {
    if !routes::valid_container_ref(id) {
        return Err(no_such("container", id).into());
    }
    let full_id = if scope.knows(id) {
        id.to_string()
    } else {
        // Resolve name or short id to the full id, once, and forward by that: ids are never
        // reused, so what was checked is what the engine acts on.
        let (status, body) = shared
            .engine
            .get(&format!("{prefix}/containers/{id}/json"))
            .await?;
        if !status.is_success() {
            return Err(no_such("container", id).into());
        }
        let v: Value = serde_json::from_slice(&body).map_err(|_| EngineError::Body)?;
        let full_id = v
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = v.get("Name").and_then(Value::as_str).unwrap_or("");
        let labels: HashMap<String, String> = v
            .pointer("/Config/Labels")
            .cloned()
            .and_then(|l| serde_json::from_value(l).ok())
            .unwrap_or_default();
        if scope.owns(&labels) && !full_id.is_empty() {
            if op == ContainerOp::Inspect {
                return Ok(json_response(status, body));
            }
            full_id
        } else if op == ContainerOp::Inspect && scope.is_gateway(name, &labels) {
            // The real gateway inspects itself (by hostname) to find its network.
            return Ok(json_response(status, body));
        } else {
            return Err(no_such("container", id).into());
        }
    };
    let tail = op.segment().map(|s| format!("/{s}")).unwrap_or_default();
    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
    let pq = format!("{prefix}/containers/{full_id}{tail}{query}");
    let req = take(slot)?;
    forward(shared, req, Some(pq)).await
}

/// Forwards a request with its body streaming, to `path_and_query` when given.
async fn forward(
    shared: &Shared,
    mut req: Request<Incoming>,
    path_and_query: Option<String>,
) -> Result<Response<Body>, Outcome> {
    let upgrade = is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    forward_parts(shared, parts, body.boxed(), upgrade, path_and_query).await
}

fn is_upgrade(h: &http::HeaderMap) -> bool {
    h.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.to_ascii_lowercase().contains("upgrade"))
    })
}

async fn forward_parts(
    shared: &Shared,
    mut parts: http::request::Parts,
    body: Body,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    path_and_query: Option<String>,
) -> Result<Response<Body>, Outcome> {
    if let Some(pq) = path_and_query {
        parts.uri = pq
            .parse()
            .map_err(|_| Refusal::new(Reason::Route, StatusCode::BAD_REQUEST, "malformed path"))?;
    }
    let mut resp = shared.engine.send(Request::from_parts(parts, body)).await?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client) = upgrade {
            let engine = hyper::upgrade::on(&mut resp);
            let stop = shared.stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = bridge(client, engine) => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
    }
    Ok(resp.map(|b| b.boxed()))
}

/// Copies both ways between the gateway's and the engine's upgraded connections (the
/// server's stdio for `docker run -i`), passing half-closes on.
async fn bridge(client: hyper::upgrade::OnUpgrade, engine: hyper::upgrade::OnUpgrade) {
    let (client, engine) = tokio::join!(client, engine);
    match (client, engine) {
        (Ok(c), Ok(e)) => {
            let (mut c, mut e) = (TokioIo::new(c), TokioIo::new(e));
            if let Err(err) = tokio::io::copy_bidirectional(&mut c, &mut e).await {
                tracing::debug!(error = %err, "attach stream ended");
            }
        }
        (c, e) => {
            tracing::debug!(client = c.is_ok(), engine = e.is_ok(), "upgrade failed");
        }
    }
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

/// Query parameters, decoded (`+` is a space, as in forms). A key given twice is refused:
/// the engine reads the first value, so checking any other would let the first one through.
fn query_map(query: Option<&str>) -> Result<HashMap<String, String>, Refusal> {
    let decode = |s: &str| routes::decode(&s.replace('+', " ")).unwrap_or_default();
    let mut out = HashMap::new();
    for p in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        if out.insert(decode(k), decode(v)).is_some() {
            return Err(Refusal::new(
                Reason::Route,
                StatusCode::BAD_REQUEST,
                "a query parameter is given twice",
            ));
        }
    }
    Ok(out)
}

/// The query of a container listing with this gateway's server labels added to its filters
/// (label filters are ANDed, so it sees its own servers and nothing else).
fn list_query(query: Option<&str>, scope: &Scope) -> Result<String, Refusal> {
    let mut q = query_map(query)?;
    let mut filters: serde_json::Map<String, Value> = match q.get("filters") {
        Some(f) if !f.is_empty() => serde_json::from_str(f).map_err(|_| {
            Refusal::new(Reason::Body, StatusCode::BAD_REQUEST, "malformed filters")
        })?,
        _ => serde_json::Map::new(),
    };
    // Both forms the engine reads: {"label": ["k=v"]} and {"label": {"k=v": true}}.
    let mut labels: serde_json::Map<String, Value> = match filters.remove("label") {
        Some(Value::Array(a)) => a
            .into_iter()
            .filter_map(|v| v.as_str().map(|s| (s.to_string(), Value::Bool(true))))
            .collect(),
        Some(Value::Object(o)) => o,
        _ => serde_json::Map::new(),
    };
    for (k, v) in super::scope::server_filter(&scope.instance, &scope.slug) {
        labels.insert(format!("{k}={v}"), Value::Bool(true));
    }
    filters.insert("label".into(), Value::Object(labels));
    q.insert("filters".into(), Value::Object(filters).to_string());
    Ok(q.iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&"))
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerapi::images::AllowedImages;

    #[test]
    fn container_lists_get_the_users_server_labels_in_either_filter_form() {
        let scope = Scope::new("alice", "t1", "mcp-fd-t1-alice", AllowedImages::default());
        let labels_of = |q: &str| -> Value {
            let q = query_map(Some(q)).unwrap();
            let f: Value = serde_json::from_str(&q["filters"]).unwrap();
            f["label"].clone()
        };
        for input in [
            None,
            Some("all=1"),
            Some("all=1&filters=%7B%22label%22%3A%5B%22docker-mcp%3Dtrue%22%5D%7D"),
            Some("filters=%7B%22label%22%3A%7B%22docker-mcp%3Dtrue%22%3Atrue%7D%7D"),
        ] {
            let q = list_query(input, &scope).unwrap();
            let l = labels_of(&q);
            for want in [
                "mcp-frontdoor.instance=t1",
                "mcp-frontdoor.user=alice",
                "mcp-frontdoor.role=server",
            ] {
                assert_eq!(l[want], true, "{input:?} -> {q}");
            }
            if input.is_some_and(|i| i.contains("filters")) {
                assert_eq!(l["docker-mcp=true"], true, "the client's own filter stays");
            }
            if input.is_some_and(|i| i.contains("all=1")) {
                assert!(q.contains("all=1"), "{q}");
            }
        }
        // A client cannot override ours with a label of the same key: filters are ANDed.
        let q = list_query(
            Some("filters=%7B%22label%22%3A%5B%22mcp-frontdoor.user%3Dbob%22%5D%7D"),
            &scope,
        )
        .unwrap();
        let l = labels_of(&q);
        assert_eq!(l["mcp-frontdoor.user=bob"], true);
        assert_eq!(
            l["mcp-frontdoor.user=alice"], true,
            "so the listing is empty"
        );
        assert!(list_query(Some("filters=%7Bnot-json"), &scope).is_err());
        assert!(list_query(Some("filters=%7B%7D&filters=%7B%7D"), &scope).is_err());
        assert!(query_map(Some("fromImage=evil&fromImage=allowed")).is_err());
    }
}
