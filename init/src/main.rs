//! PID 1 of a gateway container until its files arrive.
//!
//! Docker cannot fill a memory-backed (tmpfs) volume before a container starts: the volume is
//! mounted at start and dropped when unused, so whatever is put in earlier is lost. The front
//! door therefore starts the container with this program as the entrypoint, puts the merged
//! catalog and the secrets file into the tmpfs right after start, and writes a marker file last.
//! This program waits for the marker, then replaces itself with the real gateway (`execve`, so
//! the gateway is PID 1 and gets Docker's signals). Secrets never touch the host's disk.
//!
//! Usage: `mcp-frontdoor-init <marker> <timeout-ms> -- <program> [args...]`
//!
//! std only, no dependencies: the front door's build script compiles this file with plain
//! `rustc` into a static binary (see `build.rs` at the repository root).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{exit, Command};
use std::time::{Duration, Instant};

/// Exit code when the files never arrive (EX_SOFTWARE would blame us; EX_TEMPFAIL fits).
const EXIT_TIMEOUT: i32 = 75;
/// Exit code for a malformed command line (EX_USAGE).
const EXIT_USAGE: i32 = 64;
/// Exit code when the gateway cannot be executed (as shells do).
const EXIT_EXEC: i32 = 127;

#[derive(Debug, PartialEq)]
struct Invocation {
    marker: PathBuf,
    timeout: Duration,
    program: OsString,
    args: Vec<OsString>,
}

fn parse(args: Vec<OsString>) -> Result<Invocation, String> {
    let mut it = args.into_iter();
    let marker = it.next().ok_or("missing <marker>")?;
    let timeout = it
        .next()
        .and_then(|t| t.into_string().ok())
        .and_then(|t| t.parse::<u64>().ok())
        .ok_or("<timeout-ms> must be a whole number")?;
    if it.next().as_deref() != Some("--".as_ref()) {
        return Err("expected `--` before the program".into());
    }
    let program = it.next().ok_or("missing <program> after `--`")?;
    Ok(Invocation {
        marker: marker.into(),
        timeout: Duration::from_millis(timeout),
        program,
        args: it.collect(),
    })
}

/// Polls for the marker: 0.2 ms at first (the upload usually lands within a few ms of start),
/// backing off to 5 ms so a slow upload costs no CPU worth mentioning.
fn wait_for(marker: &std::path::Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if marker.exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn main() {
    let inv = match parse(std::env::args_os().skip(1).collect()) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!(
                "mcp-frontdoor-init: {e}\nusage: mcp-frontdoor-init <marker> <timeout-ms> -- <program> [args...]"
            );
            exit(EXIT_USAGE);
        }
    };
    if !wait_for(&inv.marker, inv.timeout) {
        eprintln!(
            "mcp-frontdoor-init: {} did not arrive within {} ms; the front door did not deliver the gateway's files",
            inv.marker.display(),
            inv.timeout.as_millis()
        );
        exit(EXIT_TIMEOUT);
    }
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
    fn parses_marker_timeout_and_program() {
        let inv = parse(os(&["/m/.ready", "1500", "--", "/gw", "--port=1", "--"])).unwrap();
        assert_eq!(inv.marker, PathBuf::from("/m/.ready"));
        assert_eq!(inv.timeout, Duration::from_millis(1500));
        assert_eq!(inv.program, "/gw");
        // A second `--` belongs to the program.
        assert_eq!(inv.args, os(&["--port=1", "--"]));
    }

    #[test]
    fn rejects_malformed_command_lines() {
        assert!(parse(os(&[])).is_err());
        assert!(parse(os(&["/m", "soon", "--", "/gw"])).is_err());
        assert!(parse(os(&["/m", "10", "/gw"])).is_err());
        assert!(parse(os(&["/m", "10", "--"])).is_err());
    }

    #[test]
    fn waits_until_the_marker_appears_or_times_out() {
        let dir = std::env::temp_dir().join(format!("fd-init-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join(".ready");
        let _ = std::fs::remove_file(&marker);
        assert!(!wait_for(&marker, Duration::from_millis(30)));
        let m = marker.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(m, b"").unwrap();
        });
        assert!(wait_for(&marker, Duration::from_secs(5)));
        writer.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
