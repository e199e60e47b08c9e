//! Bulk enable/disable (`POST /users/{user}/servers`) and export/import of a user's
//! configuration (`GET/PUT /users/{user}/config`): round trips, the same policy as every
//! user write, one audit line each, and no way into another user's configuration.

use crate::support::client::Client;
use crate::support::sse::SseReader;
use crate::support::tokens::{claims, sign, Signer};
use crate::support::{body_bytes, tree_hash, Frontdoor, Proto};
use serde_json::{json, Value};

fn token(sub: &str, admin: bool) -> String {
    let roles: &[&str] = if admin { &["admin"] } else { &[] };
    format!("Bearer {}", sign(Signer::Hs256, &claims(sub, roles, &[])))
}

async fn call(c: &Client, method: &str, path: &str, who: &str, body: Option<&str>) -> (u16, Value) {
    let req = c.req(method, path).header("authorization", who);
    let r = match body {
        Some(b) => {
            c.send_body(
                req.header("content-type", "application/json"),
                b.to_string(),
            )
            .await
        }
        None => c.send(req).await,
    };
    let status = r.status().as_u16();
    let bytes = body_bytes(r).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn servers(v: &Value) -> Vec<String> {
    v["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn audit_lines(fd: &Frontdoor) -> Vec<Value> {
    std::fs::read_to_string(fd.dir.path().join("data/audit/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn bulk_disable_and_enable_is_one_audited_change() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let alice = token("alice", false);
    let mut events = SseReader::new(
        c.send(
            c.req("GET", "/api/v1/events")
                .header("authorization", &alice),
        )
        .await,
    );
    let (s, before) = call(
        &c,
        "GET",
        "/api/v1/users/me/catalogs?include=merged",
        &alice,
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(before["merged"]["registry"].get("fetch").is_some());

    let (s, body) = call(
        &c,
        "POST",
        "/api/v1/users/me/servers",
        &alice,
        Some(r#"{"disable": ["fetch", "github"]}"#),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let slug = body["user"].as_str().unwrap().to_string();
    assert!(!servers(&body).contains(&"fetch".to_string()));
    assert!(!servers(&body).contains(&"github".to_string()));
    let (_, cat) = call(
        &c,
        "GET",
        "/api/v1/users/me/catalogs?include=custom",
        &alice,
        None,
    )
    .await;
    assert_eq!(cat["overrides"], json!({"fetch": false, "github": false}));

    let (s, body) = call(
        &c,
        "POST",
        "/api/v1/users/me/servers",
        &alice,
        Some(r#"{"enable": ["fetch"]}"#),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(servers(&body).contains(&"fetch".to_string()));
    let (_, cat) = call(
        &c,
        "GET",
        "/api/v1/users/me/catalogs?include=custom",
        &alice,
        None,
    )
    .await;
    assert_eq!(cat["overrides"], json!({"github": false}));

    let lines: Vec<Value> = audit_lines(&fd)
        .into_iter()
        .filter(|l| l["action"] == "catalog.user.servers")
        .collect();
    assert_eq!(lines.len(), 2, "one line per bulk change");
    assert_eq!(lines[0]["target"], format!("user:{slug}/catalog"));
    assert_eq!(lines[0]["outcome"], "success");

    let frames = events.take(2).await;
    for f in &frames {
        assert_eq!(f.event, "catalog.changed");
        assert_eq!(f.data["action"], "servers");
        assert_eq!(f.data["user"], slug.as_str());
    }
}

#[tokio::test]
async fn bulk_refuses_unknown_and_doubled_names_and_writes_nothing() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let alice = token("alice", false);
    // Her directory exists first, so the hash covers it.
    call(
        &c,
        "POST",
        "/api/v1/users/me/servers",
        &alice,
        Some(r#"{"disable": ["fetch"]}"#),
    )
    .await;
    let data = fd.dir.path().join("data");
    let before = tree_hash(&data);
    for (body, needle) in [
        (
            r#"{"disable": ["not-offered-anywhere"]}"#,
            "not-offered-anywhere",
        ),
        (r#"{"enable": ["fetch", "ghost"]}"#, "ghost"),
        (
            r#"{"enable": ["fetch"], "disable": ["fetch"]}"#,
            "named twice",
        ),
        (r#"{"disable": ["../../etc"]}"#, "disable[0]"),
        (
            r#"{"disable": ["fetch"], "patch": {"fetch": {"image": "evil/x"}}}"#,
            "patch",
        ),
        (r#"{}"#, "at least one"),
    ] {
        let (s, err) = call(&c, "POST", "/api/v1/users/me/servers", &alice, Some(body)).await;
        assert_eq!(s, 400, "{body}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains(needle),
            "{body}: {err}"
        );
    }
    let many: Vec<String> = (0..501).map(|i| format!("s{i}")).collect();
    let (s, _) = call(
        &c,
        "POST",
        "/api/v1/users/me/servers",
        &alice,
        Some(&json!({ "disable": many }).to_string()),
    )
    .await;
    assert_eq!(s, 413);
    assert_eq!(tree_hash(&data), before, "a refused change wrote something");
    let failed = audit_lines(&fd)
        .into_iter()
        .filter(|l| l["action"] == "catalog.user.servers" && l["outcome"] == "failed")
        .count();
    assert_eq!(failed, 7, "every refused attempt is audited");
}

#[tokio::test]
async fn export_then_import_into_another_user_round_trips() {
    let fd = Frontdoor::builder().custom_servers().start().await;
    let c = fd.client(Proto::H2);
    let (alice, bob, carol) = (
        token("alice", false),
        token("bob", false),
        token("carol", false),
    );
    let (s, body) = call(
        &c,
        "PUT",
        "/api/v1/users/me/catalogs",
        &alice,
        Some(
            r#"{"custom": {"registry": {"mine": {"image": "example/mine:1", "title": "Mine"}}},
            "overrides": {"fetch": false, "github": {"title": "My GitHub"}}}"#,
        ),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, exported) = call(&c, "GET", "/api/v1/users/me/config", &alice, None).await;
    assert_eq!(s, 200);
    assert_eq!(exported["version"], 1);
    assert_eq!(
        exported["custom"]["registry"]["mine"]["image"],
        "example/mine:1"
    );
    assert_eq!(exported["overrides"]["fetch"], false);
    assert!(exported.get("secrets").is_none());

    // Into bob, `user` still naming alice: the path decides.
    let (s, summary) = call(
        &c,
        "PUT",
        "/api/v1/users/me/config",
        &bob,
        Some(&exported.to_string()),
    )
    .await;
    assert_eq!(s, 200, "{summary}");
    assert_ne!(summary["user"], exported["user"]);
    assert!(servers(&summary).contains(&"mine".to_string()));
    assert!(!servers(&summary).contains(&"fetch".to_string()));
    let (_, bobs) = call(&c, "GET", "/api/v1/users/me/config", &bob, None).await;
    assert_eq!(bobs["custom"], exported["custom"]);
    assert_eq!(bobs["overrides"], exported["overrides"]);
    assert_eq!(bobs["user"], summary["user"]);

    // YAML out, YAML in.
    let r = c
        .send(
            c.req("GET", "/api/v1/users/me/config")
                .header("authorization", &alice)
                .header("accept", "application/yaml"),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/yaml");
    let yaml = body_bytes(r).await;
    let r = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/config")
                .header("authorization", &carol)
                .header("content-type", "application/yaml"),
            yaml,
        )
        .await;
    assert_eq!(r.status(), 200);
    let (_, carols) = call(&c, "GET", "/api/v1/users/me/config", &carol, None).await;
    assert_eq!(carols["custom"], exported["custom"]);
    assert_eq!(carols["overrides"], exported["overrides"]);

    // `custom: null` removes the custom catalog.
    let (s, _) = call(
        &c,
        "PUT",
        "/api/v1/users/me/config",
        &bob,
        Some(r#"{"version": 1, "custom": null, "overrides": {}}"#),
    )
    .await;
    assert_eq!(s, 200);
    let (_, bobs) = call(&c, "GET", "/api/v1/users/me/config", &bob, None).await;
    assert_eq!(bobs["custom"], Value::Null);
    assert_eq!(bobs["overrides"], json!({}));
    let imports = audit_lines(&fd)
        .into_iter()
        .filter(|l| l["action"] == "catalog.user.import" && l["outcome"] == "success")
        .count();
    assert_eq!(imports, 3);
}

#[tokio::test]
async fn a_hostile_import_is_refused_and_writes_nothing() {
    let fd = Frontdoor::builder().custom_servers().start().await;
    let c = fd.client(Proto::H1);
    let alice = token("alice", false);
    let (s, _) = call(&c, "PUT", "/api/v1/users/me/config", &alice,
        Some(r#"{"version": 1, "custom": {"registry": {"mine": {"image": "example/mine:1"}}}, "overrides": {"fetch": false}}"#)).await;
    assert_eq!(s, 200);
    let data = fd.dir.path().join("data");
    let before = tree_hash(&data);
    for (body, code) in [
        // An image outside the policy.
        (
            r#"{"version": 1, "custom": {"registry": {"x": {"image": "evil/x:1"}}}}"#,
            "policy_violation",
        ),
        // A host mount, in a custom server and in an override of an offered one.
        (
            r#"{"version": 1, "custom": {"registry": {"x": {"image": "example/x:1", "volumes": ["/var/run/docker.sock:/s"]}}}}"#,
            "policy_violation",
        ),
        (
            r#"{"version": 1, "overrides": {"fetch": {"image": "evil/x:1"}}}"#,
            "policy_violation",
        ),
        (r#"{"version": 2, "overrides": {}}"#, "bad_request"),
        (r#"{"overrides": {}}"#, "bad_request"),
        (
            r#"{"version": 1, "secrets": {"fetch.key": "x"}}"#,
            "bad_request",
        ),
        (
            r#"{"version": 1, "overrides": {"fetch": 3}}"#,
            "bad_request",
        ),
        (r#"[1, 2]"#, "bad_request"),
    ] {
        let (s, err) = call(&c, "PUT", "/api/v1/users/me/config", &alice, Some(body)).await;
        assert_eq!(s, 400, "{body}: {err}");
        assert_eq!(err["error"], code, "{body}: {err}");
    }
    assert_eq!(tree_hash(&data), before, "a refused import wrote something");
}

#[tokio::test]
async fn nobody_reaches_another_users_configuration() {
    let fd = Frontdoor::builder().custom_servers().start().await;
    let c = fd.client(Proto::H2);
    let (alice, bob, root) = (
        token("alice", false),
        token("bob", false),
        token("root", true),
    );
    let (s, _) = call(
        &c,
        "POST",
        "/api/v1/users/me/servers",
        &alice,
        Some(r#"{"disable": ["fetch"]}"#),
    )
    .await;
    assert_eq!(s, 200);
    let (_, mine) = call(&c, "GET", "/api/v1/users/me/config", &alice, None).await;
    let slug = mine["user"].as_str().unwrap().to_string();
    let data = fd.dir.path().join("data");
    let before = tree_hash(&data);
    for who in ["alice", slug.as_str()] {
        let base = format!("/api/v1/users/{who}");
        let (s, _) = call(&c, "GET", &format!("{base}/config"), &bob, None).await;
        assert_eq!(s, 403);
        let (s, _) = call(
            &c,
            "PUT",
            &format!("{base}/config"),
            &bob,
            Some(r#"{"version": 1, "overrides": {}}"#),
        )
        .await;
        assert_eq!(s, 403);
        let (s, _) = call(
            &c,
            "POST",
            &format!("{base}/servers"),
            &bob,
            Some(r#"{"enable": ["fetch"]}"#),
        )
        .await;
        assert_eq!(s, 403);
    }
    assert_eq!(tree_hash(&data), before);
    let denied = audit_lines(&fd)
        .into_iter()
        .filter(|l| l["outcome"] == "denied")
        .count();
    assert_eq!(denied, 4, "every refused write is audited");
    // An admin may: by user id and by slug.
    let (s, theirs) = call(&c, "GET", "/api/v1/users/alice/config", &root, None).await;
    assert_eq!(s, 200);
    assert_eq!(theirs, mine);
    let (s, _) = call(
        &c,
        "POST",
        &format!("/api/v1/users/{slug}/servers"),
        &root,
        Some(r#"{"enable": ["fetch"]}"#),
    )
    .await;
    assert_eq!(s, 200);
}
