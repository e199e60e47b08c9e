//! SSE timing over fresh connections to `/events`: connect (TCP + TLS) time, time from the
//! request to the first complete event, and for every later event the deviation of its
//! arrival gap from the upstream's interval, plus the one-way delay from the upstream's send
//! stamp (same machine, same clock) to its arrival here.

use crate::net::{self, Endpoint};
use crate::stats;
use crate::Target;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Streams, one after another, each on a fresh connection.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Events per stream.
    #[arg(long, default_value_t = 100)]
    events: u64,
    #[arg(long, default_value_t = 10)]
    interval_ms: u64,
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

#[derive(Default)]
struct Acc {
    connect_us: Vec<u64>,
    first_event_us: Vec<u64>,
    gap_dev_us: Vec<u64>,
    upstream_gap_dev_us: Vec<u64>,
    delay_us: Vec<u64>,
    coalesced: u64,
    events: u64,
    missing: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let ep = Endpoint::new(&args.target)?;
    let interval = Duration::from_millis(args.interval_ms);
    let mut acc = Acc::default();
    for _ in 0..args.samples {
        one(&ep, &args, interval, &mut acc).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut out = json!({
        "label": args.target.label,
        "kind": "sse",
        "samples": args.samples,
        "events": acc.events,
        "missing": acc.missing,
        "coalesced": acc.coalesced,
        "interval_ms": args.interval_ms,
    });
    let o = out.as_object_mut().expect("object");
    o.insert("connect".into(), stats::summary(&mut acc.connect_us, "_us"));
    o.insert(
        "first_event".into(),
        stats::summary(&mut acc.first_event_us, "_us"),
    );
    o.insert("gap_dev".into(), stats::summary(&mut acc.gap_dev_us, "_us"));
    o.insert(
        "upstream_gap_dev".into(),
        stats::summary(&mut acc.upstream_gap_dev_us, "_us"),
    );
    o.insert("delay".into(), stats::summary(&mut acc.delay_us, "_us"));
    println!("{out}");
    Ok(())
}

async fn one(ep: &Endpoint, args: &Args, interval: Duration, acc: &mut Acc) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let stream = ep.connect().await.context("connect")?;
    let mut send = net::handshake(stream).await?;
    acc.connect_us.push(t0.elapsed().as_micros() as u64);
    let path = format!("/events?n={}&interval_ms={}", args.events, args.interval_ms);
    let req = ep
        .request(&http::Method::GET, &path)
        .header(http::header::ACCEPT, "text/event-stream")
        .body(Full::new(Bytes::new()))?;
    send.ready().await?;
    let sent = Instant::now();
    let resp = send.send_request(req).await?;
    anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
    let mut body = resp.into_body();
    let mut buf = Vec::<u8>::new();
    // (arrival, upstream stamp ns, sequence number)
    let mut got: Vec<(Instant, u128, u64)> = Vec::new();
    let mut delays = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        let now_unix = unix_ns();
        buf.extend_from_slice(&data);
        let mut in_this_read = 0;
        while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
            let ev: Vec<u8> = buf.drain(..pos + 2).collect();
            let text = String::from_utf8_lossy(&ev);
            let Some(line) = text.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            let mut it = line.split_whitespace();
            let seq: u64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
            let stamp: u128 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            in_this_read += 1;
            if in_this_read > 1 {
                acc.coalesced += 1;
            }
            delays.push(now_unix.saturating_sub(stamp) as u64 / 1000);
            got.push((now, stamp, seq));
        }
    }
    let Some(first) = got.first() else {
        anyhow::bail!("no event received");
    };
    acc.first_event_us
        .push(first.0.duration_since(sent).as_micros() as u64);
    acc.events += got.len() as u64;
    acc.missing += args.events.saturating_sub(got.len() as u64);
    let iv = interval.as_nanos() as i128;
    for w in got.windows(2) {
        let gap = w[1].0.duration_since(w[0].0).as_nanos() as i128;
        acc.gap_dev_us
            .push(((gap - iv).unsigned_abs() / 1000) as u64);
        let up_gap = w[1].1 as i128 - w[0].1 as i128;
        acc.upstream_gap_dev_us
            .push(((up_gap - iv).unsigned_abs() / 1000) as u64);
    }
    acc.delay_us.extend(delays);
    Ok(())
}
