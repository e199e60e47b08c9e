//! The REST API under `/api/v1` (axum). Routes and the OpenAPI document come from the same
//! annotated handlers (utoipa-axum), so the published spec cannot drift from the router.

pub mod admin;
mod audit;
mod audit_query;
mod body;
mod caller;
mod catalogs;
mod events;
mod gateways;
mod openapi;
mod page;
mod user_config;
mod users;

use crate::app::AppState;
use crate::error::{json_error, Error};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use http::StatusCode;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use audit_query::CONCURRENT_READS as AUDIT_CONCURRENT_READS;
pub use caller::Caller;
use openapi::Conventions;
pub use openapi::ErrorBody;

/// Largest API request body (a catalog is at most 5 MB; multipart adds a little).
pub const MAX_BODY: usize = 6 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "mcp-frontdoor API", description = "Catalogs, secrets and gateways of mcp-frontdoor. Errors are `{error, message}`."),
    servers((url = "/api/v1")),
    // What `GET /events` sends as each event's `data` (the route's body is the stream).
    components(schemas(crate::events::Event)),
    tags((name = "catalogs"), (name = "users"), (name = "secrets"), (name = "gateways"), (name = "events"), (name = "admin"), (name = "audit"))
)]
struct ApiDoc;

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(catalogs::list_base, catalogs::post_base))
        .routes(routes!(
            catalogs::get_base,
            catalogs::put_base,
            catalogs::delete_base
        ))
        .routes(routes!(catalogs::list_teams))
        .routes(routes!(
            catalogs::get_team,
            catalogs::put_team,
            catalogs::delete_team
        ))
        .routes(routes!(users::get_catalogs, users::put_catalogs))
        .routes(routes!(user_config::toggle_servers))
        .routes(routes!(
            user_config::export_config,
            user_config::import_config
        ))
        .routes(routes!(
            users::list_secrets,
            users::put_secrets,
            users::delete_secret
        ))
        .routes(routes!(gateways::start, gateways::status, gateways::stop))
        .routes(routes!(gateways::logs))
        .routes(routes!(gateways::list))
        .routes(routes!(gateways::pull_images))
        .routes(routes!(events::stream))
        .routes(routes!(admin::start))
        .routes(routes!(admin::status))
        .routes(routes!(audit_query::query))
        .routes(routes!(audit_query::export))
}

/// The OpenAPI 3 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    finish(api_routes().into_openapi())
}

/// Conventions run on the whole document: modifiers in `#[openapi]` would run before the
/// routes' paths are added.
fn finish(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    utoipa::Modify::modify(&Conventions, &mut doc);
    doc
}

/// Routes mounted at `/api/v1`.
pub fn router() -> Router<AppState> {
    let (router, doc) = api_routes().split_for_parts();
    let doc = Arc::new(finish(doc));
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json((*doc).clone()) }
            }),
        )
        // Our own cap (DocBody) answers in JSON; this one also covers multipart.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .fallback(unknown_route)
}

async fn unknown_route(State(state): State<AppState>, req: Request) -> Response {
    let auth = &state.proxy.auth;
    if let Err(reason) = auth.authenticate(req.headers(), req.uri()).await {
        return Error::unauthorized(reason, auth.challenge(), req.headers()).into_response();
    }
    crate::server::mark_authenticated(req.extensions());
    json_error(StatusCode::NOT_FOUND, "not_found", "no such API route")
}
