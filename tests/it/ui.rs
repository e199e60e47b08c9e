//! The page at `/ui/`: served without a token, with its security headers on every answer,
//! never forwarded to a gateway (whatever the path or token), and `GET /` sends a browser
//! there while MCP clients still reach their gateway.

use crate::support::{body_bytes, body_json, tokens, Frontdoor, Proto, TestUpstream};
use mcp_frontdoor::ui::CSP;

fn assert_secured(resp: &http::Response<hyper::body::Incoming>, what: &str) {
    let h = resp.headers();
    assert_eq!(h["content-security-policy"], CSP, "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    assert!(
        h.get("set-cookie").is_none(),
        "{what}: the page sets no cookie"
    );
}

#[tokio::test]
async fn the_page_and_its_files_need_no_token_and_carry_a_strict_policy() {
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    for proto in [Proto::H1, Proto::H2] {
        let c = fd.client(proto);
        let page = c.send(c.req("GET", "/ui/")).await;
        assert_eq!(page.status(), 200, "{proto:?}");
        assert_secured(&page, "/ui/");
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let html = String::from_utf8(body_bytes(page).await.to_vec()).unwrap();
        assert!(html.contains(r#"<script type="module" src="app.js">"#));
        for (file, ty) in [
            ("app.js", "text/javascript; charset=utf-8"),
            ("events.js", "text/javascript; charset=utf-8"),
            ("app.css", "text/css; charset=utf-8"),
            ("index.html", "text/html; charset=utf-8"),
        ] {
            let r = c.send(c.req("GET", &format!("/ui/{file}"))).await;
            assert_eq!(r.status(), 200, "{file}");
            assert_eq!(r.headers()["content-type"], ty, "{file}");
            assert_secured(&r, file);
            assert!(!body_bytes(r).await.is_empty());
        }
        let head = c.send(c.req("HEAD", "/ui/app.js")).await;
        assert_eq!(head.status(), 200);
    }
    assert!(up.seen().is_empty(), "no page request reached the gateway");
}

#[tokio::test]
async fn unknown_files_wrong_methods_and_odd_paths_stay_at_the_front_door() {
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let bearer = tokens::bearer("alice");
    // With a valid token too: `/ui/` is the front door's, never the gateway's.
    for path in [
        "/ui/nope.js",
        "/ui/app.js/",
        "/ui/%2e%2e/mcp",
        "/ui/../mcp",
        "/ui/sub/app.js",
        "/ui/App.js",
    ] {
        for auth in [None, Some(&bearer)] {
            let mut req = c.req("GET", path);
            if let Some(b) = auth {
                req = req.header("authorization", b.as_str());
            }
            let r = c.send(req).await;
            assert_eq!(r.status(), 404, "{path}");
            assert_secured(&r, path);
            assert_eq!(body_json(r).await["error"], "not_found", "{path}");
        }
    }
    let r = c.send(c.req("POST", "/ui/")).await;
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "GET, HEAD");
    assert_secured(&r, "POST /ui/");
    assert_eq!(body_json(r).await["error"], "method_not_allowed");
    let r = c
        .send(
            c.req("DELETE", "/ui/app.js")
                .header("authorization", bearer.as_str()),
        )
        .await;
    assert_eq!(r.status(), 405);

    let r = c.send(c.req("GET", "/ui")).await;
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/ui/");
    assert_secured(&r, "/ui");
    assert!(up.seen().is_empty(), "nothing reached the gateway");
}

#[tokio::test]
async fn a_browser_at_the_root_is_sent_to_the_page_and_clients_still_reach_their_gateway() {
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder().upstream(&up.url()).start().await;
    let c = fd.client(Proto::H1);
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    let r = c.send(c.req("GET", "/").header("accept", html)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/");

    // No browser: the answer it always was (401 without a token).
    let r = c
        .send(c.req("GET", "/").header("accept", "application/json"))
        .await;
    assert_eq!(r.status(), 401);
    // Another path, or a POST, is never redirected.
    let r = c.send(c.req("GET", "/mcp").header("accept", html)).await;
    assert_eq!(r.status(), 401);
    let r = c.send(c.req("POST", "/").header("accept", html)).await;
    assert_eq!(r.status(), 401);
    assert!(up.seen().is_empty());

    // With a token, `/` is the caller's gateway's, whatever it accepts.
    let r = c
        .send(
            c.req("GET", "/")
                .header("accept", html)
                .header("authorization", tokens::bearer("alice")),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(up.seen().len(), 1);
    assert_eq!(up.seen()[0].uri.path(), "/");
}

/// `origins` (what the page's server list shows): every offered server with the layer it
/// comes from, disabled ones included, and nothing of another user's.
#[tokio::test]
async fn a_users_catalog_names_the_origin_of_every_offered_server() {
    use crate::support::tokens::{claims, sign, Signer};
    let bearer = |sub: &str, roles: &[&str], teams: &[&str]| {
        format!("Bearer {}", sign(Signer::Hs256, &claims(sub, roles, teams)))
    };
    let admin = bearer("root", &["admin"], &[]);
    let alice = bearer("alice", &[], &["ml"]);
    let bob = bearer("bob", &[], &[]);
    let fd = Frontdoor::builder().custom_servers().start().await;
    let c = fd.client(Proto::H1);
    let put = |path: &'static str, who: &String, body: &'static str| {
        let (c, who) = (c.clone(), who.clone());
        async move {
            let r = c
                .send_body(
                    c.req("PUT", path)
                        .header("authorization", who)
                        .header("content-type", "application/json"),
                    body,
                )
                .await;
            assert_eq!(r.status(), 200, "{path}");
        }
    };
    put(
        "/api/v1/catalogs/base/official",
        &admin,
        r#"{"registry":{"fetch":{"image":"mcp/fetch:1"},"shared":{"image":"mcp/shared:1"}}}"#,
    )
    .await;
    put(
        "/api/v1/catalogs/teams/ml",
        &admin,
        r#"{"registry":{"shared":{"image":"ml/shared:1"}}}"#,
    )
    .await;
    put(
        "/api/v1/users/me/catalogs",
        &alice,
        r#"{"custom":{"registry":{"mine":{"image":"example/mine:1"}}},"overrides":{"fetch":false}}"#,
    )
    .await;
    put(
        "/api/v1/users/me/catalogs",
        &bob,
        r#"{"custom":{"registry":{"bobs":{"image":"example/bobs:1"}}}}"#,
    )
    .await;

    for (who, path) in [
        (&alice, "/api/v1/users/me/catalogs?include=merged"),
        (&admin, "/api/v1/users/alice/catalogs"),
    ] {
        let r = c
            .send(c.req("GET", path).header("authorization", who))
            .await;
        assert_eq!(r.status(), 200, "{path}");
        let v = body_json(r).await;
        let origins = v["origins"].as_object().unwrap();
        let shown: Vec<(&str, &str)> = origins
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        // The seeded example catalog `organization` offers servers of its own.
        let ours: Vec<_> = shown
            .iter()
            .filter(|(_, o)| *o != "base:organization")
            .copied()
            .collect();
        assert_eq!(
            ours,
            [
                ("fetch", "base:official"),
                ("mine", "custom"),
                ("shared", "team:ml"),
            ],
            "{path}"
        );
        assert!(!origins.contains_key("bobs"), "{path}");
        let merged = v["merged"]["registry"].as_object().unwrap();
        assert!(!merged.contains_key("fetch"), "switched off, still offered");
        assert!(merged.contains_key("mine") && merged.contains_key("shared"));
    }
    // Without the merge, no origins.
    let r = c
        .send(
            c.req("GET", "/api/v1/users/me/catalogs?include=custom")
                .header("authorization", &alice),
        )
        .await;
    assert!(body_json(r).await.get("origins").is_none());
}
