//! The operators' files the repository ships, checked with the ecosystem's own tools against a
//! real front door: `promtool check metrics` on a scrape, `promtool test rules` on the alert
//! rules, the Grafana dashboard's queries parsed by promtool, and every metric name the
//! dashboard and the alerts use exists (in a real scrape, or in the README's metric table for
//! those that only a Docker runtime exports).

use crate::support::tokens::{claims, sign, Signer};
use crate::support::{Frontdoor, Proto};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// promtool, or `None` (skip) outside CI; under `CI=true` its absence fails the test.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "promtool missing and CI=true: scripts/setup.sh installs it (Debian package prometheus)"
        );
        eprintln!("skipped: promtool not installed (apt-get install prometheus; scripts/setup.sh does it in CI)");
    }
    found
}

/// Runs promtool; panics with its output unless it succeeds.
fn run_promtool(tool: &Path, args: &[&str], stdin: Option<&str>, dir: &Path) -> String {
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// A scrape of a front door whose counters and histograms have samples.
async fn busy_scrape() -> String {
    let fd = Frontdoor::builder().start().await;
    let c = fd.client(Proto::H1);
    let alice = format!("Bearer {}", sign(Signer::Hs256, &claims("alice", &[], &[])));
    c.send(
        c.req("GET", "/api/v1/users/me/catalogs?include=merged")
            .header("authorization", alice),
    )
    .await;
    c.send(
        c.req("GET", "/api/v1/catalogs/base")
            .header("authorization", "Bearer nope"),
    )
    .await;
    fd.metrics_text().await
}

#[tokio::test]
async fn promtool_check_metrics_passes_on_a_real_scrape() {
    let Some(tool) = promtool() else { return };
    let text = busy_scrape().await;
    assert!(
        text.contains("mcp_frontdoor_auth_failures_total{"),
        "{text}"
    );
    let out = run_promtool(&tool, &["check", "metrics"], Some(&text), repo());
    // Lint findings are printed even when the exit status is 0 in some versions.
    assert!(!out.contains("no help text"), "{out}");
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(tool) = promtool() else { return };
    let dir = repo().join("deploy/prometheus");
    run_promtool(&tool, &["check", "rules", "alerts.yml"], None, &dir);
    let out = run_promtool(&tool, &["test", "rules", "alerts.test.yml"], None, &dir);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every `expr` of the Grafana dashboard, with Grafana's variables filled in.
fn dashboard_exprs() -> Vec<String> {
    let raw = std::fs::read_to_string(repo().join("deploy/grafana/mcp-frontdoor.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let mut out = Vec::new();
    for panel in doc["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            let e = t["expr"].as_str().unwrap();
            out.push(
                e.replace("$__rate_interval", "5m")
                    .replace("$instance", ".*")
                    .replace("$job", ".*"),
            );
        }
    }
    assert!(out.len() > 20, "{out:?}");
    out
}

#[test]
fn the_dashboards_queries_are_valid_promql() {
    let Some(tool) = promtool() else { return };
    // promtool parses PromQL in rule files: one recording rule per query.
    let rules: Vec<serde_json::Value> = dashboard_exprs()
        .into_iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": e}))
        .collect();
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.yml"), file.to_string()).unwrap();
    run_promtool(
        &tool,
        &["check", "rules", "dashboard.yml"],
        None,
        dir.path(),
    );
}

/// Metric names in PromQL: ours, the process ones and Prometheus' own `up`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let rest = &expr[i..];
        if word_start && (rest.starts_with("mcp_frontdoor_") || rest.starts_with("process_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.insert(rest[..len].to_string());
            i += len;
        } else {
            i += 1;
        }
    }
    out
}

/// Names in the README's metric table, with the `mcp_frontdoor_` prefix the README leaves out.
fn readme_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = readme.split("## Metrics").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    let mut out = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = line.split('|').nth(1).unwrap();
        for name in first_cell.split('`').skip(1).step_by(2) {
            if name.starts_with("process_") {
                out.insert(name.to_string());
            } else {
                out.insert(format!("mcp_frontdoor_{name}"));
            }
        }
    }
    assert!(out.len() > 15, "{out:?}");
    out
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_use_only_metrics_that_exist() {
    let scrape = busy_scrape().await;
    let mut known: BTreeSet<String> = scrape
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# TYPE ")
                .or(Some(l).filter(|l| !l.starts_with('#')))
        })
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let documented = readme_metrics();
    // The README's table is true: every family a front door exports is in it (families
    // without samples yet, and the Docker-only ones, are not in this scrape to check).
    let base = |n: &str| {
        ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| n.strip_suffix(s))
            .unwrap_or(n)
            .to_string()
    };
    for n in &known {
        assert!(
            documented.contains(n) || documented.contains(&base(n)),
            "{n} is exported but not in the README's metric table"
        );
    }
    known.extend(documented);
    let exists = |n: &str| {
        known.contains(n)
            || ["_bucket", "_count", "_sum"]
                .iter()
                .any(|s| n.strip_suffix(s).is_some_and(|base| known.contains(base)))
    };
    let alerts = std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).unwrap();
    let alert_exprs: Vec<String> = alerts
        .split("expr:")
        .skip(1)
        .map(|e| e.split("labels:").next().unwrap().to_string())
        .collect();
    assert_eq!(alert_exprs.len(), 7);
    let mut used = BTreeSet::new();
    for e in dashboard_exprs().iter().chain(&alert_exprs) {
        used.extend(metric_names(e));
    }
    assert!(used.len() > 20, "{used:?}");
    let missing: Vec<_> = used.iter().filter(|n| !exists(n)).collect();
    assert!(
        missing.is_empty(),
        "used but nowhere exported or documented: {missing:?}"
    );
}
