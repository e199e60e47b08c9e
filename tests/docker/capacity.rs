//! How many users one host holds before a limit bites (run with `--ignored --nocapture`):
//! users are started one at a time through the front door and kept running, and every
//! `USERS_STEP` users (default 25) the test prints the start time of the last batch, the host
//! memory they took, the engine's network count and the host's IPv4 neighbour entries, until
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

/// `MemAvailable` from /proc/meminfo, in MiB.
fn mem_available_mib() -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn count_lines(cmd: &str, args: &[&str]) -> usize {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
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
            eprintln!(
                "{i:5} | {:7.0} ms | {taken:6.1} | {:5} | {:5}",
                median_ms(&mut batch),
                count_lines("docker", &["network", "ls", "-q"]) - nets0,
                count_lines("ip", &["-4", "neigh"]).saturating_sub(neigh0),
            );
            batch.clear();
        }
    }
    // The engine guard removes every container and network of the instance.
    drop(sessions);
}
