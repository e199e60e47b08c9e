//! The live event stream (`GET /api/v1/events`) against hostile tenants: each user sees only
//! their own events, in the order of the writes; a reconnect resumes exactly where it left
//! off or is told to reload; no secret value is ever sent; a tenant cannot hold more than
//! their share of streams; shutdown ends the streams.

use crate::support::client::Client;
use crate::support::sse::{Frame, SseReader};
use crate::support::tokens::{claims, sign, Signer};
use crate::support::{body_json, Frontdoor, Proto};
use std::time::Duration;

fn token(sub: &str, admin: bool) -> String {
    let roles: &[&str] = if admin { &["admin"] } else { &[] };
    format!("Bearer {}", sign(Signer::Hs256, &claims(sub, roles, &[])))
}

/// The slug of user id `sub` as the API names it.
async fn slug_of(c: &Client, who: &str) -> String {
    let r = c
        .send(
            c.req("GET", "/api/v1/users/me/secrets")
                .header("authorization", who),
        )
        .await;
    body_json(r).await["user"].as_str().unwrap().to_string()
}

async fn open(c: &Client, who: &str, query: &str, last_id: Option<&str>) -> SseReader {
    let mut req = c
        .req("GET", &format!("/api/v1/events{query}"))
        .header("authorization", who);
    if let Some(id) = last_id {
        req = req.header("last-event-id", id);
    }
    SseReader::new(c.send(req).await)
}

async fn put_secret(c: &Client, who: &str, body: &str) {
    let r = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/secrets")
                .header("authorization", who)
                .header("content-type", "application/json"),
            body.to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
}

async fn delete_secret(c: &Client, who: &str, name: &str) {
    let r = c
        .send(
            c.req("DELETE", &format!("/api/v1/users/me/secrets?name={name}"))
                .header("authorization", who),
        )
        .await;
    assert_eq!(r.status(), 204);
}

async fn put_overrides(c: &Client, who: &str, overrides: &str) {
    let r = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/catalogs")
                .header("authorization", who)
                .header("content-type", "application/json"),
            format!(r#"{{"overrides": {overrides}}}"#),
        )
        .await;
    assert_eq!(r.status(), 200);
}

fn seq(f: &Frame) -> u64 {
    let s = f.data["seq"].as_u64().unwrap();
    assert_eq!(f.id.as_deref(), Some(s.to_string().as_str()), "id is seq");
    s
}

fn kinds(frames: &[Frame]) -> Vec<(String, String)> {
    frames
        .iter()
        .map(|f| {
            assert_eq!(f.data["type"], f.event.as_str());
            (
                f.event.clone(),
                f.data["user"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_user_sees_only_their_events_in_order_and_no_secret_value() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let (alice, bob, root) = (
        token("alice", false),
        token("bob", false),
        token("root", true),
    );
    let (a, b) = (slug_of(&c, &alice).await, slug_of(&c, &bob).await);
    let mut sa = open(&c, &alice, "", None).await;
    let mut sb = open(&c, &bob, "", None).await;
    let mut sroot = open(&c, &root, "", None).await;
    let mut sroot_alice = open(&c, &root, "?user=alice", None).await;

    const VALUE: &str = "s3cr3t-VALUE-that-must-never-be-streamed";
    put_secret(
        &c,
        &alice,
        &format!(r#"{{"fetch.key": "{VALUE}", "github.token": "{VALUE}"}}"#),
    )
    .await;
    put_secret(&c, &bob, &format!(r#"{{"fetch.key": "{VALUE}"}}"#)).await;
    put_overrides(&c, &alice, r#"{"fetch": false}"#).await;
    let r = c
        .send_body(
            c.req("PUT", "/api/v1/catalogs/teams/ops")
                .header("authorization", &root)
                .header("content-type", "application/json"),
            r#"{"registry": {"t": {"image": "mcp/t:1"}}}"#,
        )
        .await;
    assert_eq!(r.status(), 200);
    // A refused write is no event: bob on alice's secrets.
    let r = c
        .send_body(
            c.req("PUT", "/api/v1/users/alice/secrets")
                .header("authorization", &bob)
                .header("content-type", "application/json"),
            r#"{"fetch.key": "x"}"#,
        )
        .await;
    assert_eq!(r.status(), 403);
    // The last write of each user: what follows it in their stream would be a leak.
    delete_secret(&c, &alice, "github.token").await;
    delete_secret(&c, &bob, "fetch.key").await;

    let all = sroot.take(6).await;
    assert_eq!(
        kinds(&all),
        [
            ("secrets.changed".into(), a.clone()),
            ("secrets.changed".into(), b.clone()),
            ("catalog.changed".into(), a.clone()),
            ("catalog.changed".into(), "-".into()),
            ("secrets.changed".into(), a.clone()),
            ("secrets.changed".into(), b.clone()),
        ]
    );
    let seqs: Vec<u64> = all.iter().map(seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(all[0].data["action"], "put");
    assert_eq!(all[0].data["count"], 2);
    assert_eq!(all[2].data["scope"], "user");
    assert_eq!(all[2].data["action"], "put");
    assert_eq!(all[3].data["scope"], "team");
    assert_eq!(all[3].data["team"], "ops");
    assert_eq!(all[4].data["action"], "delete");
    assert!(all[0].data["time"].as_str().unwrap().ends_with('Z'));

    let mine = sa.take(3).await;
    assert_eq!(
        kinds(&mine),
        [
            ("secrets.changed".into(), a.clone()),
            ("catalog.changed".into(), a.clone()),
            ("secrets.changed".into(), a.clone()),
        ]
    );
    let mine_seqs: Vec<u64> = mine.iter().map(seq).collect();
    assert_eq!(mine_seqs, [seqs[0], seqs[2], seqs[4]]);
    let theirs = sb.take(2).await;
    assert_eq!(
        kinds(&theirs),
        [
            ("secrets.changed".into(), b.clone()),
            ("secrets.changed".into(), b.clone())
        ]
    );
    let filtered = sroot_alice.take(3).await;
    assert_eq!(filtered.iter().map(seq).collect::<Vec<_>>(), mine_seqs);

    for s in [&sa, &sb, &sroot, &sroot_alice] {
        let raw = String::from_utf8_lossy(&s.raw);
        assert!(!raw.contains(VALUE), "a secret value was streamed: {raw}");
        assert!(
            !raw.contains("s3cr3t"),
            "part of a secret value was streamed"
        );
    }
}

#[tokio::test]
async fn a_user_cannot_follow_another_users_events() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let bob = token("bob", false);
    for query in ["?user=alice", "?user=root"] {
        let r = c
            .send(
                c.req("GET", &format!("/api/v1/events{query}"))
                    .header("authorization", &bob),
            )
            .await;
        assert_eq!(r.status(), 403, "{query}");
        assert_eq!(body_json(r).await["error"], "forbidden");
    }
    let r = c.send(c.req("GET", "/api/v1/events")).await;
    assert_eq!(r.status(), 401);
    // Their own, by `me` or by id, is fine.
    open(&c, &bob, "?user=me", None).await;
    open(&c, &bob, "?user=bob", None).await;
}

#[tokio::test]
async fn a_reconnect_resumes_with_exactly_the_missed_events() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let alice = token("alice", false);
    let mut s = open(&c, &alice, "", None).await;
    put_secret(&c, &alice, r#"{"a.one": "1"}"#).await;
    let first = s.next().await.unwrap();
    drop(s);
    put_secret(&c, &alice, r#"{"a.two": "2"}"#).await;
    delete_secret(&c, &alice, "a.one").await;

    let mut s = open(&c, &alice, "", first.id.as_deref()).await;
    let missed = s.take(2).await;
    assert_eq!(missed[0].data["action"], "put");
    assert_eq!(missed[1].data["action"], "delete");
    assert_eq!(seq(&missed[0]), seq(&first) + 1);
    assert_eq!(seq(&missed[1]), seq(&first) + 2);
    // Then live ones, without a gap or a repeat.
    put_secret(&c, &alice, r#"{"a.three": "3"}"#).await;
    let live = s.next().await.unwrap();
    assert_eq!(seq(&live), seq(&first) + 3);
}

#[tokio::test]
async fn an_old_foreign_or_garbage_id_gets_reset_then_live_events() {
    let fd = Frontdoor::builder().events("history: 2").start().await;
    let c = fd.client(Proto::H2);
    let alice = token("alice", false);
    let mut s = open(&c, &alice, "", None).await;
    let mut frames = Vec::new();
    for i in 0..4 {
        put_secret(&c, &alice, &format!(r#"{{"a.n{i}": "v"}}"#)).await;
        // Read as it comes: the channel holds no more than the history (2) for a reader.
        frames.push(s.next().await.unwrap());
    }
    assert!(frames.iter().all(|f| f.event == "secrets.changed"));
    let oldest = frames[0].id.clone().unwrap();
    let mut newest = seq(&frames[3]);
    for (id, reason) in [
        (oldest.as_str(), "too_old"),
        // From before a restart: below this run's first id.
        ("12", "unknown_id"),
        ("99999999999999999", "unknown_id"),
        ("not-a-number", "invalid_id"),
    ] {
        let mut s = open(&c, &alice, "", Some(id)).await;
        let reset = s.next().await.unwrap();
        assert_eq!(reset.event, "reset", "{id}");
        assert_eq!(reset.data["reason"], reason, "{id}");
        // The reset carries the newest id, so a reconnect after the reload resumes there.
        assert_eq!(reset.id.as_deref(), Some(newest.to_string().as_str()));
        put_secret(&c, &alice, r#"{"a.live": "v"}"#).await;
        let live = s.next().await.unwrap();
        assert_eq!(live.event, "secrets.changed", "{id}");
        assert_eq!(seq(&live), newest + 1);
        newest += 1;
    }
    // The newest id still resumes (nothing missed, no reset).
    let mut s = open(&c, &alice, "", Some(&newest.to_string())).await;
    put_secret(&c, &alice, r#"{"a.after": "v"}"#).await;
    let next = s.next().await.unwrap();
    assert_eq!(next.event, "secrets.changed");
    assert_eq!(seq(&next), newest + 1);
}

#[tokio::test]
async fn a_tenant_cannot_hold_more_than_their_streams() {
    let fd = Frontdoor::builder()
        .events("max_streams_per_user: 2")
        .start()
        .await;
    let c = fd.client(Proto::H2);
    let (alice, bob) = (token("alice", false), token("bob", false));
    let first = open(&c, &alice, "", None).await;
    let _second = open(&c, &alice, "?user=me", None).await;
    let r = c
        .send(
            c.req("GET", "/api/v1/events")
                .header("authorization", &alice),
        )
        .await;
    assert_eq!(r.status(), 429);
    assert_eq!(body_json(r).await["error"], "too_many_streams");
    // Someone else is not affected.
    let _b = open(&c, &bob, "", None).await;
    // A closed stream frees its place (once the front door sees the reset).
    drop(first);
    let mut status = 0;
    for _ in 0..100 {
        let r = c
            .send(
                c.req("GET", "/api/v1/events")
                    .header("authorization", &alice),
            )
            .await;
        status = r.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 200, "a closed stream kept its place");
}

#[tokio::test]
async fn shutdown_ends_event_streams_instead_of_waiting_out_the_grace() {
    let mut fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let alice = token("alice", false);
    let mut s = open(&c, &alice, "", None).await;
    // A grace far longer than the test may take: only the stream ending lets it finish.
    fd.shutdown.trigger(Duration::from_secs(600));
    assert!(s.next().await.is_none(), "the stream should end");
    tokio::time::timeout(Duration::from_secs(60), fd.join())
        .await
        .expect("shutdown waited for the event stream")
        .unwrap();
}
