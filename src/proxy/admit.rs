//! Phase 2, admission: before anything of the user's is touched, the request must come from an
//! allowed page and may only name sessions of its own caller.

use super::{sealed::SessionSeal, session_ids, sessions::SessionBindings};
use crate::auth::Principal;
use crate::error::Error;
use axum::body::Body;
use http::Request;

/// What the request said about its MCP session.
pub struct SessionUse {
    /// The gateway's id inside the sealed `Mcp-Session-Id` the client sent.
    pub upstream: Option<String>,
    /// The client's sealed header as it came (moved out by [`unseal_headers`]), handed back
    /// unchanged when the gateway answers with the same session: no new string, no copy.
    pub sent: Option<http::HeaderValue>,
}

/// The origin check, then the session check.
pub fn admit(
    req: &Request<Body>,
    who: &Principal,
    allowed_origins: &[String],
    sessions: &SessionBindings,
    seal: &SessionSeal,
) -> Result<SessionUse, Error> {
    super::headers::origin_allowed(req.headers(), allowed_origins)
        .map_err(Error::OriginForbidden)?;
    check_session(req, who, sessions, seal)
}

/// A session id owned by another user never reaches a gateway. The header id must open as
/// sealed for the caller (`sealed.rs`); the legacy SSE id in the query is checked against the
/// bindings this process learnt from the `endpoint` event (that stream and its messages stay
/// on one replica in practice, and with per-user gateways an id unknown here still only
/// reaches the caller's own gateway, where another user's session does not exist).
fn check_session(
    req: &Request<Body>,
    who: &Principal,
    sessions: &SessionBindings,
    seal: &SessionSeal,
) -> Result<SessionUse, Error> {
    // The legacy SSE transport carries its session in the message endpoint's query.
    let (header_id, query_id) =
        session_ids::of_request(req.headers(), req.uri().query()).map_err(|e| {
            tracing::warn!(user = %who.slug, error = %e, "session id refused");
            Error::BadRequest(e.to_string())
        })?;
    if let Some(id) = &query_id {
        if !sessions.may_use(id, &who.slug) {
            tracing::warn!(user = %who.slug, "session id of another user presented; refused");
            return Err(Error::SessionNotFound);
        }
    }
    let upstream = match header_id {
        Some(sealed) => match seal.open(&who.slug, &sealed) {
            Some(upstream) => Some(upstream),
            None => {
                tracing::warn!(user = %who.slug, "session id that does not open for this user; refused");
                return Err(Error::SessionNotFound);
            }
        },
        None => None,
    };
    Ok(SessionUse {
        upstream,
        sent: None,
    })
}

/// Puts the gateway's own id in place of every spelling of the sealed header.
pub fn unseal_headers(headers: &mut http::HeaderMap, session: &mut SessionUse) {
    let Some(upstream) = &session.upstream else {
        return;
    };
    // Every spelling carries the same id (`session_ids`); the usual one is taken first, the
    // others are rare.
    session.sent = headers.remove(super::MCP_SESSION_ID);
    if headers
        .keys()
        .any(|n| session_ids::is_session_header(n.as_str()))
    {
        let names: Vec<_> = headers
            .keys()
            .filter(|n| session_ids::is_session_header(n.as_str()))
            .cloned()
            .collect();
        for n in names {
            let value = headers.remove(n);
            session.sent = session.sent.take().or(value);
        }
    }
    if let Ok(v) = http::HeaderValue::from_str(upstream) {
        headers.insert(super::MCP_SESSION_ID, v);
    }
}
