//! The REST API's gateway routes against the real lifecycle: start, status, logs, list, stop.

use crate::engine::engine;
use crate::support::tokens::{claims, sign, Signer};
use crate::support::{body_bytes, body_json, Proto};

fn bearer(sub: &str, admin: bool) -> String {
    let roles: &[&str] = if admin { &["admin"] } else { &[] };
    format!("Bearer {}", sign(Signer::Hs256, &claims(sub, roles, &[])))
}

#[tokio::test]
async fn gateway_routes_start_report_and_stop_a_real_gateway() {
    let Some(eng) = engine("api") else { return };
    let fd = eng.frontdoor(&[], "").await;
    let c = fd.client(Proto::H2);
    let (erin, root) = (bearer("erin", false), bearer("root", true));

    let started = c
        .send(
            c.req("POST", "/api/v1/users/me/gateway")
                .header("authorization", &erin),
        )
        .await;
    assert_eq!(started.status(), 200);
    let s = body_json(started).await;
    assert_eq!(s["state"], "ready", "{s}");
    assert_eq!(s["container"], eng.name("erin").as_str());
    assert_eq!(eng.containers(true), vec![eng.name("erin")]);

    let status = body_json(
        c.send(
            c.req("GET", "/api/v1/users/erin/gateway")
                .header("authorization", &erin),
        )
        .await,
    )
    .await;
    assert_eq!(status["state"], "ready");
    assert!(status["uptime_seconds"].is_u64(), "{status}");

    let logs = c
        .send(
            c.req("GET", "/api/v1/users/me/gateway/logs?tail=20")
                .header("authorization", &erin),
        )
        .await;
    assert_eq!(logs.status(), 200);
    let text = String::from_utf8(body_bytes(logs).await.to_vec()).unwrap();
    assert!(!text.is_empty(), "gateway logs are returned");
    // Each line starts with the engine's time, RFC 3339 in UTC (2026-11-29T12:15:59.68Z).
    for line in text.lines() {
        let stamp = line.split(' ').next().unwrap();
        let b = stamp.as_bytes();
        assert!(
            b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && stamp.ends_with('Z'),
            "not an RFC 3339 time: {line}"
        );
    }

    let denied = c
        .send(
            c.req("GET", "/api/v1/gateways")
                .header("authorization", &erin),
        )
        .await;
    assert_eq!(denied.status(), 403);
    let list = body_json(
        c.send(
            c.req("GET", "/api/v1/gateways")
                .header("authorization", &root),
        )
        .await,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["user"], "erin");
    assert!(list["next_cursor"].is_null(), "{list}");

    // An admin stops someone else's gateway; container and network are gone.
    let stop = c
        .send(
            c.req("DELETE", "/api/v1/users/erin/gateway")
                .header("authorization", &root),
        )
        .await;
    assert_eq!(stop.status(), 204);
    assert!(eng.containers(true).is_empty());
    assert!(eng.networks().is_empty());
    let after = body_json(
        c.send(
            c.req("GET", "/api/v1/users/me/gateway")
                .header("authorization", &erin),
        )
        .await,
    )
    .await;
    assert_eq!(after["state"], "stopped", "{after}");
    let again = c
        .send(
            c.req("DELETE", "/api/v1/users/me/gateway")
                .header("authorization", &erin),
        )
        .await;
    assert_eq!(again.status(), 404, "nothing left to stop");
    // Nor to read logs from, like DELETE.
    let logs = c
        .send(
            c.req("GET", "/api/v1/users/me/gateway/logs")
                .header("authorization", &erin),
        )
        .await;
    assert_eq!(logs.status(), 404);
    assert_eq!(body_json(logs).await["error"], "not_found");
    let audit =
        std::fs::read_to_string(fd.dir.path().join("data/audit/audit.log")).unwrap_or_default();
    assert!(
        audit.contains("\"gateway.start\"") && audit.contains("\"gateway.stop\""),
        "{audit}"
    );
}

#[tokio::test]
async fn images_named_in_catalogs_are_pulled_ahead_of_time() {
    let Some(eng) = engine("prepull") else { return };
    let fd = eng.frontdoor(&[], "").await;
    let c = fd.client(Proto::H1);
    let root = bearer("root", true);
    let present =
        std::env::var("MCP_TEST_GATEWAY_IMAGE").unwrap_or_else(|_| "mcp-test-gateway:dev".into());
    let catalog = format!(
        r#"{{"registry":{{"here":{{"image":"{present}"}},"gone":{{"image":"frontdoor-test/never-published:0"}}}}}}"#
    );
    let put = c
        .send_body(
            c.req("PUT", "/api/v1/catalogs/base/prepull")
                .header("authorization", &root)
                .header("content-type", "application/json"),
            catalog,
        )
        .await;
    assert_eq!(put.status(), 200);
    let resp = c
        .send(
            c.req("POST", "/api/v1/admin/images/pull")
                .header("authorization", &root),
        )
        .await;
    // One of the images failed, the others are there: a partial success.
    assert_eq!(resp.status(), 207);
    let results = body_json(resp).await;
    let image = |name: &str| {
        results["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["image"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in {results}"))
    };
    assert_eq!(image(&present)["outcome"], "present", "{results}");
    let failed = image("frontdoor-test/never-published:0");
    assert_eq!(failed["outcome"], "failed", "{results}");
    // The reason is the engine's: the registry refused or could not be reached.
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the engine could not pull it: "),
        "{results}"
    );
    assert!(
        reason.len() > "the engine could not pull it: ".len() + 5,
        "{results}"
    );
    assert!(results["failed"].as_u64().unwrap() >= 1, "{results}");
    assert!(results["present"].as_u64().unwrap() >= 1, "{results}");
    assert!(results.get("error").is_none(), "{results}");
}

#[tokio::test]
async fn gateway_state_changes_reach_the_users_event_stream_only() {
    let Some(eng) = engine("events") else { return };
    let fd = eng.frontdoor(&[], "").await;
    let c = fd.client(Proto::H2);
    let (erin, frank) = (bearer("erin", false), bearer("frank", false));
    let open = |who: String| {
        let c = c.clone();
        async move {
            crate::support::sse::SseReader::new(
                c.send(c.req("GET", "/api/v1/events").header("authorization", who))
                    .await,
            )
        }
    };
    let mut mine = open(erin.clone()).await;
    let mut theirs = open(frank.clone()).await;
    let started = c
        .send(
            c.req("POST", "/api/v1/users/me/gateway")
                .header("authorization", &erin),
        )
        .await;
    assert_eq!(started.status(), 200);
    let stop = c
        .send(
            c.req("DELETE", "/api/v1/users/me/gateway")
                .header("authorization", &erin),
        )
        .await;
    assert_eq!(stop.status(), 204);
    let frames = mine.take(4).await;
    let seen: Vec<(String, String, String)> = frames
        .iter()
        .map(|f| {
            assert_eq!(f.event, "gateway.state");
            assert_eq!(f.data["user"], "erin");
            (
                f.data["previous"].as_str().unwrap().to_string(),
                f.data["state"].as_str().unwrap().to_string(),
                f.id.clone().unwrap(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = seen
        .iter()
        .map(|(p, s, _)| (p.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("stopped", "starting"),
            ("starting", "ready"),
            ("ready", "stopping"),
            ("stopping", "stopped")
        ]
    );
    // frank's stream got none of it: his own change is the next thing he sees.
    let put = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/secrets")
                .header("authorization", &frank)
                .header("content-type", "application/json"),
            r#"{"fetch.key": "v"}"#,
        )
        .await;
    assert_eq!(put.status(), 200);
    let next = theirs.next().await.unwrap();
    assert_eq!(next.event, "secrets.changed");
    assert_eq!(next.data["user"], "frank");
}
