//! PID 1 of a gateway container until its files arrive.
//!
//! The merged catalog and the secrets file must reach the gateway without touching the host's
//! disk, so they go into tmpfs mounts of the container; but Docker can only fill a tmpfs once
//! the container runs, and gateways such as docker/mcp-gateway read their files once, at start.
//! So the container starts this program instead: it listens on the gateway's port, takes the
//! files from the front door over one connection (authenticated with the gateway's own bearer
//! token from the environment), writes them, closes the listener, and replaces itself with the
//! real gateway (`execve`, so the gateway is PID 1 and gets Docker's signals).
//!
//! Usage: `mcp-frontdoor-init <port> <token-env> <timeout-ms> -- <program> [args...]`
//!
//! The wire format lives in `wire.rs`, which the front door includes too, so both sides share
//! one definition. The answer is `ok` or `error <why>`; the front door closes first, so the
//! port is free for the gateway.
//!
//! std only, no dependencies: the front door's build script compiles this file with plain
//! `rustc` into a static binary (see `build.rs` at the repository root).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{exit, Command};
use std::time::Duration;
use wire::{read_delivery, File};

// Shared with the front door; the encoding half is the front door's, hence the allow.
#[allow(dead_code)]
mod wire;

/// Exit code when the files never arrive (EX_TEMPFAIL).
const EXIT_TIMEOUT: i32 = 75;
/// Exit code for a malformed command line (EX_USAGE).
const EXIT_USAGE: i32 = 64;
/// Exit code when the gateway cannot be executed (as shells do).
const EXIT_EXEC: i32 = 127;
/// How long one connection may take to send its files.
const CONN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq)]
struct Invocation {
    port: u16,
    token_env: String,
    timeout: Duration,
    program: OsString,
    args: Vec<OsString>,
}

fn parse(args: Vec<OsString>) -> Result<Invocation, String> {
    let mut it = args.into_iter();
    let mut text = |what: &str| {
        it.next()
            .and_then(|a| a.into_string().ok())
            .ok_or(format!("missing <{what}>"))
    };
    let port = text("port")?
        .parse::<u16>()
        .map_err(|_| "<port> must be a port number")?;
    let token_env = text("token-env")?;
    let timeout = text("timeout-ms")?
        .parse::<u64>()
        .map_err(|_| "<timeout-ms> must be a whole number")?;
    if it.next().as_deref() != Some("--".as_ref()) {
        return Err("expected `--` before the program".into());
    }
    let program = it.next().ok_or("missing <program> after `--`")?;
    Ok(Invocation {
        port,
        token_env,
        timeout: Duration::from_millis(timeout),
        program,
        args: it.collect(),
    })
}

fn write_files(files: &[File]) -> Result<(), String> {
    for f in files {
        let path = Path::new(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(f.mode)
            .open(path)
            .map_err(|e| format!("{}: {e}", f.path))?;
        out.write_all(&f.contents)
            .map_err(|e| format!("{}: {e}", f.path))?;
    }
    Ok(())
}

/// Serves one connection; `Ok` once the files are written and the sender has hung up.
fn serve(conn: TcpStream, token: &str) -> Result<(), String> {
    conn.set_read_timeout(Some(CONN_TIMEOUT)).ok();
    conn.set_write_timeout(Some(CONN_TIMEOUT)).ok();
    let mut reader = BufReader::new(conn.try_clone().map_err(|e| e.to_string())?);
    let mut answer = &conn;
    match read_delivery(&mut reader, token).and_then(|files| write_files(&files)) {
        Ok(()) => {
            answer.write_all(b"ok\n").map_err(|e| e.to_string())?;
            // Wait for the sender to close: the TIME_WAIT stays on its side, not on the port
            // the gateway is about to bind.
            let _ = reader.read_to_end(&mut Vec::new());
            Ok(())
        }
        Err(e) => {
            let _ = answer.write_all(format!("error {e}\n").as_bytes());
            Err(e)
        }
    }
}

fn main() {
    let inv = match parse(std::env::args_os().skip(1).collect()) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!(
                "mcp-frontdoor-init: {e}\nusage: mcp-frontdoor-init <port> <token-env> <timeout-ms> -- <program> [args...]"
            );
            exit(EXIT_USAGE);
        }
    };
    let token = std::env::var(&inv.token_env).unwrap_or_default();
    if token.is_empty() {
        eprintln!("mcp-frontdoor-init: {} is not set", inv.token_env);
        exit(EXIT_USAGE);
    }
    let timeout = inv.timeout;
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        eprintln!(
            "mcp-frontdoor-init: no files from the front door within {} ms",
            timeout.as_millis()
        );
        exit(EXIT_TIMEOUT);
    });
    let listener = match TcpListener::bind(("0.0.0.0", inv.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mcp-frontdoor-init: cannot listen on {}: {e}", inv.port);
            exit(EXIT_USAGE);
        }
    };
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        match serve(conn, &token) {
            Ok(()) => break,
            Err(e) => eprintln!("mcp-frontdoor-init: delivery refused: {e}"),
        }
    }
    drop(listener);
    // Only returns on failure; PATH is searched like a shell would.
    let err = Command::new(&inv.program).args(&inv.args).exec();
    eprintln!(
        "mcp-frontdoor-init: cannot run {}: {err}",
        inv.program.to_string_lossy()
    );
    exit(EXIT_EXEC);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_port_token_env_timeout_and_program() {
        let inv = parse(os(&["8811", "TOK", "1500", "--", "/gw", "--port=1", "--"])).unwrap();
        assert_eq!((inv.port, inv.token_env.as_str()), (8811, "TOK"));
        assert_eq!(inv.timeout, Duration::from_millis(1500));
        assert_eq!(inv.program, "/gw");
        // A second `--` belongs to the program.
        assert_eq!(inv.args, os(&["--port=1", "--"]));
    }

    #[test]
    fn rejects_malformed_command_lines() {
        assert!(parse(os(&[])).is_err());
        assert!(parse(os(&["port", "T", "1", "--", "/gw"])).is_err());
        assert!(parse(os(&["1", "T", "soon", "--", "/gw"])).is_err());
        assert!(parse(os(&["1", "T", "10", "/gw"])).is_err());
        assert!(parse(os(&["1", "T", "10", "--"])).is_err());
    }

    #[test]
    fn serves_one_connection_then_writes_files() {
        let dir = std::env::temp_dir().join(format!("fd-init-{}", std::process::id()));
        let path = dir.join("sub/s.env");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let p = path.to_str().unwrap().to_string();
        let sender = std::thread::spawn(move || {
            let mut c = TcpStream::connect(addr).unwrap();
            let mut bytes = Vec::new();
            wire::encode_into(&mut bytes, "tk", [(p.as_str(), 0o400, &b"k=v\n"[..])]);
            c.write_all(&bytes).unwrap();
            let mut answer = [0u8; 3];
            c.read_exact(&mut answer).unwrap();
            answer
        });
        let (conn, _) = listener.accept().unwrap();
        serve(conn, "tk").unwrap();
        assert_eq!(&sender.join().unwrap(), b"ok\n");
        assert_eq!(std::fs::read(&path).unwrap(), b"k=v\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o400);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
