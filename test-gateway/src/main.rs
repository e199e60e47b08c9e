//! mcp-test-gateway: a small MCP server that behaves like docker/mcp-gateway at its edges
//! (flags, `/health`, bearer auth, Origin check, `/mcp` and `/sse`), for mcp-frontdoor's
//! Docker lifecycle and end-to-end tests. See test-gateway/README.md.
//!
//! `mcp-test-gateway stdio ...` is a second program in the same binary: a stdio MCP server for
//! the real docker/mcp-gateway to run (see `stdio.rs`).

/// Logs one line to stderr. Never pass secret values.
macro_rules! log {
    ($($arg:tt)*) => {{
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "{}.{:03} mcp-test-gateway: {}",
            now.as_secs(),
            now.subsec_millis(),
            format_args!($($arg)*)
        );
    }};
}
pub(crate) use log;

mod args;
mod config;
mod http;
mod sse;
mod stdio;
mod tools;

use std::process::ExitCode;
use std::sync::Arc;

use args::{Args, ArgsError};

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("stdio") {
        argv.next();
        return stdio_main(argv);
    }
    let args = match Args::parse(argv) {
        Ok(args) => args,
        Err(ArgsError::Help) => {
            println!("{}", ArgsError::Help);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mcp-test-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = match config::load(&args, &mut |w| log!("warning: {w}")) {
        Ok(loaded) => loaded,
        Err(e) => {
            log!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, loaded)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn stdio_main(argv: impl Iterator<Item = String>) -> ExitCode {
    let args = match stdio::StdioArgs::parse(argv) {
        Ok(args) => args,
        Err(None) => {
            // stdout is the protocol channel in this mode; help goes to stderr.
            eprintln!("{}", stdio::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(Some(e)) => {
            eprintln!("mcp-test-gateway stdio: {e}\n{}", stdio::USAGE);
            return ExitCode::from(2);
        }
    };
    // One session on one pipe: a single thread is plenty and starts faster.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(stdio::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, loaded: config::Loaded) -> Result<(), String> {
    let token = auth_token(&args);
    if !args.ignored.is_empty() {
        log!(
            "ignoring docker/mcp-gateway flags: {}",
            args.ignored.join(" ")
        );
    }
    for name in &loaded.missing {
        log!("warning: server {name:?} is not in any catalog; not enabled");
    }
    log!(
        "enabled servers: {:?}; {} secret(s) named: {:?}",
        loaded.servers,
        loaded.secret_names.len(),
        loaded.secret_names
    );

    let identity = Arc::new(tools::Identity::current());
    let gateway = tools::Gateway::new(Arc::new(loaded), identity.clone());
    let router = http::router(http::Options {
        gateway,
        token,
        transport: args.transport,
        health_delay: std::time::Duration::from_millis(args.health_delay_ms),
    });

    let addr = args.listen_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("binding {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    log!(
        "listening on {local} (transport {}; /mcp streamable HTTP, /sse legacy SSE; pid {}, host {}, instance {})",
        args.transport,
        identity.pid,
        identity.hostname,
        identity.instance
    );

    tokio::spawn(async {
        shutdown_signal().await;
        // Open SSE streams would hold a graceful shutdown; a test gateway just stops.
        log!("shutting down");
        std::process::exit(0);
    });
    // As docker/mcp-gateway (Go) does: rmcp writes an event's priming line and its result as
    // two small writes, and Nagle would hold the second for a delayed ACK (~40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .await
        .map_err(|e| format!("serving: {e}"))
}

/// `MCP_GATEWAY_AUTH_TOKEN`, or a generated one (logged, as docker/mcp-gateway does), or none
/// with `--allow-unauthenticated`.
fn auth_token(args: &Args) -> Option<String> {
    let env = std::env::var("MCP_GATEWAY_AUTH_TOKEN").unwrap_or_default();
    if args.allow_unauthenticated {
        if !env.is_empty() {
            log!("warning: ignoring MCP_GATEWAY_AUTH_TOKEN because --allow-unauthenticated is set");
        }
        log!("authentication disabled by explicit configuration");
        return None;
    }
    if !env.is_empty() {
        log!("use Bearer token from MCP_GATEWAY_AUTH_TOKEN environment variable");
        return Some(env);
    }
    let generated = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    log!("MCP_GATEWAY_AUTH_TOKEN not set; use Bearer token: {generated}");
    Some(generated)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    log!("warning: no SIGTERM handler: {e}");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
