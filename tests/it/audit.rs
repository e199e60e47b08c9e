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
