//! API conventions: POST of an existing catalog is a 409 and a 201 carries `Location`, every
//! PUT answers 200 with what is stored, 405 is JSON with `Allow`, list routes paginate with
//! `limit` and an opaque cursor, and an admin's merged view of a user has the user's teams.

use crate::support::client::Client;
use crate::support::tokens::{claims, sign, Signer};
use crate::support::{body_json, Frontdoor, Proto};
use serde_json::{json, Value};

fn bearer(sub: &str, admin: bool, teams: &[&str]) -> String {
    let roles: &[&str] = if admin { &["admin"] } else { &[] };
    format!("Bearer {}", sign(Signer::Hs256, &claims(sub, roles, teams)))
}

async fn call(
    c: &Client,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, http::HeaderMap, Value) {
    let req = c
        .req(method, path)
        .header("authorization", auth)
        .header("content-type", "application/json");
    let resp = c
        .send_body(req, body.map(|b| b.to_string()).unwrap_or_default())
        .await;
    let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
    (status, headers, body_json(resp).await)
}

#[tokio::test]
async fn post_of_an_existing_base_catalog_is_409_and_201_names_the_new_one() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let root = bearer("root", true, &[]);
    let catalog = json!({"registry": {"fetch": {"image": "mcp/fetch:1"}}});
    let (status, headers, body) = call(
        &c,
        "POST",
        "/api/v1/catalogs/base?name=fresh&priority=4",
        &root,
        Some(catalog.clone()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["location"], "/api/v1/catalogs/base/fresh");
    assert_eq!(body, json!({"name": "fresh", "priority": 4}));
    let (status, _, got) = call(&c, "GET", "/api/v1/catalogs/base/fresh", &root, None).await;
    assert_eq!(status, 200);
    assert!(got["registry"]["fetch"].is_object(), "{got}");

    // Again, with another catalog: refused, and the first one stays.
    let other = json!({"registry": {"other": {"image": "mcp/other:1"}}});
    let (status, headers, body) = call(
        &c,
        "POST",
        "/api/v1/catalogs/base?name=fresh",
        &root,
        Some(other),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(body["message"].as_str().unwrap().contains("PUT"), "{body}");
    assert!(!headers.contains_key("location"));
    let (_, _, got) = call(&c, "GET", "/api/v1/catalogs/base/fresh", &root, None).await;
    assert_eq!(got["registry"].as_object().unwrap().len(), 1, "{got}");
    assert!(
        got["registry"]["fetch"].is_object(),
        "the first catalog stays: {got}"
    );

    // Concurrent creates of one name: exactly one wins.
    let tries = (0..8).map(|i| {
        let (c, root) = (c.clone(), root.clone());
        let body = json!({"registry": {format!("s{i}"): {"image": "mcp/x:1"}}});
        tokio::spawn(async move {
            call(
                &c,
                "POST",
                "/api/v1/catalogs/base?name=raced",
                &root,
                Some(body),
            )
            .await
            .0
        })
    });
    let mut statuses = Vec::new();
    for t in tries {
        statuses.push(t.await.unwrap());
    }
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
}

#[tokio::test]
async fn put_of_a_team_and_of_a_base_catalog_both_answer_200_with_what_is_stored() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let root = bearer("root", true, &[]);
    let catalog =
        json!({"registry": {"fetch": {"image": "mcp/fetch:1"}, "git": {"image": "mcp/git:1"}}});
    for _ in 0..2 {
        // Created the first time, replaced the second: the same answer.
        let (status, _, body) = call(
            &c,
            "PUT",
            "/api/v1/catalogs/teams/ops",
            &root,
            Some(catalog.clone()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"team": "ops", "servers": ["fetch", "git"]}));
        let (status, _, body) = call(
            &c,
            "PUT",
            "/api/v1/catalogs/base/extra?priority=2",
            &root,
            Some(catalog.clone()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"name": "extra", "priority": 2}));
    }
}

#[tokio::test]
async fn method_not_allowed_is_a_json_error_with_allow() {
    let fd = Frontdoor::builder().start().await;
    let root = bearer("root", true, &[]);
    let public = fd.client(Proto::H1);
    let metrics = Client::new(&format!("http://{}", fd.metrics_addr), None, Proto::H1);
    for (c, method, path, allows) in [
        (&public, "PATCH", "/api/v1/catalogs/base", "POST"),
        (&public, "POST", "/api/v1/gateways", "GET"),
        (&public, "DELETE", "/api/v1/catalogs/teams", "GET"),
        (&public, "POST", "/healthz", "GET"),
        (&metrics, "POST", "/metrics", "GET"),
    ] {
        let (status, headers, body) = call(c, method, path, &root, None).await;
        assert_eq!(status, 405, "{method} {path}");
        assert_eq!(
            body["error"], "method_not_allowed",
            "{method} {path}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        let allow = headers["allow"].to_str().unwrap();
        assert!(allow.contains(allows), "{method} {path}: Allow {allow}");
    }
}

/// Walks a list route page by page; every item once, in key order.
async fn walk(
    c: &Client,
    auth: &str,
    path: &str,
    field: &str,
    limit: usize,
) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(cur) = &cursor {
            url.push_str(&format!("&cursor={cur}"));
        }
        let (status, _, body) = call(c, "GET", &url, auth, None).await;
        assert_eq!(status, 200, "{url}: {body}");
        let page = body[field].as_array().unwrap();
        assert!(page.len() <= limit, "{url}: {body}");
        items.extend(page.iter().cloned());
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => {
                assert!(body["next_cursor"].is_null(), "{body}");
                return (items, pages);
            }
        }
    }
}

#[tokio::test]
async fn list_routes_are_paginated_with_limit_and_an_opaque_cursor() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let root = bearer("root", true, &[]);
    let alice = bearer("alice", false, &[]);
    let catalog = json!({"registry": {"fetch": {"image": "mcp/fetch:1"}}});
    for i in 0..5 {
        for path in [
            format!("/api/v1/catalogs/teams/team-{i}"),
            format!("/api/v1/catalogs/base/cat-{i}"),
        ] {
            assert_eq!(
                call(&c, "PUT", &path, &root, Some(catalog.clone())).await.0,
                200
            );
        }
    }
    let secrets: serde_json::Map<String, Value> = (0..7)
        .map(|i| (format!("srv{i}.key"), json!("v")))
        .collect();
    assert_eq!(
        call(
            &c,
            "PUT",
            "/api/v1/users/me/secrets",
            &alice,
            Some(Value::Object(secrets))
        )
        .await
        .0,
        200
    );

    let (teams, pages) = walk(&c, &root, "/api/v1/catalogs/teams", "items", 2).await;
    assert_eq!(
        teams,
        (0..5)
            .map(|i| json!(format!("team-{i}")))
            .collect::<Vec<_>>()
    );
    assert_eq!(pages, 3);
    let (base, _) = walk(&c, &root, "/api/v1/catalogs/base", "items", 2).await;
    let names: Vec<&str> = base.iter().map(|b| b["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "each catalog once, by name");
    assert!(
        (0..5).all(|i| names.contains(&format!("cat-{i}").as_str())),
        "{names:?}"
    );
    let (names, pages) = walk(&c, &alice, "/api/v1/users/me/secrets", "names", 3).await;
    assert_eq!(names.len(), 7);
    assert_eq!(pages, 3);

    // Without `limit`, one page holds them all.
    let (_, _, all) = call(&c, "GET", "/api/v1/catalogs/teams", &root, None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert!(all["next_cursor"].is_null());
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=not-ours",
        "cursor=%00",
    ] {
        let (status, _, body) = call(
            &c,
            "GET",
            &format!("/api/v1/catalogs/teams?{bad}"),
            &root,
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["message"].is_string(), "{bad}: {body}");
    }
}

#[tokio::test]
async fn an_admins_merged_view_of_a_user_has_the_teams_of_the_users_last_token() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let root = bearer("root", true, &[]);
    let team = json!({"registry": {"team-tool": {"image": "mcp/team-tool:1"}}});
    assert_eq!(
        call(&c, "PUT", "/api/v1/catalogs/teams/ml", &root, Some(team))
            .await
            .0,
        200
    );
    let merged_servers = |v: &Value| -> Vec<String> {
        v["merged"]["registry"]
            .as_object()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default()
    };

    // alice (team ml) only uses the API: no gateway ever started for her.
    let alice_ml = bearer("alice", false, &["ml"]);
    let (status, _, _) = call(
        &c,
        "PUT",
        "/api/v1/users/me/secrets",
        &alice_ml,
        Some(json!({"fetch.key": "v"})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, own) = call(
        &c,
        "GET",
        "/api/v1/users/me/catalogs?include=merged",
        &alice_ml,
        None,
    )
    .await;
    assert!(
        merged_servers(&own).contains(&"team-tool".to_string()),
        "{own}"
    );
    let (status, _, admin_view) = call(
        &c,
        "GET",
        "/api/v1/users/alice/catalogs?include=all",
        &root,
        None,
    )
    .await;
    assert_eq!(status, 200, "{admin_view}");
    assert_eq!(
        merged_servers(&admin_view),
        merged_servers(&own),
        "the admin sees what alice gets"
    );
    assert_eq!(admin_view["teams"][0]["team"], "ml", "{admin_view}");

    // Her next token has no team: the admin's view follows.
    let alice_none = bearer("alice", false, &[]);
    let (status, _, _) = call(&c, "GET", "/api/v1/users/me/secrets", &alice_none, None).await;
    assert_eq!(status, 200);
    let (_, _, admin_view) = call(
        &c,
        "GET",
        "/api/v1/users/alice/catalogs?include=merged",
        &root,
        None,
    )
    .await;
    assert!(
        !merged_servers(&admin_view).contains(&"team-tool".to_string()),
        "{admin_view}"
    );

    // A user never seen: no directory is made by looking.
    let (status, _, _) = call(
        &c,
        "GET",
        "/api/v1/users/nobody-yet/catalogs?include=merged",
        &root,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!fd.dir.path().join("data/users/nobody-yet").exists());
}

/// Pagination is no way around authorization: another user's list is refused whatever cursor
/// or limit comes with it (one taken from the victim's own first page included), and a
/// non-admin cannot page through admin lists.
#[tokio::test]
async fn a_cursor_never_reaches_another_users_list() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let alice = bearer("alice", false, &[]);
    let bob = bearer("bob", false, &[]);
    let secrets: serde_json::Map<String, Value> = (0..4)
        .map(|i| (format!("srv{i}.key"), json!("v")))
        .collect();
    let put = call(
        &c,
        "PUT",
        "/api/v1/users/me/secrets",
        &alice,
        Some(Value::Object(secrets)),
    )
    .await;
    assert_eq!(put.0, 200);
    let (status, _, page) = call(
        &c,
        "GET",
        "/api/v1/users/alice/secrets?limit=2",
        &alice,
        None,
    )
    .await;
    assert_eq!(status, 200);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    for path in [
        format!("/api/v1/users/alice/secrets?limit=2&cursor={cursor}"),
        "/api/v1/users/alice/secrets?limit=1000".to_string(),
        format!("/api/v1/gateways?cursor={cursor}"),
        "/api/v1/catalogs/teams?limit=1".to_string(),
    ] {
        let (status, _, body) = call(&c, "GET", &path, &bob, None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(!body.to_string().contains("srv"), "{path}: {body}");
    }
    // Bob's own list, with alice's cursor, lists only bob's (none).
    let (status, _, own) = call(
        &c,
        "GET",
        &format!("/api/v1/users/me/secrets?cursor={cursor}"),
        &bob,
        None,
    )
    .await;
    assert!(status == 200 || status == 400, "{status}: {own}");
    assert!(!own.to_string().contains("srv"), "{own}");
}
