//! How many users one host holds before a limit bites (run with `--ignored --nocapture`):
//! users are started one at a time through the front door and kept running, and every
//! `USERS_STEP` users (default 25) the test prints the start time of the last batch, the host
//! memory they took (the host's `MemAvailable` drop, which counts the kernel's share too but
//! also whatever else runs, and the containers' own private memory from their cgroups), the
//! engine's network count and the host's IPv4 neighbour entries, until
//! `USERS_PER_HOST` users (default 200) or the first start that fails, whose error is printed.
//! Numbers go to docs/BENCHMARKS.md ("Users per host"); nothing is asserted about them.

use crate::engine::{docker, engine};
use crate::mcp::Mcp;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `Key:  N kB` field of a /proc file, in MiB (0 when absent).
fn proc_mib(path: &str, key: &str) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn mem_available_mib() -> f64 {
    proc_mib("/proc/meminfo", "MemAvailable:")
}

/// This process's resident memory (the front door runs in it).
fn own_rss_mib() -> f64 {
    proc_mib("/proc/self/status", "VmRSS:")
}

fn count_lines(cmd: &str, args: &[&str]) -> usize {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

/// Private memory (anonymous pages, no page cache) of the instance's containers, in MiB, from
/// their cgroups (v1 `rss`, v2 `anon`); `None` when neither layout is there.
fn containers_anon_mib(instance: &str) -> Option<f64> {
    let (_, ids) = docker(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=mcp-frontdoor.instance={instance}"),
    ]);
    let mut total = 0u64;
    for id in ids.lines() {
        let v1 = format!("/sys/fs/cgroup/memory/docker/{id}/memory.stat");
        let v2 = format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.stat");
        let (text, key) = match std::fs::read_to_string(&v1) {
            Ok(t) => (t, "rss "),
            Err(_) => (std::fs::read_to_string(&v2).ok()?, "anon "),
        };
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total as f64 / (1024.0 * 1024.0))
}

fn median_ms(v: &mut [Duration]) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn users_per_host() {
    let Some(eng) = engine("perhost") else { return };
    let target = env_or("USERS_PER_HOST", 200);
    let step = env_or("USERS_STEP", 25).max(1);
    let max_running = format!("max_running: {}", target + 10);
    let fd = eng
        .frontdoor(
            &[
                max_running.as_str(),
                "idle_timeout: 2h",
                "max_concurrent_starts: 4",
            ],
            "",
        )
        .await;
    // The derived image is made on the first start: not part of any user's numbers.
    Mcp::open(&fd, "warmup").await.unwrap();
    let (mem0, nets0, neigh0) = (
        mem_available_mib(),
        count_lines("docker", &["network", "ls", "-q"]),
        count_lines("ip", &["-4", "neigh"]),
    );
    eprintln!(
        "users | median start of the batch | MiB taken per user (host) | networks | neighbours"
    );
    let mut batch = Vec::new();
    let mut sessions = Vec::new();
    for i in 1..=target {
        let t = Instant::now();
        match Mcp::open(&fd, &format!("u{i}")).await {
            Ok(s) => sessions.push(s),
            Err(e) => {
                eprintln!("user {i}: start failed: {e:?}");
                let (_, tail) = docker(&[
                    "ps",
                    "-a",
                    "--filter",
                    &format!("label=mcp-frontdoor.instance={}", eng.instance),
                    "--format",
                    "{{.Status}}",
                ]);
                eprintln!("containers: {}", tail.lines().count());
                break;
            }
        }
        batch.push(t.elapsed());
        if i % step == 0 || i == target {
            let taken = (mem0 - mem_available_mib()) / i as f64;
            let private = containers_anon_mib(&eng.instance).map_or(f64::NAN, |m| m / i as f64);
            eprintln!(
                "{i:5} | {:7.0} ms | {taken:6.1} | {private:6.2} | {:6.1} | {:5} | {:5}",
                median_ms(&mut batch),
                own_rss_mib(),
                count_lines("docker", &["network", "ls", "-q"]) - nets0,
                count_lines("ip", &["-4", "neigh"]).saturating_sub(neigh0),
            );
            batch.clear();
        }
    }
    // The engine guard removes every container and network of the instance.
    drop(sessions);
}
