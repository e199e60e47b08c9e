//! The routers: the public one (front door endpoints, REST API, the page at `/ui/`,
//! everything else proxied to the caller's gateway) and the metrics one.

use crate::auth::metadata;
use crate::error::json_error;
use crate::gate::AuthGate;
use crate::metrics::RouteClass;
use crate::proxy::{self, exchange::RequestLine, Proxy};
use crate::server::scrape_auth::ScrapeToken;
use crate::state::{AppState, CallerSlot};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use http::{header, HeaderValue, StatusCode};
use std::sync::Arc;

/// The front door's own routes leave through the same exit as proxied requests
/// (`proxy::exchange`): counted and logged once, naming the caller the API found.
async fn observe(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = if req.uri().path().starts_with("/api/") {
        RouteClass::Api
    } else {
        RouteClass::Local
    };
    let mut line = RequestLine::new(req.method().clone(), route);
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let resp = next.run(req).await;
    if let Some(caller) = slot.0.get() {
        if route == RouteClass::Api && resp.status().is_success() {
            note_teams(&state, caller).await;
        }
        line.user = Some(Arc::from(caller.slug.as_str()));
    }
    drop(line.answered(resp.status().as_u16(), state.metrics.clone()));
    resp
}

/// Records the teams of a caller's token as theirs (`catalog::regen::note_teams`) after a
/// request of theirs succeeded: the front door learns a user's teams only from their tokens,
/// and an admin acting on the user later needs them. A refused request records nothing; a
/// failure here only leaves the record as it was.
async fn note_teams(state: &AppState, caller: &Arc<crate::auth::Principal>) {
    let (services, caller) = (state.services.clone(), caller.clone());
    let noted = tokio::task::spawn_blocking(move || {
        crate::catalog::regen::note_teams(
            &services.catalogs,
            &services.cache,
            &caller.slug,
            &caller.teams,
        )
        .map_err(|e| (caller.slug.clone(), e))
    })
    .await;
    match noted {
        Ok(Ok(_)) => {}
        Ok(Err((user, e))) => tracing::debug!(%user, error = %e, "teams not recorded"),
        Err(e) => tracing::warn!(error = %e, "recording teams failed"),
    }
}

/// The public listener: the proxy path goes straight to the proxy; the front door's own
/// paths (see [`is_own`]) go through the router. The router's routes cost a proxied request
/// several allocations and boxed futures per request (docs/BENCHMARKS.md, issue 15), and
/// would only have sent it to its fallback, the same proxy.
#[derive(Clone)]
pub struct Public {
    router: Router,
    proxy: Arc<Proxy>,
    gate: Arc<AuthGate>,
}

impl Public {
    pub fn new(state: AppState) -> Self {
        Self {
            proxy: state.proxy.clone(),
            gate: state.gate.clone(),
            router: public_router(state),
        }
    }
}

impl crate::server::App for Public {
    fn call(
        &self,
        req: axum::extract::Request,
    ) -> impl std::future::Future<Output = Response> + Send + use<> {
        use futures_util::future::Either;
        // Built here, not in an `async` block holding the request: the connection keeps this
        // future's room for its whole life (see `server::service`).
        if is_own(req.uri().path()) {
            Either::Left(crate::server::App::call(&self.router, req))
        } else if crate::ui::is_browser_at_root(&req) {
            Either::Right(Either::Left(std::future::ready(crate::ui::to_page())))
        } else {
            // Boxed: inline, the proxy's future would be room every idle stream holds.
            let proxied = Box::pin(proxy::handle(self.proxy.clone(), self.gate.clone(), req));
            Either::Right(Either::Right(proxied))
        }
    }
}

/// The paths the front door answers itself: every route of [`public_router`] lies under one
/// of them (checked as the router is built). Anything else belongs to a gateway.
pub fn is_own(path: &str) -> bool {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    path == "/healthz"
        || path == "/readyz"
        || path.starts_with("/.well-known/")
        || under("/api/v1")
        || under("/ui")
}

/// A route of the front door's own; its path must be one [`is_own`] claims, or the proxy
/// would get its requests first.
fn own(router: Router<AppState>, path: &str, route: MethodRouter<AppState>) -> Router<AppState> {
    debug_assert!(
        is_own(path),
        "route {path} is not under the front door's own paths"
    );
    router.route(path, route)
}

/// The public listener's routes: the front door's own (observed here), then the proxy.
pub fn public_router(state: AppState) -> Router {
    let mut router = Router::new();
    for (path, route) in [
        ("/healthz", get(healthz)),
        ("/readyz", get(readyz)),
        (
            "/.well-known/oauth-protected-resource",
            get(resource_metadata_root),
        ),
        (
            "/.well-known/oauth-protected-resource/{*resource}",
            get(resource_metadata_path),
        ),
        ("/.well-known/{*other}", get(not_found)),
    ] {
        router = own(router, path, route);
    }
    router
        .nest("/api/v1", crate::api::router())
        .merge(crate::ui::router())
        .route_layer(axum::middleware::from_fn(crate::error::json_error_bodies))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .fallback_service({
            // Reached only by a path under the front door's own that no route matched
            // (anything else, `/` included, never comes here: see `Public`), so never the page.
            let (proxy, gate) = (state.proxy.clone(), state.gate.clone());
            tower::service_fn(move |req: axum::extract::Request| {
                let (proxy, gate) = (proxy.clone(), gate.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(proxy::handle(proxy, gate, req).await)
                }
            })
        })
        .with_state(state)
}

/// The metrics listener's routes; with a `scrape` token, `/metrics` requires it (the health
/// routes stay open for probes).
pub fn metrics_router(state: AppState, scrape: Option<ScrapeToken>) -> Router {
    let mut metrics_route = Router::new().route("/metrics", get(metrics));
    if let Some(token) = scrape {
        metrics_route = metrics_route.route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let allowed = token.accepts(req.headers());
                async move {
                    if allowed {
                        next.run(req).await
                    } else {
                        crate::error::Error::ScrapeUnauthorized.into_response()
                    }
                }
            },
        ));
    }
    Router::new()
        .merge(metrics_route)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/internal/v1/activity/{user}", get(peer_activity))
        .route_layer(axum::middleware::from_fn(crate::error::json_error_bodies))
        .fallback(not_found)
        .with_state(state)
}

/// Another replica asks before an idle stop (`crate::replicas`); 404 without a lifecycle.
async fn peer_activity(
    State(state): State<AppState>,
    Path(user): Path<String>,
    headers: http::HeaderMap,
) -> Response {
    let Some(server) = &state.peer_server else {
        return not_found().await;
    };
    let authz = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    server.answer(&user, authz)
}

async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    if state.proxy.resolver.ready().await {
        Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the gateway runtime is not reachable",
        )
    }
}

async fn resource_metadata_root(State(state): State<AppState>) -> Response {
    Json(metadata::document(
        &state.public_url,
        "",
        &state.authorization_servers,
    ))
    .into_response()
}

async fn resource_metadata_path(
    State(state): State<AppState>,
    Path(resource): Path<String>,
) -> Response {
    let path = format!("/{}", resource.trim_start_matches('/'));
    Json(metadata::document(
        &state.public_url,
        &path,
        &state.authorization_servers,
    ))
    .into_response()
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Prometheus text 0.0.4 unless the scrape asks for OpenMetrics (see `metrics::Format`).
async fn metrics(State(state): State<AppState>, headers: http::HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = crate::metrics::Format::negotiate(accept);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::VARY, HeaderValue::from_static("accept")),
        ],
        state.metrics.encode(format),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::is_own;

    #[test]
    fn the_front_doors_own_paths_and_nothing_a_gateway_could_serve() {
        for own in [
            "/healthz",
            "/readyz",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/anything",
            "/api/v1",
            "/api/v1/users/alice/catalogs",
            "/ui",
            "/ui/",
            "/ui/app.js",
        ] {
            assert!(is_own(own), "{own} is the front door's");
        }
        for gateway in [
            "/",
            "/mcp",
            "/sse",
            "/messages/",
            "/healthz/",
            "/healthzz",
            "/api/v1x",
            "/api/v2/users",
            "/api",
            "/uix",
            "/.well-known",
            "/mcp/api/v1",
        ] {
            assert!(!is_own(gateway), "{gateway} goes to the gateway");
        }
    }
}
