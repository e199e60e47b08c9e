//! Who is calling the API and what they may touch: admins everything, users their own
//! resources (`me`, their user id or their slug), everyone else 403. The user directory a
//! route touches is claimed for its id first (`crate::owners`).

use crate::app::AppState;
use crate::auth::principal::is_hashed_slug;
use crate::auth::{slug, Principal};
use crate::error::Error;
use crate::owners::{Access, Owners};
use axum::extract::FromRequestParts;
use http::request::Parts;
use std::sync::Arc;

/// The authenticated caller of an API route.
pub struct Caller(pub Arc<Principal>, Arc<Owners>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let auth = &state.proxy.auth;
        match auth.authenticate(&parts.headers, &parts.uri).await {
            Ok(p) => {
                crate::server::mark_authenticated(&parts.extensions);
                if let Some(slot) = parts.extensions.get::<crate::app::CallerSlot>() {
                    let _ = slot.0.set(p.clone());
                }
                Ok(Caller(p, state.services.owners.clone()))
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
                Err(Error::unauthorized(
                    reason,
                    auth.challenge(),
                    &parts.headers,
                ))
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

    /// True when `{user}` in a path (or a query) names the caller.
    pub fn is_self(&self, path_user: &str) -> bool {
        let p = &self.0;
        path_user == "me" || path_user == p.user || path_user == p.slug
    }

    /// Resolves `{user}` in a path: the caller themself, or anyone for an admin (by id, or by
    /// the hashed slug of an existing user), with the user directory claimed for that id.
    pub async fn user(&self, path_user: &str, access: Access) -> Result<UserRef, Error> {
        let p = &self.0;
        if self.is_self(path_user) {
            return Ok(UserRef {
                slug: self.1.claim(&p.user, access).await?,
                own_teams: Some(p.teams.clone()),
            });
        }
        if p.admin {
            // A hashed slug is never a plain id, so it can only mean the slug itself.
            let slug = if is_hashed_slug(path_user) {
                self.1.existing(path_user)?
            } else {
                self.1.claim(path_user, access).await?
            };
            return Ok(UserRef {
                slug,
                own_teams: None,
            });
        }
        Err(Error::Forbidden(
            "you may only access your own user (use `me`)".into(),
        ))
    }

    /// The slug an audit line names for `{user}`, whether or not the request is allowed
    /// (nothing is claimed).
    pub fn target_slug(&self, path_user: &str) -> String {
        if self.is_self(path_user) {
            self.0.slug.clone()
        } else if is_hashed_slug(path_user) {
            path_user.to_string()
        } else {
            slug(path_user)
        }
    }
}
