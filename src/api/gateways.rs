//! Operator control of gateways: start, status, stop, logs, list.

use super::audit::admit;
use super::caller::Caller;
use super::page::{paginate, PageQuery};
use crate::audit::{Action, Target};
use crate::auth::Principal;
use crate::catalog::regen::read_merged_header;
use crate::catalog::UserFile;
use crate::error::Error;
use crate::gateways::{GatewayControl, GatewayStatus, ImagePull, PullOutcome};
use crate::owners::Access;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

fn control(s: &AppState) -> Result<Arc<dyn GatewayControl>, Error> {
    s.control.clone().ok_or_else(|| {
        Error::Conflict(
            "this front door does not manage per-user gateways (gateways.upstream_url is set)"
                .into(),
        )
    })
}

/// The principal a gateway is started for: the caller, or (for an admin acting on someone
/// else) a principal with the teams recorded at that user's last merge.
async fn principal_for(s: &AppState, caller: &Caller, path_user: &str) -> Result<Principal, Error> {
    // A start writes the user's merged catalog.
    let user = caller.user(path_user, Access::Write).await?;
    if user.own_teams.is_some() {
        return Ok((*caller.0).clone());
    }
    let path = s
        .services
        .layout
        .user_file(&user.slug, UserFile::Merged)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let teams = read_merged_header(&path)?
        .map(|(_, t)| t)
        .unwrap_or_default();
    Ok(Principal {
        user: path_user.to_string(),
        slug: user.slug,
        teams,
        roles: Vec::new(),
        admin: false,
        expires_at: 0,
    })
}

/// Start a user's gateway now (as their first request would) and wait until it is ready.
#[utoipa::path(post, path = "/users/{user}/gateway", operation_id = "start_gateway", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    responses((status = 200, body = GatewayStatus), (status = 401), (status = 403), (status = 409), (status = 429), (status = 503)),
    security(("bearer" = [])))]
pub async fn start(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<GatewayStatus>, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::gateway(&caller.target_slug(&user));
    let result = async {
        let principal = principal_for(&s, &caller, &user).await?;
        Ok(control(&s)?.start(&principal).await?)
    }
    .await;
    permit
        .record(&s, Action::GatewayStart, target, result)
        .await
        .map(Json)
}

/// A user's gateway state.
#[utoipa::path(get, path = "/users/{user}/gateway", operation_id = "gateway_status", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    responses((status = 200, body = GatewayStatus), (status = 401), (status = 403), (status = 409)),
    security(("bearer" = [])))]
pub async fn status(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<GatewayStatus>, Error> {
    let user = caller.user(&user, Access::Read).await?;
    Ok(Json(control(&s)?.status(&user.slug).await?))
}

/// Stop and remove a user's gateway.
#[utoipa::path(delete, path = "/users/{user}/gateway", operation_id = "stop_gateway", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    responses((status = 204), (status = 401), (status = 403), (status = 429), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn stop(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<StatusCode, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::gateway(&caller.target_slug(&user));
    let result = async {
        let user = caller.user(&user, Access::Read).await?;
        if control(&s)?.stop(&user.slug).await? {
            Ok(())
        } else {
            Err(Error::NotFound("this user has no running gateway".into()))
        }
    }
    .await;
    permit
        .record(&s, Action::GatewayStop, target, result)
        .await
        .map(|_| StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct TailQuery {
    /// Number of log lines (default 100, at most 10000).
    pub tail: Option<usize>,
}

/// The last lines of a user's gateway log, each starting with the time the engine received
/// it (RFC 3339, UTC). 404 when the user has no gateway container, like `DELETE`.
#[utoipa::path(get, path = "/users/{user}/gateway/logs", operation_id = "gateway_logs", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`"), TailQuery),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn logs(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    Query(q): Query<TailQuery>,
) -> Result<Response, Error> {
    let user = caller.user(&user, Access::Read).await?;
    let tail = q.tail.unwrap_or(100).min(10_000);
    let text = control(&s)?
        .logs(&user.slug, tail)
        .await?
        .ok_or_else(|| Error::NotFound("this user has no gateway; nothing has logged".into()))?;
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response())
}

/// One page of gateways, by user slug.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayPage {
    pub items: Vec<GatewayStatus>,
    /// Pass as `?cursor=` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Every gateway this front door manages, by user slug, a page at a time.
#[utoipa::path(get, path = "/gateways", tag = "gateways", operation_id = "list_gateways",
    params(PageQuery),
    responses((status = 200, body = GatewayPage), (status = 400), (status = 401), (status = 403), (status = 409)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<GatewayPage>, Error> {
    caller.require_admin()?;
    let all = control(&s)?.list().await?;
    let (items, next_cursor) = paginate(all, |g| &g.user, &page)?;
    Ok(Json(GatewayPage { items, next_cursor }))
}

/// What a pre-pull did, image by image.
#[derive(Debug, Serialize, ToSchema)]
pub struct PullReport {
    /// Only when every image failed (502): `pull_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Only when every image failed (502).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub present: usize,
    pub pulled: usize,
    pub failed: usize,
    pub images: Vec<ImagePull>,
}

impl PullReport {
    fn new(images: Vec<ImagePull>) -> Self {
        let count = |o| images.iter().filter(|i| i.outcome == o).count();
        let (present, pulled, failed) = (
            count(PullOutcome::Present),
            count(PullOutcome::Pulled),
            count(PullOutcome::Failed),
        );
        Self {
            error: None,
            message: None,
            present,
            pulled,
            failed,
            images,
        }
    }

    /// 200 when nothing failed, 207 when some images failed, 502 when all of them did.
    fn into_response(mut self) -> Response {
        let status = if self.failed == 0 {
            StatusCode::OK
        } else if self.failed < self.images.len() {
            StatusCode::MULTI_STATUS
        } else {
            self.error = Some("pull_failed".into());
            self.message = Some(format!(
                "none of the {} images could be pulled; `images` has each reason",
                self.failed
            ));
            StatusCode::BAD_GATEWAY
        };
        (status, Json(self)).into_response()
    }
}

/// Pull ahead of time every image the catalogs name (base and team catalogs) plus the gateway
/// image, so no user's first request waits for a pull. Answers when every pull has finished:
/// 200 when every image is there, 207 when some failed, 502 when all failed; the body lists
/// each image's outcome and, for a failure, the reason.
#[utoipa::path(post, path = "/admin/images/pull", tag = "admin", operation_id = "pull_images",
    responses(
        (status = 200, description = "Every image is present or was pulled", body = PullReport),
        (status = 207, description = "Some images failed; `images` has each reason", body = PullReport),
        (status = 502, description = "Every image failed (`error` is `pull_failed`); `images` has each reason", body = PullReport),
        (status = 401), (status = 403), (status = 409), (status = 503)),
    security(("bearer" = [])))]
pub async fn pull_images(State(s): State<AppState>, caller: Caller) -> Result<Response, Error> {
    caller.require_admin()?;
    let control = control(&s)?;
    let store = s.services.catalogs.clone();
    let gateway_image = s.gateway_image.clone();
    let images = super::body::blocking(move || {
        let mut images = std::collections::BTreeSet::new();
        images.extend(gateway_image);
        for base in store.list_base()? {
            let (_, c) = store.get_base(&base.name)?;
            images.extend(
                c.registry
                    .values()
                    .filter_map(|srv| srv.image().map(str::to_string)),
            );
        }
        for team in store.list_teams()? {
            let c = store.get_team(&team)?;
            images.extend(
                c.registry
                    .values()
                    .filter_map(|srv| srv.image().map(str::to_string)),
            );
        }
        Ok(images.into_iter().collect::<Vec<_>>())
    })
    .await?;
    Ok(PullReport::new(control.pull_images(&images).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pull(outcome: PullOutcome) -> ImagePull {
        ImagePull {
            image: "x".into(),
            outcome,
            reason: (outcome == PullOutcome::Failed).then(|| "why".into()),
        }
    }

    #[test]
    fn the_status_of_a_pre_pull_says_how_much_failed() {
        use PullOutcome::*;
        for (outcomes, status) in [
            (vec![], 200),
            (vec![Present, Pulled], 200),
            (vec![Present, Failed, Failed], 207),
            (vec![Failed, Failed], 502),
        ] {
            let resp = PullReport::new(outcomes.into_iter().map(pull).collect()).into_response();
            assert_eq!(resp.status().as_u16(), status);
        }
    }
}
