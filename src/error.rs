//! The one place where errors become an HTTP status and a JSON body `{error, message}`.
//! Messages are ours: upstream error text is never echoed to a client.

use crate::auth::AuthFailure;
use crate::gateways::GatewayError;
use crate::proxy::UpstreamError;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use std::time::Duration;

/// Every way a request handled by the front door can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{reason}")]
    Unauthorized {
        reason: AuthFailure,
        /// The `WWW-Authenticate` challenge pointing at the RFC 9728 metadata.
        challenge: HeaderValue,
    },
    #[error("origin `{0}` is not allowed")]
    OriginForbidden(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("unknown MCP session")]
    SessionNotFound,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Gateway(#[from] GatewayError),
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("internal error")]
    Internal(String),
}

impl Error {
    /// Status, machine-readable code and an optional `Retry-After`.
    fn parts(&self) -> (StatusCode, &'static str, Option<Duration>) {
        use GatewayError as G;
        match self {
            Error::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Error::OriginForbidden(_) => (StatusCode::FORBIDDEN, "forbidden_origin", None),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            Error::SessionNotFound => (StatusCode::NOT_FOUND, "session_not_found", None),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", None),
            Error::Gateway(G::AtCapacity { retry_after }) => (
                StatusCode::TOO_MANY_REQUESTS,
                "at_capacity",
                Some(*retry_after),
            ),
            Error::Gateway(G::Unavailable { retry_after, .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_unavailable",
                Some(*retry_after),
            ),
            Error::Gateway(G::NotConfigured) => {
                (StatusCode::SERVICE_UNAVAILABLE, "no_gateway_runtime", None)
            }
            Error::Upstream(UpstreamError::Timeout) => {
                (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", None)
            }
            Error::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_unavailable", None),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }
}

/// A JSON error response outside the [`Error`] enum (API handlers build these too).
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, retry_after) = self.parts();
        if let Error::Internal(detail) = &self {
            // The detail is for operators only.
            tracing::error!(%detail, "internal error");
        }
        let mut resp = json_error(status, code, &self.to_string());
        if let Some(d) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(d.as_secs().max(1)));
        }
        if let Error::Unauthorized { challenge, .. } = self {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        resp
    }
}
