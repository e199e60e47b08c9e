//! The REST API under `/api/v1`. Every route needs a valid token; unknown routes are a JSON 404.

use crate::app::AppState;
use crate::error::{json_error, Error};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::StatusCode;

/// Largest API request body (a catalog is at most 5 MB; multipart adds a little).
pub const MAX_BODY: usize = 6 * 1024 * 1024;

/// Routes mounted at `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new().fallback(unknown_route)
}

async fn unknown_route(State(state): State<AppState>, req: Request) -> Response {
    let auth = &state.proxy.auth;
    if let Err(reason) = auth.authenticate(req.headers(), req.uri()).await {
        return Error::Unauthorized {
            reason,
            challenge: auth.challenge(),
        }
        .into_response();
    }
    json_error(StatusCode::NOT_FOUND, "not_found", "no such API route")
}
