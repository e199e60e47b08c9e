//! The one place where errors become an HTTP status and a JSON body `{error, message}`.
//! Messages are ours: upstream error text is never echoed to a client.

use crate::auth::AuthFailure;
use crate::catalog::{CatalogError, ErrorClass};
use crate::gateways::GatewayError;
use crate::owners::OwnerError;
use crate::proxy::rpc::{self, RpcIds};
use crate::proxy::upstream::UpstreamError;
use crate::secrets::SecretsError;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use std::time::Duration;

/// Every way a request handled by the front door can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", unauthorized_message(*reason, *expired_at))]
    Unauthorized {
        reason: AuthFailure,
        /// The `WWW-Authenticate` challenge pointing at the RFC 9728 metadata.
        challenge: HeaderValue,
        /// When an expired token expired (unix seconds), to tell its holder.
        expired_at: Option<u64>,
    },
    #[error("this metrics endpoint needs Authorization: Bearer <metrics token>")]
    ScrapeUnauthorized,
    #[error("this endpoint answers other front door replicas only")]
    PeerUnauthorized,
    #[error("origin `{0}` is not allowed")]
    OriginForbidden(String),
    #[error("{0}")]
    Forbidden(String),
    /// The user's gateway serves no legacy SSE transport (docker/mcp-gateway in streaming
    /// mode answers `/sse` with a redirect to `/mcp`, which SSE clients cannot follow).
    #[error("this gateway serves MCP over streamable HTTP only: point your MCP client at /mcp (transport \"http\" / streamable HTTP) instead of /sse")]
    LegacySseUnsupported,
    #[error("unknown MCP session (it ended, or the server restarted): start a new session with initialize, without Mcp-Session-Id")]
    SessionNotFound,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Gateway(#[from] GatewayError),
    #[error("{0}")]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("{0}")]
    Secrets(#[from] SecretsError),
    #[error("{0}")]
    Owner(#[from] OwnerError),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller made too many audited changes in a short time (`audit.user_rate`).
    #[error("too many changes in a short time; retry in {} s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// The caller holds as many event streams as `events.max_streams_per_user` allows.
    #[error("you have {0} event streams open already; close one first")]
    TooManyStreams(usize),
    #[error("internal error")]
    Internal(String),
}

/// What a refused token's holder should do, with the expiry time when there is one.
fn unauthorized_message(reason: AuthFailure, expired_at: Option<u64>) -> String {
    match (reason, expired_at) {
        (AuthFailure::Expired, Some(exp)) => format!(
            "token expired at {}; get a new token",
            crate::time::rfc3339_utc(std::time::UNIX_EPOCH + Duration::from_secs(exp))
        ),
        (AuthFailure::Missing, _) => {
            "missing bearer token: send Authorization: Bearer <token>".to_string()
        }
        (AuthFailure::InQuery, _) => reason.to_string(),
        _ => format!("{reason}; get a new token"),
    }
}

/// Library errors carry a class; internal ones hide their text (paths, OS errors).
fn class_parts(class: ErrorClass) -> (StatusCode, &'static str) {
    match class {
        ErrorClass::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
        ErrorClass::Policy => (StatusCode::BAD_REQUEST, "policy_violation"),
        ErrorClass::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ErrorClass::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ErrorClass::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl Error {
    /// Status, machine-readable code and an optional `Retry-After`.
    fn parts(&self) -> (StatusCode, &'static str, Option<Duration>) {
        use GatewayError as G;
        match self {
            Error::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Error::ScrapeUnauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Error::PeerUnauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            Error::OriginForbidden(_) => (StatusCode::FORBIDDEN, "forbidden_origin", None),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", None),
            Error::SessionNotFound => (StatusCode::NOT_FOUND, "session_not_found", None),
            Error::LegacySseUnsupported => (StatusCode::GONE, "sse_not_served", None),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", None),
            Error::Gateway(e @ G::AtCapacity { retry_after }) => (
                StatusCode::TOO_MANY_REQUESTS,
                Self::gateway_code(e),
                Some(*retry_after),
            ),
            Error::Gateway(e @ G::Unavailable { retry_after, .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Self::gateway_code(e),
                Some(*retry_after),
            ),
            Error::Gateway(e @ G::NotConfigured) => {
                (StatusCode::SERVICE_UNAVAILABLE, Self::gateway_code(e), None)
            }
            Error::Upstream(UpstreamError::Timeout) => {
                (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", None)
            }
            Error::Upstream(_) => (StatusCode::BAD_GATEWAY, "upstream_unavailable", None),
            Error::Catalog(e) => {
                let (s, c) = class_parts(e.class());
                (s, c, None)
            }
            Error::Secrets(e) => {
                let (s, c) = class_parts(e.class());
                (s, c, None)
            }
            Error::Owner(OwnerError::Taken { .. }) => {
                (StatusCode::FORBIDDEN, "user_dir_taken", None)
            }
            Error::Owner(OwnerError::Unconfirmed { .. }) => {
                (StatusCode::CONFLICT, "user_dir_unconfirmed", None)
            }
            Error::Owner(e) => {
                let (s, c) = class_parts(e.class());
                (s, c, None)
            }
            Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", None),
            Error::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict", None),
            Error::RateLimited { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                Some(*retry_after),
            ),
            Error::TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_streams", None),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }

    /// The machine-readable code of a gateway error (also a failed gateway's `reason` in the
    /// event stream, where its message, which may name an image, is never sent).
    pub fn gateway_code(e: &GatewayError) -> &'static str {
        match e {
            GatewayError::AtCapacity { .. } => "at_capacity",
            GatewayError::Unavailable { .. } => "gateway_unavailable",
            GatewayError::NotConfigured => "no_gateway_runtime",
        }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// A refused token, with its challenge and (for an expired one) its expiry from `headers`.
    pub fn unauthorized(
        reason: AuthFailure,
        challenge: HeaderValue,
        headers: &http::HeaderMap,
    ) -> Self {
        let expired_at = (reason == AuthFailure::Expired)
            .then(|| crate::auth::unverified_expiry(headers))
            .flatten();
        Error::Unauthorized {
            reason,
            challenge,
            expired_at,
        }
    }

    /// The message a client sees (internal details are logged here, never sent).
    fn client_message(&self, status: StatusCode) -> String {
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The detail (paths, OS errors) is for operators only.
            tracing::error!(detail = %self, internal = ?self, "internal error");
            "internal error; the server log has the details".to_string()
        } else {
            self.to_string()
        }
    }

    /// The error as MCP clients display it (the `/mcp` and `/sse` routes): a JSON-RPC 2.0
    /// error object (an array of them for a batch) with the request's id, the same HTTP
    /// status, `Retry-After` and `WWW-Authenticate` as [`IntoResponse`] gives.
    pub fn into_jsonrpc_response(self, ids: &RpcIds) -> Response {
        let (status, code, retry_after) = self.parts();
        let message = self.client_message(status);
        let mut data = serde_json::json!({ "reason": code, "status": status.as_u16() });
        if let Some(d) = retry_after {
            data["retry_after_seconds"] = d.as_secs().max(1).into();
        }
        let body = rpc::error_body(ids, jsonrpc_code(status), &message, data);
        let mut resp = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        self.finish(&mut resp, retry_after);
        resp
    }

    /// The headers some errors add to their response.
    fn finish(self, resp: &mut Response, retry_after: Option<Duration>) {
        if let Some(d) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(d.as_secs().max(1)));
        }
        if let Error::Unauthorized { challenge, .. } = self {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        } else if let Error::ScrapeUnauthorized = self {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
        }
    }
}

/// The JSON-RPC error code for a front door error, by HTTP status (the implementation-defined
/// server error range -32000..-32099; -32600 and -32603 where JSON-RPC has a meaning). The
/// README lists them.
fn jsonrpc_code(status: StatusCode) -> i64 {
    match status.as_u16() {
        400 | 413 | 415 => -32600,
        401 => -32001,
        403 => -32003,
        404 => -32004,
        410 => -32010,
        429 => -32029,
        502 => -32002,
        503 => -32000,
        504 => -32005,
        _ => -32603,
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

/// Middleware (as a `route_layer` on the front door's own routes) that gives the answers axum
/// makes by itself the JSON error body every other error has: the bodiless 405 of a path asked
/// with another method (`Allow` stays), and the plain-text 4xx of an extractor that refused a
/// query string or path (its text names the parameter, never anything stored).
pub async fn json_error_bodies(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let content_type = resp.headers().get(header::CONTENT_TYPE);
    let plain = content_type.is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !status.is_client_error() || !plain {
        return resp;
    }
    let mut out = if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds `Allow` outside this layer, to whatever response comes back.
        json_error(
            status,
            "method_not_allowed",
            "this path does not take that method; the Allow header lists the ones it does",
        )
    } else {
        let (parts, body) = resp.into_parts();
        let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
        let code = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::NOT_FOUND => "not_found",
            _ => "bad_request",
        };
        let text = String::from_utf8_lossy(&text);
        let message = match text.trim() {
            "" => status.canonical_reason().unwrap_or("refused"),
            t => t,
        };
        let mut out = json_error(status, code, message);
        if let Some(a) = parts.headers.get(header::ALLOW) {
            out.headers_mut().insert(header::ALLOW, a.clone());
        }
        return out;
    };
    if let Some(a) = resp.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, a.clone());
    }
    out
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, retry_after) = self.parts();
        let message = self.client_message(status);
        let mut resp = json_error(status, code, &message);
        self.finish(&mut resp, retry_after);
        resp
    }
}
