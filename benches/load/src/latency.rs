//! Open-loop load at a fixed rate. Request i is due at `start + i / rate`; a dispatcher thread
//! (nanosleep, not tokio's 1 ms timer) hands it to an idle connection (waiting for one if all are busy) and its latency is measured from
//! the due time, not from when it was actually sent. A contender that stalls therefore pays
//! for every request queued behind the stall, as a real client population would (the
//! coordinated-omission correction of wrk2). Percentiles are exact over every sample.

use crate::net::{self, Endpoint};
use crate::stats;
use crate::Target;
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// Path (and query) to request.
    #[arg(long, default_value = "/health")]
    path: String,
    #[arg(long, default_value = "GET")]
    method: String,
    /// Request body; `{id}` is replaced by a unique request number.
    #[arg(long)]
    body: Option<String>,
    /// Requests per second.
    #[arg(long)]
    rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 8.0)]
    duration: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Connections (each carries one request at a time, HTTP/1.1 keep-alive).
    #[arg(long, default_value_t = 16)]
    conns: usize,
    /// Client worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

struct Shared {
    ep: Endpoint,
    method: http::Method,
    path: String,
    body: Option<String>,
    next_id: AtomicU64,
    measure_from: Instant,
}

struct Outcome {
    latencies_ns: Vec<u64>,
    errors: u64,
    non2xx: u64,
    reconnects: u64,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let ep = Endpoint::new(&args.target)?;
    anyhow::ensure!(
        args.rate > 0.0 && args.conns > 0,
        "rate and conns must be > 0"
    );
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let total = ((args.warmup + args.duration) * args.rate).round() as u64;
    // Connect everything first, so handshakes are not in the measured window.
    let mut conns = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        conns.push(net::handshake(ep.connect().await.context("connect")?).await?);
    }
    let start = Instant::now() + Duration::from_millis(50);
    let shared = Arc::new(Shared {
        ep,
        method: args.method.parse()?,
        path: args.path.clone(),
        body: args.body.clone(),
        next_id: AtomicU64::new(1),
        measure_from: start + Duration::from_secs_f64(args.warmup),
    });
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<usize>();
    let mut work_txs = Vec::new();
    let mut workers = Vec::new();
    for (i, send) in conns.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel::<Instant>();
        work_txs.push(tx);
        idle_tx.send(i)?;
        workers.push(tokio::spawn(worker(
            i,
            send,
            rx,
            idle_tx.clone(),
            shared.clone(),
        )));
    }
    drop(idle_tx);
    // The schedule runs on a thread of its own with nanosleep: tokio's timer has a 1 ms wheel,
    // which would release requests in bursts at millisecond ticks and add up to 1 ms (from the
    // due time) to every latency, for every contender alike.
    let start_std = start.into_std();
    let late_dispatch = tokio::task::spawn_blocking(move || {
        let mut late = 0u64;
        for i in 0..total {
            let due = start_std + period.mul_f64(i as f64);
            let now = std::time::Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let Some(w) = idle_rx.blocking_recv() else {
                break;
            };
            if std::time::Instant::now() > due + Duration::from_millis(1) {
                late += 1;
            }
            let _ = work_txs[w].send(Instant::from_std(due));
        }
        late
    })
    .await?;
    let elapsed = start.elapsed();
    let mut all = Vec::new();
    let (mut errors, mut non2xx, mut reconnects) = (0, 0, 0);
    for w in workers {
        let o = w.await?;
        all.extend(o.latencies_ns);
        errors += o.errors;
        non2xx += o.non2xx;
        reconnects += o.reconnects;
    }
    let mut us: Vec<u64> = all.iter().map(|ns| ns / 1000).collect();
    let mut out = stats::summary(&mut us, "_us");
    let obj = out.as_object_mut().expect("object");
    obj.insert("label".into(), json!(args.target.label));
    obj.insert("kind".into(), json!("latency"));
    obj.insert("rate".into(), json!(args.rate));
    obj.insert("sent".into(), json!(total));
    obj.insert("elapsed_s".into(), json!(elapsed.as_secs_f64()));
    obj.insert("errors".into(), json!(errors));
    obj.insert("non2xx".into(), json!(non2xx));
    obj.insert("reconnects".into(), json!(reconnects));
    obj.insert("late_dispatch".into(), json!(late_dispatch));
    println!("{out}");
    Ok(())
}

async fn worker(
    id: usize,
    mut send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    mut rx: mpsc::UnboundedReceiver<Instant>,
    idle: mpsc::UnboundedSender<usize>,
    sh: Arc<Shared>,
) -> Outcome {
    let mut o = Outcome {
        latencies_ns: Vec::new(),
        errors: 0,
        non2xx: 0,
        reconnects: 0,
    };
    while let Some(due) = rx.recv().await {
        let body = match &sh.body {
            Some(b) => {
                let n = sh.next_id.fetch_add(1, Ordering::Relaxed);
                Bytes::from(b.replace("{id}", &n.to_string()))
            }
            None => Bytes::new(),
        };
        let req = sh
            .ep
            .request(&sh.method, &sh.path)
            .body(Full::new(body))
            .expect("request");
        let ok = async {
            send.ready().await?;
            let resp = send.send_request(req).await?;
            let status = resp.status();
            resp.into_body().collect().await?;
            anyhow::Ok(status)
        }
        .await;
        let done = Instant::now();
        match ok {
            Ok(status) => {
                if due >= sh.measure_from {
                    o.latencies_ns.push((done - due).as_nanos() as u64);
                    if !status.is_success() {
                        o.non2xx += 1;
                    }
                }
            }
            Err(_) => {
                o.errors += 1;
                // A broken connection is replaced; the time this takes counts against the
                // requests that wait for it.
                match async { net::handshake(sh.ep.connect().await?).await }.await {
                    Ok(s) => {
                        send = s;
                        o.reconnects += 1;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
        if idle.send(id).is_err() {
            break;
        }
    }
    o
}
