//! The status page at `/ui/`: plain HTML, CSS and a little JavaScript, embedded in the binary
//! and served without a token. The assets hold nothing private: everything the page shows it
//! reads from `/api/v1` with the bearer token the user pastes into it, so a visitor without a
//! token gets an empty form, and the API decides what each token may see.
//!
//! Every answer under `/ui/` (404 and 405 included) carries a strict Content-Security-Policy:
//! scripts and styles only from the page's own files (no inline code, so an injected tag runs
//! nothing), fetches only to this origin, no framing, no forms posting anywhere.

use crate::error::json_error;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use http::{header, HeaderValue, Method, StatusCode};

/// The policy every `/ui/` answer carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
form-action 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page's files; `/ui/` is `index.html`. Anything else under `/ui/` is a 404.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("events.js", JS),
    asset!("user.js", JS),
    asset!("admin.js", JS),
];

/// The routes of the page, to be merged into the public router. The handlers take any method
/// and answer 405 themselves, so that answer carries the page's headers too.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", any(to_slash))
        .route("/ui/", any(|req: Request| serve(req, "index.html")))
        .route(
            "/ui/{*asset}",
            any(|req: Request| async move {
                let name = req
                    .uri()
                    .path()
                    .strip_prefix("/ui/")
                    .unwrap_or_default()
                    .to_string();
                serve(req, &name).await
            }),
        )
}

/// `/ui` → `/ui/`, so the page's relative links resolve under it.
async fn to_slash(req: Request) -> Response {
    if let Some(refused) = refuse_method(&req) {
        return refused;
    }
    secured(
        (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, HeaderValue::from_static("/ui/"))],
        )
            .into_response(),
    )
}

async fn serve(req: Request, name: &str) -> Response {
    if let Some(refused) = refuse_method(&req) {
        return refused;
    }
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => secured(
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(a.content_type),
                    ),
                    // Small files; always revalidated so an upgrade shows at once.
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                ],
                a.body,
            )
                .into_response(),
        ),
        None => secured(json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such file of the page",
        )),
    }
}

/// Only `GET` and `HEAD` read the page.
fn refuse_method(req: &Request) -> Option<Response> {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return None;
    }
    let mut resp = json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "the page is read with GET",
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    Some(secured(resp))
}

/// Adds the page's security headers.
fn secured(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// A browser opening the front door's root: a `GET /` that accepts HTML and carries no
/// `Authorization`. MCP clients never send that (they speak JSON on `/mcp` with a token), and
/// without a token `/` could only answer 401; so the browser is sent to the page instead.
pub fn is_browser_at_root(req: &Request) -> bool {
    req.uri().path() == "/"
        && req.method() == Method::GET
        && !req.headers().contains_key(header::AUTHORIZATION)
        && req
            .headers()
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().starts_with("text/html")))
}

/// Where [`is_browser_at_root`] sends the browser.
pub fn to_page() -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static("/ui/")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::VARY,
                HeaderValue::from_static("accept, authorization"),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = http::Request::builder().method(method).uri("/");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn only_a_browser_without_a_token_is_sent_to_the_page() {
        let html = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
        assert!(is_browser_at_root(&req("GET", &[html])));
        assert!(!is_browser_at_root(&req("GET", &[])));
        assert!(!is_browser_at_root(&req(
            "GET",
            &[("accept", "application/json, text/event-stream")]
        )));
        assert!(!is_browser_at_root(&req(
            "GET",
            &[html, ("authorization", "Bearer x")]
        )));
        assert!(!is_browser_at_root(&req("POST", &[html])));
    }

    #[test]
    fn every_asset_is_embedded_and_names_are_unique() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert_eq!(ASSETS.iter().filter(|b| b.name == a.name).count(), 1);
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert_eq!(ASSETS[0].name, "index.html");
        for bad in [
            "<script>",
            "style=",
            "<style",
            "onclick=",
            "onload=",
            "javascript:",
        ] {
            assert!(!html.contains(bad), "index.html contains {bad}");
        }
        // Every script the page loads is one of the embedded files.
        for src in html.split("src=\"").skip(1) {
            let name = src.split('"').next().unwrap();
            assert!(ASSETS.iter().any(|a| a.name == name), "{name} not embedded");
        }
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let js = std::str::from_utf8(a.body).unwrap();
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!js.contains(bad), "{} uses {bad}", a.name);
            }
        }
    }
}
