//! Phase 2, admission: before anything of the user's is touched, the request must come from an
//! allowed page and may only name sessions of its own caller.

use super::{session_ids, sessions::SessionBindings};
use crate::auth::Principal;
use crate::error::Error;
use axum::body::Body;
use http::{Method, Request};

/// What the request said about its MCP session.
pub struct SessionUse {
    pub id: Option<String>,
    /// A DELETE of its session: the binding goes when the gateway agrees.
    pub ending: bool,
}

/// The origin check, then the session check.
pub fn admit(
    req: &Request<Body>,
    who: &Principal,
    allowed_origins: &[String],
    sessions: &SessionBindings,
) -> Result<SessionUse, Error> {
    super::headers::origin_allowed(req.headers(), allowed_origins)
        .map_err(Error::OriginForbidden)?;
    check_session(req, who, sessions)
}

/// A session id owned by another user never reaches a gateway.
fn check_session(
    req: &Request<Body>,
    who: &Principal,
    sessions: &SessionBindings,
) -> Result<SessionUse, Error> {
    // The legacy SSE transport carries its session in the message endpoint's query.
    let (header_id, query_id) =
        session_ids::of_request(req.headers(), req.uri().query()).map_err(|e| {
            tracing::warn!(user = %who.slug, error = %e, "session id refused");
            Error::BadRequest(e.to_string())
        })?;
    for id in header_id.iter().chain(query_id.iter()) {
        if !sessions.may_use(id, &who.slug) {
            tracing::warn!(user = %who.slug, "session id of another user presented; refused");
            return Err(Error::SessionNotFound);
        }
    }
    Ok(SessionUse {
        ending: req.method() == Method::DELETE && header_id.is_some(),
        id: header_id,
    })
}
