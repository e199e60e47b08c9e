//! Runs the real binary in `stdio` mode, as docker/mcp-gateway runs a catalog server
//! (`docker run --rm -i`: JSON-RPC lines on stdin/stdout, secrets as environment variables),
//! and drives one MCP session through its pipes.
// Test code may unwrap (the lint's allow-*-in-tests in .clippy.toml covers #[test] functions
// and #[cfg(test)] modules, not the helpers of an integration test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Trailing whitespace on purpose: the hash must cover the exact bytes the server was given.
const SECRET: &str = "stdio-s3cr3t-VALUE never-logged ";
const OTHER: &str = "a-second-secret-value";
const PROTOCOL: &str = "2025-06-18";

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: std::thread::JoinHandle<String>,
    next_id: u64,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-test-gateway"));
        cmd.arg("stdio")
            .args(args)
            .env_remove("TG_SECRET")
            .env_remove("TG_OTHER")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mcp-test-gateway stdio");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Server {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            next_id: 1,
        }
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next stdout line; every one must be a JSON-RPC message (stdout is the protocol).
    fn recv(&self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line on stdout within 10 s");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("non-JSON on stdout {line:?}: {e}"))
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let reply = self.recv();
        assert_eq!(reply["id"], json!(id), "{reply}");
        reply
    }

    fn initialize(&mut self) -> Value {
        let reply = self.request(
            "initialize",
            json!({"protocolVersion": PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "stdio-test", "version": "0"}}),
        );
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        reply
    }

    fn call(&mut self, name: &str, args: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": args}))
    }

    /// Closes stdin (what `docker run -i` does when the gateway lets go) and returns the exit
    /// status and everything the server wrote to stderr.
    fn finish(mut self) -> (std::process::ExitStatus, String) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the stdio server did not exit within 10 s of stdin closing");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, self.stderr.join().unwrap())
    }
}

fn text(reply: &Value) -> String {
    let result = &reply["result"];
    assert_ne!(result["isError"], json!(true), "tool error: {reply}");
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {reply}"))
        .to_owned()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn one_session_over_stdio() {
    let mut s = Server::start(
        &["--secret-env=TG_SECRET,TG_OTHER"],
        &[("TG_SECRET", SECRET), ("TG_OTHER", OTHER)],
    );
    let init = s.initialize();
    assert_eq!(
        init["result"]["serverInfo"]["name"], "mcp-test-stdio",
        "{init}"
    );
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );

    let list = s.request("tools/list", json!({}));
    let mut names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["echo", "secret_hash", "whoami"]);

    assert_eq!(
        text(&s.call("echo", json!({"text": "over stdio"}))),
        "over stdio"
    );

    let hash: Value =
        serde_json::from_str(&text(&s.call("secret_hash", json!({"env": "TG_SECRET"})))).unwrap();
    assert_eq!(hash["env"], "TG_SECRET");
    assert_eq!(hash["set"], true);
    assert_eq!(
        hash["sha256"],
        sha256_hex(SECRET),
        "the exact bytes, whitespace included"
    );
    assert_ne!(hash["sha256"], sha256_hex(SECRET.trim_end()));
    let other: Value =
        serde_json::from_str(&text(&s.call("secret_hash", json!({"env": "TG_OTHER"})))).unwrap();
    assert_eq!(other["sha256"], sha256_hex(OTHER));

    let who: Value = serde_json::from_str(&text(&s.call("whoami", json!({})))).unwrap();
    assert_eq!(who["pid"], json!(s.child.id()));
    assert!(!who["hostname"].as_str().unwrap().is_empty());

    let (status, stderr) = s.finish();
    assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
    assert!(stderr.contains("TG_SECRET"), "names are logged: {stderr}");
    for fragment in [SECRET.trim(), &SECRET[..8], OTHER] {
        assert!(
            !stderr.contains(fragment),
            "a secret reached stderr:\n{stderr}"
        );
    }
}

#[test]
fn secret_hash_reads_only_the_listed_variables() {
    let mut s = Server::start(&["--secret-env", "TG_SECRET"], &[("TG_OTHER", OTHER)]);
    s.initialize();

    // Only one name listed: it is the default, and here it is not set.
    let unset: Value = serde_json::from_str(&text(&s.call("secret_hash", json!({})))).unwrap();
    assert_eq!(unset, json!({"env": "TG_SECRET", "set": false}));

    // A set variable the operator did not list stays unreadable, as does the rest of the
    // environment.
    for env in ["TG_OTHER", "PATH"] {
        let reply = s.call("secret_hash", json!({ "env": env }));
        let err = reply["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{env}: expected an error, got {reply}"));
        assert!(err.contains("--secret-env"), "{err}");
        assert!(!reply.to_string().contains(OTHER));
    }

    // The session still works after refused calls.
    assert_eq!(
        text(&s.call("echo", json!({"text": "still here"}))),
        "still here"
    );
    let (status, _) = s.finish();
    assert!(status.success());
}

#[test]
fn without_secret_env_there_is_nothing_to_hash() {
    let mut s = Server::start(&[], &[("TG_SECRET", SECRET)]);
    s.initialize();
    let reply = s.call("secret_hash", json!({"env": "TG_SECRET"}));
    assert!(reply["error"].is_object(), "{reply}");
    assert!(!reply.to_string().contains(SECRET.trim()));
    let (status, _) = s.finish();
    assert!(status.success());
}

#[test]
fn bad_arguments_exit_2_with_nothing_on_stdout() {
    for args in [
        &["--port=1"][..],
        &["--secret-env"],
        &["--secret-env=not-a-name"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_mcp-test-gateway"))
            .arg("stdio")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: stdout is the protocol channel"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    }
    let help = Command::new(env!("CARGO_BIN_EXE_mcp-test-gateway"))
        .args(["stdio", "--help"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(help.stdout.is_empty());
    assert!(String::from_utf8_lossy(&help.stderr).contains("secret_hash"));
}

#[test]
fn start_delay_and_linger() {
    // A slow starter answers nothing during its delay (the real gateway then waits: this is
    // how the e2e suite makes a gateway that never gets ready), then works normally.
    let mut s = Server::start(&["--start-delay-ms=600", "--linger-ms=1500"], &[]);
    let t = Instant::now();
    s.initialize();
    assert!(
        t.elapsed() >= Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );

    // A lingerer outlives its client: still running after stdin closed, then exits 0.
    drop(s.stdin.take());
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "exited before its linger"
    );
    let t = Instant::now();
    let (status, stderr) = s.finish();
    assert!(status.success(), "{stderr}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(stderr.contains("lingering 1500 ms"), "{stderr}");
}
