//! The audit log against a hostile tenant: a user over the write limit gets 429 and changes
//! nothing, a bulk PUT is one line, the chain survives a restart, and `audit verify` (the real
//! binary) catches an edited, a deleted and a reordered line.

use crate::support::tokens::{claims, sign, Signer};
use crate::support::{body_json, Frontdoor, Proto};
use mcp_frontdoor::audit::{
    verify, Action, Actor, AuditEntry, AuditLog, Outcome, RotationPolicy, Target,
};
use std::path::Path;
use std::time::Duration;

fn token(sub: &str, admin: bool) -> String {
    let roles: &[&str] = if admin { &["admin"] } else { &[] };
    format!("Bearer {}", sign(Signer::Hs256, &claims(sub, roles, &[])))
}

fn audit_lines(data: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(data.join("audit/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn secret_names(c: &crate::support::client::Client, who: &str) -> serde_json::Value {
    body_json(
        c.send(
            c.req("GET", "/api/v1/users/me/secrets")
                .header("authorization", who),
        )
        .await,
    )
    .await["names"]
        .clone()
}

#[tokio::test]
async fn a_user_over_the_write_limit_gets_429_and_nothing_changes() {
    let fd = Frontdoor::builder()
        // One token every 5 s: the requests below fit in that window, the wait stays short.
        .audit("user_rate: 12")
        .audit("user_burst: 3")
        .start()
        .await;
    let c = fd.client(Proto::H2);
    let data = fd.dir.path().join("data");
    let (alice, root) = (token("alice", false), token("root", true));
    let put_secret = |who: &str| {
        c.req("PUT", "/api/v1/users/me/secrets")
            .header("authorization", who.to_string())
            .header("content-type", "application/json")
    };
    for name in ["a.one", "a.two"] {
        let r = c
            .send_body(put_secret(&alice), format!(r#"{{"{name}":"v"}}"#))
            .await;
        assert_eq!(r.status(), 200);
    }
    // A refused attempt is audited, so it spends a token too: the third and last.
    let denied = c
        .send_body(
            c.req("PUT", "/api/v1/users/bob/secrets")
                .header("authorization", &alice)
                .header("content-type", "application/json"),
            r#"{"b.x":"v"}"#,
        )
        .await;
    assert_eq!(denied.status(), 403);
    let lines_before = audit_lines(&data).len();
    assert_eq!(lines_before, 3);

    let limited = c.send_body(put_secret(&alice), r#"{"a.three":"v"}"#).await;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=5).contains(&retry), "Retry-After {retry}");
    let body = body_json(limited).await;
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(body["message"].is_string());
    // The catalog route is limited the same way, before it touches anything.
    let cat = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/catalogs")
                .header("authorization", &alice)
                .header("content-type", "application/json"),
            r#"{"custom":{"registry":{"mine":{"image":"example/mine:1"}}}}"#,
        )
        .await;
    assert_eq!(cat.status(), 429);
    assert!(!data.join("users/alice/custom.yaml").exists());
    assert_eq!(
        secret_names(&c, &alice).await,
        serde_json::json!(["a.one", "a.two"]),
        "the limited PUT stored nothing"
    );
    assert_eq!(audit_lines(&data).len(), lines_before, "and wrote no line");

    // Other users have their own bucket, and admins are exempt by default.
    let bob = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/secrets")
                .header("authorization", token("bob", false))
                .header("content-type", "application/json"),
            r#"{"b.one":"v"}"#,
        )
        .await;
    assert_eq!(bob.status(), 200);
    for i in 0..6 {
        let r = c
            .send_body(put_secret(&root), format!(r#"{{"r.k{i}":"v"}}"#))
            .await;
        assert_eq!(r.status(), 200, "admin write {i}");
    }

    // The bucket refills at user_rate: after Retry-After the user may write again.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let again = c.send_body(put_secret(&alice), r#"{"a.three":"v"}"#).await;
    assert_eq!(again.status(), 200);
    verify(&data.join("audit/audit.log")).expect("the chain is intact");
}

#[tokio::test]
async fn one_put_of_999_secret_names_is_one_bounded_audit_line() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let data = fd.dir.path().join("data");
    let alice = token("alice", false);
    let body: serde_json::Map<String, serde_json::Value> = (0..999)
        .map(|i| (format!("srv{i}.key"), "value-never-logged".into()))
        .collect();
    let r = c
        .send_body(
            c.req("PUT", "/api/v1/users/me/secrets")
                .header("authorization", &alice)
                .header("content-type", "application/json"),
            serde_json::Value::Object(body).to_string(),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_json(r).await["names"].as_array().unwrap().len(), 999);
    let text = std::fs::read_to_string(data.join("audit/audit.log")).unwrap();
    assert_eq!(text.lines().count(), 1, "one line for the whole PUT");
    assert!(text.len() < 2048, "bounded: {} bytes", text.len());
    assert!(!text.contains("value-never-logged"));
    let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    assert_eq!(line["count"], 999);
    assert_eq!(line["action"], "secret.put");
    assert_eq!(line["target"], "user:alice/secrets");
    assert_eq!(line["names"][0], "srv0.key");
}

#[tokio::test]
async fn a_restart_continues_the_chain() {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    for round in 0..2 {
        let mut fd = Frontdoor::builder().data_dir(data.clone()).start().await;
        let c = fd.client(Proto::H1);
        let r = c
            .send_body(
                c.req("PUT", "/api/v1/users/me/secrets")
                    .header("authorization", token("alice", false))
                    .header("content-type", "application/json"),
                format!(r#"{{"s.k{round}":"v"}}"#),
            )
            .await;
        assert_eq!(r.status(), 200);
        fd.shutdown.trigger(Duration::ZERO);
        fd.join().await.unwrap();
    }
    let lines = audit_lines(&data);
    assert_eq!(lines.len(), 2);
    let first = std::fs::read_to_string(data.join("audit/audit.log")).unwrap();
    let first = first.lines().next().unwrap();
    assert_eq!(
        lines[1]["prev"],
        mcp_frontdoor::audit::chain::line_hash(first.as_bytes()),
        "the second run linked to the first run's last line"
    );
    assert_eq!(verify(&data.join("audit/audit.log")).unwrap().lines, 2);
}

/// A data dir whose audit log has `n` lines spread over rotated files, and a config naming it.
fn rotated_log(dir: &Path, n: usize) -> std::path::PathBuf {
    let data = dir.join("data");
    let policy = RotationPolicy {
        max_file_size: 1024,
        max_files: 100,
    };
    let log = AuditLog::open(&data.join("audit/audit.log"), policy).unwrap();
    for i in 0..n {
        log.append(&AuditEntry::new(
            Actor::User(format!("u{i}")),
            Action::SecretDelete,
            Target::secret(&format!("u{i}"), "github.token"),
            Outcome::Success,
        ))
        .unwrap();
    }
    let cfg = dir.join("c.yaml");
    std::fs::write(&cfg, format!("data_dir: {}\n", data.display())).unwrap();
    cfg
}

fn run_verify(cfg: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = crate::cli::bin()
        .args(["audit", "verify", "--config"])
        .arg(cfg)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn audit_verify_passes_an_intact_log_and_names_the_first_broken_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = rotated_log(dir.path(), 40);
    let (ok, out, err) = run_verify(&cfg, &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("intact: 40 chained lines"), "{out}");
    assert!(out.contains("genesis"), "{out}");
    let audit = dir.path().join("data/audit");
    let target = audit.join("audit.log.1");
    let pristine = std::fs::read_to_string(&target).unwrap();
    let lines: Vec<&str> = pristine.lines().collect();
    assert!(lines.len() >= 4, "{pristine}");
    let edited = pristine.replacen("\"outcome\":\"success\"", "\"outcome\":\"denied\"", 1);
    let mut deleted = lines.clone();
    deleted.remove(1);
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    for (what, content, line) in [
        ("edited line 1", edited, 2),
        ("deleted line 2", deleted.join("\n") + "\n", 2),
        ("swapped lines 2 and 3", swapped.join("\n") + "\n", 2),
    ] {
        std::fs::write(&target, &content).unwrap();
        let (ok, out, err) = run_verify(&cfg, &[]);
        assert!(!ok, "{what}: verify passed\n{out}");
        assert!(
            err.contains(&format!("audit.log.1 line {line}:")),
            "{what}: {err}"
        );
        assert!(err.contains("does not match"), "{what}: {err}");
        assert!(!out.contains("intact"), "{what}: {out}");
    }
    // Retention deleted the oldest file: its first link cannot be checked, and verify says so
    // instead of failing.
    std::fs::write(&target, &pristine).unwrap();
    let oldest =
        mcp_frontdoor::audit::chain::log_files(&audit.join("audit.log")).unwrap()[0].clone();
    std::fs::remove_file(&oldest).unwrap();
    let (ok, out, err) = run_verify(&cfg, &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("cannot be checked"), "{out}");
    // A cut tail leaves no broken link; the head printed earlier catches it.
    let head = out
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("head printed")
        .to_string();
    assert!(run_verify(&cfg, &["--head", &head]).0);
    let active = audit.join("audit.log");
    let text = std::fs::read_to_string(&active).unwrap();
    let mut kept: Vec<&str> = text.lines().collect();
    kept.pop();
    let cut: String = kept.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&active, cut).unwrap();
    assert!(run_verify(&cfg, &[]).0, "the chain alone cannot see it");
    let (ok, _, err) = run_verify(&cfg, &["--head", &head]);
    assert!(!ok && err.contains("earlier head"), "{err}");
}

// ---- Reading the trail back: GET /api/v1/audit and /audit/export ----

async fn get_json(
    c: &crate::support::client::Client,
    who: &str,
    path: &str,
) -> (u16, serde_json::Value) {
    let r = c
        .send(c.req("GET", path).header("authorization", who))
        .await;
    let status = r.status().as_u16();
    (status, body_json(r).await)
}

/// Writes one secret for `who` (one `secret.put` line about them).
async fn put_secret(c: &crate::support::client::Client, who: &str, user: &str, name: &str) {
    let r = c
        .send_body(
            c.req("PUT", &format!("/api/v1/users/{user}/secrets"))
                .header("authorization", who)
                .header("content-type", "application/json"),
            format!(r#"{{"{name}":"s3cret-value-{name}"}}"#),
        )
        .await;
    assert!(
        r.status().is_success() || r.status() == 403,
        "{}",
        r.status()
    );
}

#[tokio::test]
async fn a_user_reads_only_the_lines_about_them_and_an_admin_reads_all() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let (alice, bob, root) = (
        token("alice", false),
        token("bob", false),
        token("root", true),
    );
    put_secret(&c, &alice, "me", "a.one").await;
    put_secret(&c, &bob, "me", "b.one").await;
    // An admin changes alice's secrets: alice sees that line, bob does not.
    put_secret(&c, &root, "alice", "a.two").await;
    // Bob tries alice's: denied, audited under bob, about alice's secrets: both may see it.
    put_secret(&c, &bob, "alice", "a.evil").await;

    let (s, mine) = get_json(&c, &alice, "/api/v1/audit").await;
    assert_eq!(s, 200, "{mine}");
    let targets: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 3, "{mine}");
    assert!(targets
        .iter()
        .all(|t| t.starts_with("user:") && !t.contains("bob")));
    // Newest first: bob's refused attempt, the admin's change, alice's own.
    assert_eq!(mine["items"][0]["outcome"], "denied");
    assert_eq!(
        mine["items"][2]["actor"],
        mine["items"][2]["target"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
    );
    assert!(mine["next_cursor"].is_null());

    // Bob may not name anyone else, whichever spelling.
    let alice_slug = mine["items"][2]["actor"]
        .as_str()
        .unwrap()
        .trim_start_matches("user:")
        .to_string();
    for other in ["alice", alice_slug.as_str(), "root"] {
        let (s, body) = get_json(&c, &bob, &format!("/api/v1/audit?user={other}")).await;
        assert_eq!(s, 403, "{other}: {body}");
        assert_eq!(body["error"], "forbidden");
        let r = c
            .send(
                c.req("GET", &format!("/api/v1/audit/export?user={other}"))
                    .header("authorization", &bob),
            )
            .await;
        assert_eq!(r.status(), 403);
    }
    let (_, bobs) = get_json(&c, &bob, "/api/v1/audit?user=me").await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 2, "{bobs}");

    let (s, all) = get_json(&c, &root, "/api/v1/audit").await;
    assert_eq!(s, 200);
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
    let (_, just_alice) = get_json(&c, &root, "/api/v1/audit?user=alice").await;
    assert_eq!(just_alice["items"], mine["items"]);
    // No secret value is in any line a reader gets.
    for body in [&mine, &all] {
        assert!(!body.to_string().contains("s3cret-value"), "{body}");
    }
}

#[tokio::test]
async fn filters_pages_and_the_export_agree_with_the_file() {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H2);
    let root = token("root", true);
    let before =
        mcp_frontdoor::time::rfc3339_utc(std::time::SystemTime::now() - Duration::from_secs(1));
    for i in 0..7 {
        put_secret(&c, &root, "me", &format!("s.k{i}")).await;
    }
    let r = c
        .send(
            c.req("DELETE", "/api/v1/users/me/secrets?name=s.k0")
                .header("authorization", &root),
        )
        .await;
    assert_eq!(r.status(), 204);

    // Pages of 3, newest first, every line once.
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let path = match &cursor {
            Some(cur) => format!("/api/v1/audit?action=secret.put&limit=3&cursor={cur}"),
            None => "/api/v1/audit?action=secret.put&limit=3".into(),
        };
        let (s, page) = get_json(&c, &root, &path).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["names"][0].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(n) => cursor = Some(n.to_string()),
            None => break,
        }
    }
    let want: Vec<String> = (0..7).rev().map(|i| format!("s.k{i}")).collect();
    assert_eq!(seen, want);

    let (_, deletes) = get_json(&c, &root, "/api/v1/audit?action=secret.delete").await;
    assert_eq!(deletes["items"].as_array().unwrap().len(), 1);
    let (_, family) = get_json(&c, &root, "/api/v1/audit?action=secret.*").await;
    assert_eq!(family["items"].as_array().unwrap().len(), 8);
    let (_, none) = get_json(&c, &root, &format!("/api/v1/audit?until={before}")).await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let (_, since) = get_json(&c, &root, &format!("/api/v1/audit?since={before}")).await;
    assert_eq!(since["items"].as_array().unwrap().len(), 8);

    for bad in [
        "since=yesterday",
        "until=2026-13-01",
        "action=Secret.PUT",
        "action=a/../b",
        "limit=0",
        "limit=1001",
        "cursor=bm90LWEtY3Vyc29y",
        "cursor=YTE6Li4vLi4vZXRjL3Bhc3N3ZA",
    ] {
        let (s, body) = get_json(&c, &root, &format!("/api/v1/audit?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {body}");
        assert!(body["message"].is_string());
    }

    // The export: the file's lines, oldest first, byte for byte.
    let r = c
        .send(
            c.req("GET", "/api/v1/audit/export")
                .header("authorization", &root),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = String::from_utf8(crate::support::body_bytes(r).await.to_vec()).unwrap();
    let on_disk = std::fs::read_to_string(fd.dir.path().join("data/audit/audit.log")).unwrap();
    assert_eq!(text, on_disk);
}

#[tokio::test]
async fn lines_older_than_max_age_are_deleted_at_start() {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    // Two old lines and a young one, chained, as an earlier front door wrote them.
    let path = data.join("audit/audit.log");
    let log = AuditLog::open(&path, RotationPolicy::default()).unwrap();
    for (age, target) in [(7200, "old1"), (3700, "old2"), (10, "young")] {
        let mut e = AuditEntry::new(
            Actor::System,
            Action::GatewayStop,
            Target::gateway(target),
            Outcome::Success,
        );
        e.time = std::time::SystemTime::now() - Duration::from_secs(age);
        log.append(&e).unwrap();
    }
    drop(log);
    let mut fd = Frontdoor::builder()
        .data_dir(data.clone())
        .audit("max_age: 1h")
        .start()
        .await;
    // Every retained file, oldest first: retention rotated the old lines out of audit.log.
    let targets = || -> Vec<String> {
        mcp_frontdoor::audit::chain::log_files(&path)
            .unwrap()
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(&l).unwrap()["target"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    for _ in 0..50 {
        if targets() == ["gateway:young"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(targets(), ["gateway:young"]);
    assert_eq!(verify(&path).unwrap().lines, 1);
    fd.shutdown.trigger(Duration::ZERO);
    fd.join().await.unwrap();
}
