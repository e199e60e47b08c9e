//! Operator control of gateways: start, status, stop, logs, list.

use super::audit::admit;
use super::caller::Caller;
use crate::app::AppState;
use crate::audit::{Action, Target};
use crate::auth::Principal;
use crate::catalog::regen::read_merged_header;
use crate::catalog::UserFile;
use crate::error::Error;
use crate::gateways::{GatewayControl, GatewayStatus, ImagePull};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;

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
fn principal_for(s: &AppState, caller: &Caller, path_user: &str) -> Result<Principal, Error> {
    let user = caller.user(path_user)?;
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
#[utoipa::path(post, path = "/users/{user}/gateway", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    responses((status = 200, body = GatewayStatus), (status = 401), (status = 403), (status = 409), (status = 429), (status = 503)),
    security(("bearer" = [])))]
pub async fn start(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<GatewayStatus>, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::gateway(&crate::auth::slug(&user));
    let result = async {
        let principal = principal_for(&s, &caller, &user)?;
        Ok(control(&s)?.start(&principal).await?)
    }
    .await;
    permit
        .record(&s, Action::GatewayStart, target, result)
        .await
        .map(Json)
}

/// A user's gateway state.
#[utoipa::path(get, path = "/users/{user}/gateway", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    responses((status = 200, body = GatewayStatus), (status = 401), (status = 403), (status = 409)),
    security(("bearer" = [])))]
pub async fn status(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Json<GatewayStatus>, Error> {
    let user = caller.user(&user)?;
    Ok(Json(control(&s)?.status(&user.slug).await?))
}

/// Stop and remove a user's gateway.
#[utoipa::path(delete, path = "/users/{user}/gateway", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`")),
    responses((status = 204), (status = 401), (status = 403), (status = 429), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn stop(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<StatusCode, Error> {
    let permit = admit(&s, &caller)?;
    let target = Target::gateway(&crate::auth::slug(&user));
    let result = async {
        let user = caller.user(&user)?;
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

/// The last lines of a user's gateway log.
#[utoipa::path(get, path = "/users/{user}/gateway/logs", tag = "gateways",
    params(("user" = String, Path, description = "user id, slug, or `me`"), TailQuery),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401), (status = 403), (status = 404), (status = 409)),
    security(("bearer" = [])))]
pub async fn logs(
    State(s): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    Query(q): Query<TailQuery>,
) -> Result<Response, Error> {
    let user = caller.user(&user)?;
    let tail = q.tail.unwrap_or(100).min(10_000);
    let text = control(&s)?.logs(&user.slug, tail).await?;
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response())
}

/// Every gateway this front door manages.
#[utoipa::path(get, path = "/gateways", tag = "gateways",
    responses((status = 200, body = [GatewayStatus]), (status = 401), (status = 403), (status = 409)),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<GatewayStatus>>, Error> {
    caller.require_admin()?;
    Ok(Json(control(&s)?.list().await?))
}

/// Pull ahead of time every image the catalogs name (base and team catalogs) plus the gateway
/// image, so no user's first request waits for a pull. Answers when every pull has finished.
#[utoipa::path(post, path = "/admin/images/pull", tag = "admin",
    responses((status = 200, body = [ImagePull]), (status = 401), (status = 403), (status = 409)),
    security(("bearer" = [])))]
pub async fn pull_images(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ImagePull>>, Error> {
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
    Ok(Json(control.pull_images(&images).await?))
}
