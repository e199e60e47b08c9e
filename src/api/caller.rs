//! Who is calling the API and what they may touch: admins everything, users their own
//! resources (`me`, their user id or their slug), everyone else 403.

use crate::app::AppState;
use crate::auth::{slug, Principal};
use crate::error::Error;
use axum::extract::FromRequestParts;
use http::request::Parts;
use std::sync::Arc;

/// The authenticated caller of an API route.
pub struct Caller(pub Arc<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let auth = &state.proxy.auth;
        match auth.authenticate(&parts.headers, &parts.uri).await {
            Ok(p) => {
                if let Some(slot) = parts.extensions.get::<crate::app::CallerSlot>() {
                    let _ = slot.0.set(p.slug.clone());
                }
                Ok(Caller(p))
            }
            Err(reason) => {
                state
                    .proxy
                    .metrics
                    .auth_failures
                    .get_or_create(&crate::metrics::ReasonLabels {
                        reason: reason.label(),
                    })
                    .inc();
                Err(Error::Unauthorized {
                    reason,
                    challenge: auth.challenge(),
                })
            }
        }
    }
}

/// The user a path names, after authorization.
pub struct UserRef {
    pub slug: String,
    /// The caller's own teams when the caller is that user (from the token).
    pub own_teams: Option<Vec<String>>,
}

impl Caller {
    /// The caller's slug (the audit log's actor).
    pub fn slug(&self) -> &str {
        &self.0.slug
    }

    /// Admin-only routes.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.0.admin {
            Ok(())
        } else {
            Err(Error::Forbidden("this route needs the admin role".into()))
        }
    }

    /// Resolves `{user}` in a path: the caller themself, or anyone for an admin.
    pub fn user(&self, path_user: &str) -> Result<UserRef, Error> {
        let p = &self.0;
        if path_user == "me" || path_user == p.user || path_user == p.slug {
            return Ok(UserRef {
                slug: p.slug.clone(),
                own_teams: Some(p.teams.clone()),
            });
        }
        if p.admin {
            return Ok(UserRef {
                slug: slug(path_user),
                own_teams: None,
            });
        }
        Err(Error::Forbidden(
            "you may only access your own user (use `me`)".into(),
        ))
    }
}
