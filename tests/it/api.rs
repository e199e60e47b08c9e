//! The REST API: authorization for every route, bad input changes nothing on disk,
//! concurrent writers, and secret values that never come back out.

use crate::support::tokens::{claims, sign, Signer};
use crate::support::{body_bytes, body_json, tree_hash, Frontdoor, Proto};

fn token(sub: &str, admin: bool) -> String {
    let roles: &[&str] = if admin { &["admin"] } else { &[] };
    format!(
        "Bearer {}",
        sign(Signer::Hs256, &claims(sub, roles, &["ml"]))
    )
}

const CATALOG: &str =
    r#"{"name":"t","registry":{"fetch":{"image":"mcp/fetch:1","title":"Fetch"}}}"#;

/// Who calls: a route's expected outcome depends on it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Nobody,
    Admin,
    /// alice on her own resources
    Owner,
    /// alice on bob's resources or on admin routes
    Other,
}

/// Every route: method, path (with `{u}` for the user), body, admin-only, and the statuses an
/// allowed caller may get (gateway control is 409 here: the test front door has no runtime).
type Route = (
    &'static str,
    &'static str,
    Option<&'static str>,
    bool,
    &'static [u16],
);

fn routes() -> Vec<Route> {
    vec![
        ("GET", "/api/v1/catalogs/base", None, true, &[200]),
        (
            "POST",
            "/api/v1/catalogs/base?name=posted",
            Some(CATALOG),
            true,
            &[201],
        ),
        ("GET", "/api/v1/catalogs/base/official", None, true, &[200]),
        (
            "PUT",
            "/api/v1/catalogs/base/extra?priority=3",
            Some(CATALOG),
            true,
            &[200],
        ),
        (
            "DELETE",
            "/api/v1/catalogs/base/organization",
            None,
            true,
            &[204],
        ),
        ("GET", "/api/v1/catalogs/teams", None, true, &[200]),
        (
            "PUT",
            "/api/v1/catalogs/teams/ops",
            Some(CATALOG),
            true,
            &[200],
        ),
        ("GET", "/api/v1/catalogs/teams/ops", None, true, &[200]),
        ("DELETE", "/api/v1/catalogs/teams/ops", None, true, &[204]),
        (
            "GET",
            "/api/v1/users/{u}/catalogs?include=all",
            None,
            false,
            &[200],
        ),
        (
            "PUT",
            "/api/v1/users/{u}/catalogs",
            Some(r#"{"overrides":{"fetch":false}}"#),
            false,
            &[200],
        ),
        (
            "POST",
            "/api/v1/users/{u}/servers",
            Some(r#"{"disable":["github"],"enable":["fetch"]}"#),
            false,
            &[200],
        ),
        ("GET", "/api/v1/users/{u}/config", None, false, &[200]),
        (
            "PUT",
            "/api/v1/users/{u}/config",
            Some(r#"{"version":1,"overrides":{"fetch":false}}"#),
            false,
            &[200],
        ),
        (
            "PUT",
            "/api/v1/users/{u}/secrets",
            Some(r#"{"fetch.key":"v"}"#),
            false,
            &[200],
        ),
        ("GET", "/api/v1/users/{u}/secrets", None, false, &[200]),
        (
            "DELETE",
            "/api/v1/users/{u}/secrets?name=fetch.key",
            None,
            false,
            &[204, 404],
        ),
        ("POST", "/api/v1/users/{u}/gateway", None, false, &[409]),
        ("GET", "/api/v1/users/{u}/gateway", None, false, &[409]),
        ("DELETE", "/api/v1/users/{u}/gateway", None, false, &[409]),
        (
            "GET",
            "/api/v1/users/{u}/gateway/logs?tail=5",
            None,
            false,
            &[409],
        ),
        ("GET", "/api/v1/gateways", None, true, &[409]),
        ("POST", "/api/v1/admin/images/pull", None, true, &[409]),
        (
            "POST",
            "/api/v1/admin/catalogs/regenerate",
            None,
            true,
            &[202],
        ),
        (
            "GET",
            "/api/v1/admin/catalogs/regenerate/status",
            None,
            true,
            &[200],
        ),
    ]
}

#[tokio::test]
async fn authorization_matrix_for_every_route() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    for (method, path, body, admin_only, allowed) in routes() {
        for who in [Who::Nobody, Who::Other, Who::Owner, Who::Admin] {
            let user = match who {
                Who::Other => "bob",
                Who::Owner => "me",
                _ => "alice",
            };
            let path = path.replace("{u}", user);
            let mut req = c
                .req(method, &path)
                .header("content-type", "application/json");
            match who {
                Who::Nobody => {}
                Who::Admin => req = req.header("authorization", token("root", true)),
                _ => req = req.header("authorization", token("alice", false)),
            }
            let resp = c.send_body(req, body.unwrap_or("")).await;
            let status = resp.status().as_u16();
            let expected_denial = match who {
                Who::Nobody => Some(401),
                Who::Other => Some(403),
                Who::Owner if admin_only => Some(403),
                _ => None,
            };
            let bytes = body_bytes(resp).await;
            let json: serde_json::Value =
                serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            match expected_denial {
                Some(code) => {
                    assert_eq!(status, code, "{who:?} {method} {path}: {json}");
                    assert!(json["error"].is_string() && json["message"].is_string());
                }
                None => assert!(
                    allowed.contains(&status),
                    "{who:?} {method} {path} got {status}, expected one of {allowed:?}: {json}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn bad_input_is_a_400_and_the_data_dir_is_unchanged() {
    let fd = Frontdoor::builder().custom_servers().start().await;
    let c = fd.client(Proto::H2);
    let admin = token("root", true);
    // Something to overwrite, so a partial write would show.
    let seed = c
        .send_body(
            c.req("PUT", "/api/v1/users/alice/catalogs")
                .header("authorization", &admin)
                .header("content-type", "application/json"),
            r#"{"custom":{"registry":{"mine":{"image":"example/mine:1"}}}}"#,
        )
        .await;
    assert_eq!(seed.status(), 200);
    let data = fd.dir.path().join("data");
    let before = tree_hash(&data);
    let huge = format!(
        "{{\"registry\":{{\"a\":{{\"image\":\"x/y:1\",\"description\":\"{}\"}}}}}}",
        "x".repeat(7 << 20)
    );
    let cases: Vec<(&str, String, &str, String, Vec<u16>)> = vec![
        (
            "PUT",
            "/api/v1/catalogs/base/broken".into(),
            "application/yaml",
            "registry: [unclosed".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/broken".into(),
            "application/json",
            "{\"registry\": ".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/broken".into(),
            "application/json",
            "{\"registry\": [1, 2]}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/broken".into(),
            "application/json",
            "{\"registry\": {\"a\": {\"image\": 5}}}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/broken".into(),
            "application/json",
            huge.clone(),
            vec![413],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/%2e%2e".into(),
            "application/json",
            CATALOG.into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/..%2F..%2Fetc".into(),
            "application/json",
            CATALOG.into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/a%2Fb".into(),
            "application/json",
            CATALOG.into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/a%00b".into(),
            "application/json",
            CATALOG.into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/%2Fetc%2Fpasswd".into(),
            "application/json",
            CATALOG.into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/catalogs/teams/..".into(),
            "application/json",
            CATALOG.into(),
            vec![400, 404],
        ),
        (
            "PUT",
            "/api/v1/catalogs/base/ok".into(),
            "text/plain",
            CATALOG.into(),
            vec![415],
        ),
        (
            "PUT",
            "/api/v1/users/alice/catalogs".into(),
            "application/json",
            "{\"custom\": {\"registry\": {\"UPPER\": {\"image\": \"a/b:1\"}}}}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/users/alice/catalogs".into(),
            "application/json",
            "{\"custom\": 7}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/users/alice/catalogs".into(),
            "application/json",
            "{\"unknown\": {}}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/users/alice/catalogs".into(),
            "application/yaml",
            "overrides: [not, a, map]".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/users/alice/secrets".into(),
            "application/json",
            "{\"no-dot\": \"v\"}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/users/alice/secrets".into(),
            "application/json",
            "{\"a.b\": 5}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/users/alice/secrets".into(),
            "application/json",
            "{\"a.b\": \"line\\nbreak\"}".into(),
            vec![400],
        ),
        (
            "PUT",
            "/api/v1/users/alice/secrets".into(),
            "application/json",
            "[]".into(),
            vec![400],
        ),
        (
            "GET",
            "/api/v1/users/alice/catalogs?include=nonsense".into(),
            "application/json",
            String::new(),
            vec![400],
        ),
    ];
    for (method, path, ct, body, expected) in cases {
        let resp = c
            .send_body(
                c.req(method, &path)
                    .header("authorization", &admin)
                    .header("content-type", ct),
                body,
            )
            .await;
        let status = resp.status().as_u16();
        let json = body_json(resp).await;
        assert!(
            expected.contains(&status),
            "{method} {path} ({ct}): {status} {json}"
        );
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {json}"
        );
        assert_eq!(
            tree_hash(&data),
            before,
            "{method} {path} changed the data dir"
        );
    }
}

#[tokio::test]
async fn fifty_concurrent_writers_last_write_wins_and_reads_always_parse() {
    let fd = Frontdoor::builder().custom_servers().start().await;
    let c = fd.client(Proto::H2);
    let alice = token("alice", false);
    let writers = (0..50).map(|i| {
        let (c, alice) = (c.clone(), alice.clone());
        tokio::spawn(async move {
            let body = format!(
                r#"{{"custom":{{"registry":{{"srv-{i}":{{"image":"example/s{i}:1"}}}}}}}}"#
            );
            let r = c
                .send_body(
                    c.req("PUT", "/api/v1/users/me/catalogs")
                        .header("authorization", &alice)
                        .header("content-type", "application/json"),
                    body,
                )
                .await;
            assert_eq!(r.status(), 200);
        })
    });
    let readers = (0..50).map(|_| {
        let (c, alice) = (c.clone(), alice.clone());
        tokio::spawn(async move {
            let r = c
                .send(
                    c.req("GET", "/api/v1/users/me/catalogs?include=custom")
                        .header("authorization", &alice),
                )
                .await;
            assert_eq!(r.status(), 200);
            let v = body_json(r).await;
            if let Some(reg) = v["custom"]["registry"].as_object() {
                assert_eq!(reg.len(), 1, "a read saw a mixed catalog: {v}");
            }
        })
    });
    let all: Vec<_> = writers.chain(readers).collect();
    for t in all {
        t.await.unwrap();
    }
    let r = c
        .send(
            c.req("GET", "/api/v1/users/me/catalogs?include=all")
                .header("authorization", &alice),
        )
        .await;
    let v = body_json(r).await;
    let custom: Vec<_> = v["custom"]["registry"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        custom.len(),
        1,
        "exactly one writer's catalog survives whole"
    );
    assert!(custom[0].starts_with("srv-"));
    let merged = v["merged"]["registry"].as_object().unwrap();
    assert!(
        merged.contains_key(&custom[0]),
        "merged reflects the last write"
    );
}

#[tokio::test]
async fn secret_values_never_leave_through_api_audit_or_disk() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let alice = token("alice", false);
    let value = "sup3r-s3cret-VALUE-9f8e7d";
    let put = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/secrets")
                .header("authorization", &alice)
                .header("content-type", "application/yaml"),
            format!("github.token: {value}\nfetch.api_key: other-{value}\n"),
        )
        .await;
    assert_eq!(put.status(), 200);
    let mut seen = String::from_utf8_lossy(&body_bytes(put).await).into_owned();
    for path in [
        "/api/v1/users/me/secrets",
        "/api/v1/users/me/catalogs",
        "/api/v1/users/alice/secrets",
    ] {
        let r = c
            .send(c.req("GET", path).header("authorization", &alice))
            .await;
        seen.push_str(&String::from_utf8_lossy(&body_bytes(r).await));
    }
    assert!(
        seen.contains("github.token") && seen.contains("fetch.api_key"),
        "names are listed: {seen}"
    );
    assert!(!seen.contains(value), "a value came back: {seen}");
    let del = c
        .send(
            c.req("DELETE", "/api/v1/users/me/secrets?name=fetch.api_key")
                .header("authorization", &alice),
        )
        .await;
    assert_eq!(del.status(), 204);
    let names = body_json(
        c.send(
            c.req("GET", "/api/v1/users/me/secrets")
                .header("authorization", &alice),
        )
        .await,
    )
    .await;
    assert_eq!(names["names"], serde_json::json!(["github.token"]));
    // Nothing under the data dir (secrets.enc, audit log, catalogs) holds the plaintext.
    let mut stack = vec![fd.dir.path().join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(value),
                    "plaintext in {}",
                    p.display()
                );
            }
        }
    }
    let audit = std::fs::read_to_string(fd.dir.path().join("data/audit/audit.log")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The PUT of two names is one line naming both; the DELETE names its one secret.
    assert_eq!(lines.len(), 2, "{audit}");
    assert_eq!(lines[0]["target"], "user:alice/secrets");
    assert_eq!(
        lines[0]["names"],
        serde_json::json!(["github.token", "fetch.api_key"])
    );
    assert_eq!(lines[1]["target"], "user:alice/secret:fetch.api_key");
}

#[tokio::test]
async fn openapi_document_lists_every_route_with_bearer_auth() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let doc = body_json(c.send(c.req("GET", "/api/v1/openapi.json")).await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path, _, _, _) in routes() {
        let template = path
            .split('?')
            .next()
            .unwrap()
            .trim_start_matches("/api/v1")
            .replace("{u}", "{user}");
        let template = match template.as_str() {
            "/catalogs/base/official" | "/catalogs/base/extra" | "/catalogs/base/organization" => {
                "/catalogs/base/{name}".to_string()
            }
            "/catalogs/teams/ops" => "/catalogs/teams/{team}".to_string(),
            t => t.to_string(),
        };
        let op = &paths[&template][method.to_ascii_lowercase()];
        assert!(
            op.is_object(),
            "{method} {template} missing from the OpenAPI document"
        );
        assert!(
            op["security"].is_array(),
            "{method} {template} has no security"
        );
    }
    // The event stream is no request/answer route (the matrix cannot wait for its end);
    // tests/it/events.rs covers who may read it.
    let events = &paths["/events"]["get"];
    assert!(events["security"].is_array());
    assert!(events["responses"]["200"]["content"]["text/event-stream"].is_object());
    let event = &doc["components"]["schemas"]["Event"];
    assert!(event.is_object(), "the Event schema is documented");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[tokio::test]
async fn every_metric_name_has_the_prefix_once() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    // Touch the catalog cache so its metrics have samples.
    let r = c
        .send(
            c.req("GET", "/api/v1/users/me/catalogs?include=merged")
                .header("authorization", token("alice", false)),
        )
        .await;
    assert_eq!(r.status(), 200);
    let text = fd.metrics_text().await;
    let names: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    assert!(names.len() > 5, "{text}");
    // Ours carry the prefix; the standard process metrics keep their standard names.
    for n in names.iter().filter(|n| !n.starts_with("process_")) {
        assert!(n.starts_with("mcp_frontdoor_"), "{n}");
        assert!(!n.starts_with("mcp_frontdoor_mcp_frontdoor"), "{n}");
    }
    assert!(
        text.contains("mcp_frontdoor_catalog_cache_total{result=\"miss\"}"),
        "{text}"
    );
}
