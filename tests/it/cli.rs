//! The binary's commands, run as a user would run them.

use crate::support::client::{Client, Proto};
use crate::support::{body_json, tokens};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-frontdoor"));
    // The developer's own FRONTDOOR_* variables must not leak into these runs.
    for (k, _) in std::env::vars() {
        if k.starts_with("FRONTDOOR_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn check_config_names_an_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.yaml");
    std::fs::write(&p, "server:\n  listne: 0.0.0.0:1\n").unwrap();
    let out = bin()
        .args(["check-config", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listne"), "{err}");
}

#[tokio::test]
async fn token_command_mints_what_the_front_door_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("s");
    std::fs::write(&secret, tokens::HS_SECRET).unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "auth: {{ issuer: iss, audience: [aud], hs256_secret_file: {} }}\n",
            secret.display()
        ),
    )
    .unwrap();
    let token = stdout_of(
        bin()
            .args([
                "token", "--sub", "alice", "--role", "admin", "--team", "ml", "--ttl", "10m",
                "--config",
            ])
            .arg(&cfg),
    );
    let config = mcp_frontdoor::config::Config::load(Some(&cfg), Vec::new()).unwrap();
    let auth = mcp_frontdoor::auth::Authenticator::from_config(
        &config.auth,
        config.public_url(),
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    let p = auth.verify(token.trim()).await.unwrap();
    assert_eq!(p.user, "alice");
    assert!(p.admin);
    assert_eq!(p.teams, vec!["ml"]);
    assert!(p.expires_at <= tokens::now() + 600);
}

#[test]
fn certs_generate_writes_a_usable_pair() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["certs", "generate", "--out"])
        .arg(dir.path())
        .args(["--host", "mcp.internal"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let tls = mcp_frontdoor::config::TlsConfig {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        reload_interval: mcp_frontdoor::config::units::HumanDuration::secs(1),
    };
    mcp_frontdoor::server::tls::ReloadingCert::load(&tls).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&tls.key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "private key readable by others");
}

/// Runs a CLI command that must succeed (its stderr shown when it does not); its stdout.
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command as a developer runs it: in `cwd`, with `state` as their XDG state directory
/// (where `--dev` keeps its data when none is named).
fn dev_cmd(state: &std::path::Path, cwd: &std::path::Path) -> Command {
    let mut c = bin();
    c.current_dir(cwd)
        .env("XDG_STATE_HOME", state)
        .env("HOME", state);
    c
}

/// Starts `serve --dev` in `cwd`, returns the child and the token it printed.
fn start_dev(
    state: &std::path::Path,
    cwd: &std::path::Path,
    port: u16,
    mport: u16,
) -> (std::process::Child, String) {
    let data = state.join("mcp-frontdoor");
    let mut child = dev_cmd(state, cwd)
        .args(["serve", "--dev"])
        .env("FRONTDOOR_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("FRONTDOOR_METRICS__LISTEN", format!("127.0.0.1:{mport}"))
        // The default runtime is Docker; a dead socket keeps this test off the real engine.
        .env(
            "FRONTDOOR_GATEWAYS__DOCKER__HOST",
            format!("unix://{}/no-docker.sock", state.display()),
        )
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(state.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = None;
    let mut saw_snippet = false;
    let mut saw_data = false;
    while let Some(Ok(line)) = lines.next() {
        if line.starts_with("Data:") {
            saw_data = line.ends_with(&data.display().to_string());
        }
        if line.starts_with("Token") {
            token = lines.next().and_then(Result::ok);
        }
        if line.contains("\"mcpServers\"") {
            saw_snippet = true;
        }
        if line.starts_with("More tokens") {
            break;
        }
    }
    // Keep draining so the child never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    assert!(saw_snippet, "client config snippet printed");
    assert!(saw_data, "the data dir printed: {}", data.display());
    (child, token.expect("dev token printed"))
}

#[tokio::test]
async fn serve_dev_prints_a_working_token_and_keeps_its_keys_across_restarts() {
    let state = tempfile::tempdir().unwrap();
    let (here, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port, mport) = (free_port(), free_port());
    let (child, token) = start_dev(state.path(), here.path(), port, mport);
    let data = state.path().join("mcp-frontdoor");
    let ca = std::fs::read(data.join("dev/tls/cert.pem")).unwrap();
    let c = Client::new(&format!("https://localhost:{port}"), Some(&ca), Proto::H2);
    let mut last = None;
    for _ in 0..100 {
        match c
            .try_send(
                c.req("GET", "/healthz")
                    .body(crate::support::client::empty())
                    .unwrap(),
            )
            .await
        {
            Ok(r) => {
                last = Some(Ok(r.status()));
                break;
            }
            Err(e) => last = Some(Err(format!("{e:?}"))),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(state.path().join("stderr.log")).unwrap_or_default();
    assert!(
        matches!(last, Some(Ok(s)) if s == 200),
        "dev server came up: {last:?}\n{log}"
    );
    // `token --dev` in another directory mints with the running server's secret.
    let minted =
        stdout_of(dev_cmd(state.path(), elsewhere.path()).args(["token", "--dev", "--sub", "bob"]));
    for token in [token.as_str(), minted.trim()] {
        let authed = c
            .send(
                c.req("POST", "/mcp")
                    .header("authorization", format!("Bearer {token}")),
            )
            .await;
        // Authenticated: the request got as far as starting a gateway, whose image cannot be had.
        assert_eq!(authed.status(), 503);
        let body = body_json(authed).await;
        assert_eq!(
            crate::support::reason(&body),
            "gateway_unavailable",
            "{body}"
        );
    }
    assert!(
        !elsewhere.path().join("data").exists(),
        "nothing made where the command ran"
    );
    // The other dev commands find the same data from anywhere too.
    let rotate = dev_cmd(state.path(), elsewhere.path())
        .args(["secrets", "rotate", "--dev"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&rotate.stdout).starts_with("rotated: "),
        "{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    let verify = dev_cmd(state.path(), elsewhere.path())
        .args(["audit", "verify", "--dev"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "the rotation's audit line is in the server's log: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let t_kill = std::time::Instant::now();
    let status = terminate(child).await;
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    // The client's idle HTTP/2 connection answers the GOAWAY, so draining is quick.
    assert!(
        t_kill.elapsed() < Duration::from_secs(5),
        "drain took {:?}",
        t_kill.elapsed()
    );

    let (child, _) = start_dev(state.path(), here.path(), port, mport);
    let c = Client::new(&format!("https://localhost:{port}"), Some(&ca), Proto::H1);
    let mut status = None;
    for _ in 0..100 {
        let req = c
            .req("POST", "/mcp")
            .header("authorization", format!("Bearer {token}"));
        if let Ok(r) = c
            .try_send(req.body(crate::support::client::empty()).unwrap())
            .await
        {
            status = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::read_to_string(state.path().join("stderr.log")).unwrap_or_default();
    assert_eq!(
        status,
        Some(http::StatusCode::SERVICE_UNAVAILABLE),
        "the first token still verifies\n{log}"
    );
    terminate(child).await;
}

/// SIGTERM, then wait without blocking the runtime (our clients' connections live on it).
async fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap()
}

#[test]
fn users_claim_confirms_the_owner_of_an_old_directory_the_server_refuses() {
    // A plain id that has the shape of an old hashed slug, with a directory from before owner
    // markers: the server refuses it (another id may have made it); the admin confirms it.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let user = "user-2024110512";
    let user_dir = data.join("users").join(user);
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(user_dir.join("overrides.yaml"), "fetch: false\n").unwrap();
    let key = dir.path().join("master.key");
    std::fs::write(&key, crate::support::frontdoor::MASTER_KEY).unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {}\nsecrets: {{ master_key_file: {} }}\n",
            data.display(),
            key.display()
        ),
    )
    .unwrap();
    let claim = |id: &str| {
        bin()
            .args(["users", "claim", "--user", id, "--config"])
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let merge = bin()
        .args(["catalog", "merge", "--user", user, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!merge.status.success(), "read-only merge refuses it too");
    assert!(String::from_utf8_lossy(&merge.stderr).contains("users claim"));

    let out = claim(user);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("users/{user}: marked for this id")
    );
    let marker = std::fs::read_to_string(user_dir.join("owner")).unwrap();
    assert_eq!(marker, mcp_frontdoor::owners::marker_of(user));
    assert!(user_dir.join("overrides.yaml").is_file(), "data kept");
    let again = claim(user);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already claimed"));

    // A marker for another id is never overridden by the command.
    std::fs::write(
        user_dir.join("owner"),
        mcp_frontdoor::owners::marker_of("x"),
    )
    .unwrap();
    let out = claim(user);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to another user id"));
}

#[test]
fn dev_commands_without_a_dev_server_refuse_and_make_nothing() {
    let state = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let expected = state.path().join("mcp-frontdoor/dev");
    for args in [
        &["token", "--dev", "--sub", "alice"][..],
        &["secrets", "rotate", "--dev"][..],
    ] {
        let out = dev_cmd(state.path(), cwd.path())
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} refused");
        assert!(out.stdout.is_empty(), "{args:?} printed nothing");
        assert!(
            err.contains(&expected.display().to_string()) && err.contains("serve --dev"),
            "{args:?} names where it looked and what makes the key: {err}"
        );
    }
    assert!(
        !state.path().join("mcp-frontdoor").exists(),
        "no secret made"
    );
    assert!(std::fs::read_dir(cwd.path()).unwrap().next().is_none());
    // --data-dir names another place, relative to where the command runs.
    let out = dev_cmd(state.path(), cwd.path())
        .args(["token", "--dev", "--data-dir", "mine", "--sub", "alice"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let mine = cwd.path().join("mine/dev/jwt.secret");
    assert!(err.contains(&mine.display().to_string()), "{err}");
}

#[test]
fn check_config_warns_about_placeholder_and_hand_made_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {}\nauth: {{ issuer: i, audience: [a], hs256_secret_env: FRONTDOOR_JWT_SECRET }}\n\
             secrets: {{ master_key_env: FRONTDOOR_MASTER_KEY }}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let run = |jwt: &str, master: &str| {
        bin()
            .args(["check-config", "--config"])
            .arg(&cfg)
            .env("FRONTDOOR_JWT_SECRET", jwt)
            .env("FRONTDOOR_MASTER_KEY", master)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    // What .env.example once held, and a master key typed by hand (32 zero bytes).
    let out = run(
        "change-me-to-a-long-random-string-of-at-least-32-bytes",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "warnings, not errors: {err}");
    assert!(
        err.contains("HS256 secret looks like a placeholder"),
        "{err}"
    );
    assert!(err.contains("master key has too little variety"), "{err}");
    assert!(
        !err.contains("AAAAAAAA"),
        "the key itself is never logged: {err}"
    );
    let out = run(
        "Vb3kq9Zx7LmN2pR5tW8yB1cF4hJ6gD0sQeUaXiOo",
        "q3kB7xZ9vL2mN5pR8tW1yC4fH6jG0sDeUaXiOoPlKzM=",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("WARN"),
        "random-looking secrets pass quietly: {err}"
    );
}

#[test]
fn an_unreadable_key_is_named_with_its_mode_owner_and_the_command_to_run() {
    use std::os::unix::fs::PermissionsExt;
    // What the compose deployment meets: key.pem 0600, owned by another uid than the one the
    // front door runs as. As root (CI), run the command as nobody; elsewhere take the read bit.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let certs = dir.path().join("certs");
    let out = bin()
        .args(["certs", "generate", "--out"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (cert, key) = (certs.join("cert.pem"), certs.join("key.pem"));
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {{ tls: {{ cert: {}, key: {} }} }}\n\
             auth: {{ issuer: i, audience: [a], hs256_secret_env: FRONTDOOR_JWT_SECRET }}\n\
             secrets: {{ master_key_env: FRONTDOOR_MASTER_KEY }}\n",
            cert.display(),
            key.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_mcp-frontdoor"));
        c
    } else {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o000)).unwrap();
        bin()
    };
    let out = cmd
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env(
            "FRONTDOOR_MASTER_KEY",
            crate::support::frontdoor::MASTER_KEY,
        )
        .env("FRONTDOOR_JWT_SECRET", tokens::HS_SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let (mode, me) = if root {
        (
            "mode 0600 and belongs to uid 0, gid 0",
            "runs as uid 65534, gid 65534",
        )
    } else {
        ("mode 0000", "runs as uid")
    };
    assert!(err.contains(&format!("TLS key {}", key.display())), "{err}");
    assert!(err.contains(mode) && err.contains(me), "{err}");
    assert!(err.contains("chown "), "says what to run: {err}");
}
