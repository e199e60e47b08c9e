//! fd-load: the load harness behind `scripts/bench.sh`.
//!
//! - `upstream`: a minimal SSE server (hyper) that every contender proxies to: `/events` sends
//!   events on a fixed 10 ms schedule, each stamped with its send time; `/idle` sends one
//!   comment and then holds the stream open; `/health` is a tiny 200.
//! - `latency`: open-loop load at a fixed rate; latency is measured from each request's
//!   intended send time, so queueing behind a slow response counts (no coordinated omission).
//! - `sse`: time to first event and the spacing of events sent 10 ms apart.
//! - `streams`: holds N idle event streams open and reports the RSS growth of given pids.
//! - `proxy`: a bare hyper reverse proxy, the floor of the front door's HTTP stack.
//! - `lean`: a prototype h1 proxy that holds no buffer while it waits (issue 15's question).
//!
//! Every command prints one JSON object on stdout.

mod latency;
mod lean;
mod net;
mod proxy;
mod sse;
mod stats;
mod streams;
mod upstream;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "fd-load", about = "Load harness for mcp-frontdoor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where to send requests.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no path).
    #[arg(long)]
    pub base: String,
    /// PEM certificate to trust for https (the self-signed bench certificate).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// TLS server name.
    #[arg(long, default_value = "localhost")]
    pub sni: String,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Free-form label echoed in the output.
    #[arg(long, default_value = "")]
    pub label: String,
}

/// Where a reference proxy listens and forwards to.
#[derive(clap::Args)]
struct ProxyArgs {
    #[arg(long)]
    port: u16,
    /// `host:port` of the upstream.
    #[arg(long)]
    upstream: String,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the bench SSE upstream on 127.0.0.1.
    Upstream {
        #[arg(long)]
        port: u16,
        /// Tokio worker threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
    /// A bare hyper 1 reverse proxy on 127.0.0.1 (reference point, not a product).
    Proxy(ProxyArgs),
    /// A lean h1 reverse proxy holding no buffer while it waits (measuring prototype).
    Lean(ProxyArgs),
    /// Open-loop fixed-rate load; prints exact latency percentiles.
    Latency(latency::Args),
    /// Time to first event and event spacing over fresh connections.
    Sse(sse::Args),
    /// Hold N idle event streams open and measure the RSS of the given processes.
    Streams(streams::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Upstream { port, threads } => runtime(threads)?.block_on(upstream::serve(port)),
        Command::Proxy(a) => runtime(a.threads)?.block_on(proxy::serve(a.port, a.upstream)),
        Command::Lean(a) => runtime(a.threads)?.block_on(lean::serve(a.port, a.upstream)),
        Command::Latency(args) => runtime(args.threads)?.block_on(latency::run(args)),
        Command::Sse(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(sse::run(args)),
        Command::Streams(args) => runtime(2)?.block_on(streams::run(args)),
    }
}

/// A multi-thread runtime of `threads` workers.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
}
