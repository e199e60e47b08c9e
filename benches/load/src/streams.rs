//! Many idle event streams: open N connections, each with one `GET /idle` whose response
//! head and first comment have arrived, hold them, and report the RSS (VmRSS from
//! /proc/<pid>/status, summed over the given pids and their children) before, with the
//! streams open, after closing them (`settle` later) and once more `after_close` seconds after
//! closing them (does the process give the memory back?).

use crate::net::Endpoint;
use crate::Target;
use anyhow::Context;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Streams to hold open.
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    open_concurrency: usize,
    /// Processes whose RSS is measured (their children are included: nginx workers).
    #[arg(long, value_delimiter = ',')]
    pids: Vec<u32>,
    /// Seconds to wait before each RSS reading.
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
    #[arg(long, default_value = "/idle")]
    path: String,
    /// Seconds after the streams close for the late RSS reading (`after_close_late`).
    #[arg(long, default_value_t = 30.0)]
    after_close: f64,
}

/// (VmRSS, RssAnon) in KiB of one process.
fn rss_kib(pid: u32) -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (0, 0);
    };
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

fn with_children(pids: &[u32]) -> Vec<u32> {
    let mut all = pids.to_vec();
    for p in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                all.extend(c.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
            }
        }
    }
    all.sort_unstable();
    all.dedup();
    all
}

fn measure(pids: &[u32]) -> serde_json::Value {
    let all = with_children(pids);
    let (mut rss, mut anon) = (0, 0);
    for p in &all {
        let (r, a) = rss_kib(*p);
        rss += r;
        anon += a;
    }
    json!({"pids": all, "rss_kib": rss, "rss_anon_kib": anon})
}

async fn open_one(ep: &Endpoint, request: &[u8]) -> anyhow::Result<crate::net::Stream> {
    let mut s = ep.connect().await?;
    s.write_all(request).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut chunk))
            .await
            .context("stream did not open in 30 s")??;
        anyhow::ensure!(n > 0, "closed before the first event");
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"open") {
            anyhow::ensure!(
                buf.starts_with(b"HTTP/1.1 200"),
                "unexpected answer: {}",
                String::from_utf8_lossy(&buf[..buf.len().min(200)])
            );
            return Ok(s);
        }
        anyhow::ensure!(buf.len() < 64 * 1024, "no event in the first 64 KiB");
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let ep = Arc::new(Endpoint::new(&args.target)?);
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n",
        args.path, ep.host
    );
    for (k, v) in &ep.headers {
        request.push_str(&format!("{}: {}\r\n", k, v.to_str()?));
    }
    request.push_str("\r\n");
    let request: Arc<[u8]> = Arc::from(request.into_bytes());
    let settle = Duration::from_secs_f64(args.settle);

    tokio::time::sleep(settle).await;
    let before = measure(&args.pids);

    let started = Instant::now();
    let sem = Arc::new(Semaphore::new(args.open_concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.n {
        let permit = sem.clone().acquire_owned().await?;
        let (ep, request) = (ep.clone(), request.clone());
        tasks.spawn(async move {
            let r = open_one(&ep, &request).await;
            drop(permit);
            r
        });
    }
    let mut open = Vec::with_capacity(args.n);
    let mut failed = 0u64;
    let mut first_error = None;
    while let Some(r) = tasks.join_next().await {
        match r? {
            Ok(s) => open.push(s),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let open_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let during = measure(&args.pids);
    let held = open.len();
    drop(open);
    let closed = Instant::now();
    tokio::time::sleep(settle).await;
    let after = measure(&args.pids);
    let late = Duration::from_secs_f64(args.after_close).saturating_sub(closed.elapsed());
    tokio::time::sleep(late).await;
    let after_late = measure(&args.pids);

    let grow = during["rss_kib"].as_u64().unwrap_or(0) as f64
        - before["rss_kib"].as_u64().unwrap_or(0) as f64;
    let per = if held > 0 { grow / held as f64 } else { 0.0 };
    println!(
        "{}",
        json!({
            "label": args.target.label,
            "kind": "streams",
            "requested": args.n,
            "held": held,
            "failed": failed,
            "first_error": first_error,
            "open_s": (open_s * 100.0).round() / 100.0,
            "before": before,
            "during": during,
            "after_close": after,
            "after_close_late": after_late,
            "after_close_late_s": args.after_close,
            "per_stream_kib": (per * 100.0).round() / 100.0,
        })
    );
    Ok(())
}
