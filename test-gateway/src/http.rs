//! HTTP edges: routes, `/health`, bearer auth and the Origin check, as docker/mcp-gateway has
//! them (auth first, 401 with `WWW-Authenticate: Bearer realm="MCP Gateway"`; then a
//! non-localhost `Origin` is 403; unknown paths redirect 307 to the transport's endpoint).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::args::Transport;
use crate::sse::{self, SseState};
use crate::tools::Gateway;

pub struct Options {
    pub gateway: Gateway,
    /// `None`: `--allow-unauthenticated`.
    pub token: Option<String>,
    pub transport: Transport,
    pub health_delay: Duration,
}

#[derive(Clone)]
struct Guard {
    token: Option<Arc<str>>,
}

const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router(opts: Options) -> Router {
    let gateway = opts.gateway;
    let mcp_gateway = gateway.clone();
    // The front door connects by container IP, so the Host header is whatever that IP is:
    // rmcp's loopback-only Host check (DNS-rebinding defence) is off. The bearer token is the
    // protection, and the Origin check below stays.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE));
    let mcp = StreamableHttpService::new(
        move || Ok(mcp_gateway.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );

    let ready_at = Instant::now() + opts.health_delay;
    let redirect_to = match opts.transport {
        Transport::Streaming => "/mcp",
        Transport::Sse => "/sse",
    };
    let guard = Guard {
        token: opts.token.map(Arc::from),
    };

    let protected = Router::new()
        .route_service("/mcp", mcp)
        .route("/sse", get(sse::open).post(sse::post))
        .route("/message", post(sse::post))
        .with_state(SseState::new(gateway, SSE_KEEP_ALIVE))
        .fallback(move || async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, redirect_to)],
            )
        })
        .layer(middleware::from_fn(check_origin))
        .layer(middleware::from_fn_with_state(guard, check_auth));

    Router::new()
        .route(
            "/health",
            get(move || async move {
                if Instant::now() >= ready_at {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            }),
        )
        .merge(protected)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer_ok(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| !given.is_empty() && constant_time_eq(given, token.as_bytes()))
}

async fn check_auth(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    if let Some(token) = &guard.token {
        if !bearer_ok(req.headers(), token) {
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"MCP Gateway\""),
                )],
                "Unauthorized\n",
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// docker/mcp-gateway's rule: an `Origin`, if present, must be http(s) on localhost,
/// 127.0.0.1 or ::1 (any port).
pub fn origin_allowed(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, _)) => h,
            None => return false,
        }
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    matches!(
        host.to_ascii_lowercase().as_str(),
        "localhost" | "127.0.0.1" | "::1"
    )
}

async fn check_origin(req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin) {
            return (
                StatusCode::FORBIDDEN,
                format!(
                    "Forbidden: Origin, if set, must be localhost, 127.0.0.1, or ::1, got: {origin}\n"
                ),
            )
                .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        for ok in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8443/x",
            "http://[::1]:80",
            "HTTP://LOCALHOST".to_ascii_lowercase().as_str(),
        ] {
            assert!(origin_allowed(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "null",
            "file://localhost",
            "http://127.0.0.1.nip.io",
            "http://[::2]",
            "",
        ] {
            assert!(!origin_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn bearer() {
        let mut h = HeaderMap::new();
        assert!(!bearer_ok(&h, "t"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(bearer_ok(&h, "t"));
        assert!(!bearer_ok(&h, "tt"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer t"));
        assert!(!bearer_ok(&h, "t"));
    }
}
