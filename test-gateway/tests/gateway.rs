//! Runs the real mcp-test-gateway binary on 127.0.0.1 with an OS-picked port (`--port 0`) and
//! drives it with MCP JSON-RPC over plain HTTP/1.1: streamable HTTP (`/mcp`), the legacy SSE
//! transport (`/sse` + `/message`), auth, Origin, `/health`.
// Test code may unwrap (the lint's allow-*-in-tests in .clippy.toml covers #[test] functions
// and #[cfg(test)] modules, not the helpers of an integration test crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::{json, Value};

const TOKEN: &str = "test-token-0123456789";
const SECRET_VALUE: &str = "s3cr3t-VALUE-never-logged";
const PROTOCOL: &str = "2025-06-18";

const CATALOG: &str = r#"
name: test
displayName: Test catalog
registry:
  github:
    image: mcp/github@sha256:0000000000000000000000000000000000000000000000000000000000000000
    title: GitHub
    secrets:
      - name: github.token
        env: GITHUB_TOKEN
  fetch:
    image: mcp/fetch
    someUnknownField: {nested: [1, 2]}
  unused:
    image: mcp/unused
"#;

// ---------------------------------------------------------------------------------------------
// The gateway process

struct Gateway {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn start(extra: &[&str]) -> Gateway {
        Self::try_start(extra, Some(TOKEN)).unwrap_or_else(|log| panic!("gateway failed:\n{log}"))
    }

    /// Starts the binary; `Err(log)` when it exits before listening.
    fn try_start(extra: &[&str], token: Option<&str>) -> Result<Gateway, String> {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.yaml");
        std::fs::write(&catalog, CATALOG).unwrap();
        let secrets = dir.path().join("secrets.env");
        std::fs::write(
            &secrets,
            format!("# comment\ngithub.token={SECRET_VALUE}\nfetch.api_key={SECRET_VALUE}-2\n"),
        )
        .unwrap();

        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-test-gateway"));
        cmd.args([
            "--transport=streaming",
            "--host",
            "127.0.0.1",
            "--port=0",
            &format!("--catalog={}", catalog.display()),
            "--servers=github,fetch,not-in-catalog",
            "--secrets",
            &secrets.display().to_string(),
            "--verify-signatures=false",
            "--block-network",
        ])
        .args(extra)
        .env_remove("MCP_GATEWAY_AUTH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if let Some(token) = token {
            cmd.env("MCP_GATEWAY_AUTH_TOKEN", token);
        }
        let mut child = cmd.spawn().expect("spawn mcp-test-gateway");

        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap().to_owned();
                    let _ = tx.send(addr);
                }
                let mut log = log2.lock();
                log.push_str(&line);
                log.push('\n');
            }
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Ok(Gateway {
                child,
                addr: addr.parse().unwrap(),
                log,
                _dir: dir,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                let log = log.lock().clone();
                Err(log)
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().clone()
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

async fn send(
    gw: &Gateway,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", gw.host());
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map(Bytes::from).unwrap_or_default();
    let req = req.body(Full::new(body)).unwrap();
    tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("response headers in time")
        .unwrap()
}

async fn body_text(resp: Response<Incoming>) -> String {
    let bytes = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("body in time")
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[derive(Debug, Clone)]
struct SseEvent {
    event: String,
    data: String,
    at: Instant,
}

/// Reads `text/event-stream` bodies frame by frame, stamping each event on arrival.
struct SseReader {
    body: Incoming,
    buf: String,
}

impl SseReader {
    fn new(resp: Response<Incoming>) -> Self {
        SseReader {
            body: resp.into_body(),
            buf: String::new(),
        }
    }

    /// The next event with data (comments and empty priming events skipped); `None` at the end.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim_start().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                let data = data.join("\n");
                if !data.is_empty() {
                    return Some(SseEvent {
                        event,
                        data,
                        at: Instant::now(),
                    });
                }
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("SSE frame in time")?
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(
                    &String::from_utf8(data.to_vec())
                        .unwrap()
                        .replace("\r\n", "\n"),
                );
            }
        }
    }

    async fn next_json(&mut self) -> Option<(Value, Instant)> {
        let ev = self.next().await?;
        assert_eq!(ev.event, "message", "unexpected event {ev:?}");
        Some((serde_json::from_str(&ev.data).unwrap(), ev.at))
    }
}

fn auth() -> (&'static str, String) {
    ("authorization", format!("Bearer {TOKEN}"))
}

/// One streamable-HTTP POST to `/mcp`.
async fn mcp_post(
    gw: &Gateway,
    session: Option<&str>,
    extra: &[(&str, &str)],
    msg: Value,
) -> Response<Incoming> {
    let (ak, av) = auth();
    let mut headers = vec![
        (ak, av.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", PROTOCOL),
    ];
    if let Some(s) = session {
        headers.push(("mcp-session-id", s));
    }
    headers.extend_from_slice(extra);
    send(gw, Method::POST, "/mcp", &headers, Some(msg.to_string())).await
}

/// All JSON-RPC messages of one streamable-HTTP response, with arrival times.
async fn mcp_messages(resp: Response<Incoming>) -> Vec<(Value, Instant)> {
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    if ct.starts_with("application/json") {
        let text = body_text(resp).await;
        return vec![(serde_json::from_str(&text).unwrap(), Instant::now())];
    }
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut reader = SseReader::new(resp);
    let mut out = Vec::new();
    while let Some(m) = reader.next_json().await {
        let done = m.0.get("id").is_some() && m.0.get("method").is_none();
        out.push(m);
        if done {
            break;
        }
    }
    out
}

fn initialize(id: u64, version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": version,
        "capabilities": {},
        "clientInfo": {"name": "gateway-test", "version": "0"}
    }})
}

fn call(id: u64, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": args}})
}

fn tool_text(result: &Value) -> String {
    assert_eq!(result["result"]["isError"], json!(false), "{result}");
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {result}"))
        .to_owned()
}

/// Initializes a streamable-HTTP session; returns its id.
async fn open_session(gw: &Gateway, extra: &[(&str, &str)]) -> String {
    let resp = mcp_post(gw, None, extra, initialize(1, PROTOCOL)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let session = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let msgs = mcp_messages(resp).await;
    let result = &msgs.last().unwrap().0["result"];
    assert_eq!(result["serverInfo"]["name"], "mcp-test-gateway");
    assert_eq!(result["protocolVersion"], PROTOCOL);
    let resp = mcp_post(
        gw,
        Some(&session),
        &[],
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    session
}

async fn call_tool(gw: &Gateway, session: &str, id: u64, name: &str, args: Value) -> String {
    let msgs = mcp_messages(mcp_post(gw, Some(session), &[], call(id, name, args)).await).await;
    let last = &msgs.last().unwrap().0;
    assert_eq!(last["id"], json!(id));
    tool_text(last)
}

const TOOLS: [&str; 6] = [
    "connect_tcp",
    "echo",
    "list_secret_names",
    "list_servers",
    "stream_progress",
    "whoami",
];

/// Progress notifications arrived in order, `count` of them, about `interval` apart, then the
/// result.
fn check_progress(msgs: &[(Value, Instant)], id: u64, token: &Value, count: u64, interval: u64) {
    let progress: Vec<&(Value, Instant)> = msgs
        .iter()
        .filter(|(m, _)| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len() as u64, count, "{msgs:?}");
    for (i, (m, _)) in progress.iter().enumerate() {
        assert_eq!(&m["params"]["progressToken"], token);
        assert_eq!(m["params"]["progress"], json!((i + 1) as f64));
        assert_eq!(m["params"]["total"], json!(count as f64));
    }
    for pair in progress.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        assert!(
            gap >= Duration::from_millis(interval * 2 / 3)
                && gap <= Duration::from_millis(interval * 5),
            "progress events should arrive ~{interval} ms apart as they are sent, got {gap:?}"
        );
    }
    let (last, at) = msgs.last().unwrap();
    assert_eq!(last["id"], json!(id));
    assert!(*at >= progress.last().unwrap().1);
    assert_eq!(
        tool_text(last),
        format!("sent {count} progress notifications")
    );
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn streamable_http_tools_end_to_end() {
    let gw = Gateway::start(&[]);
    // The front door connects by container IP: rmcp's Host check must not reject that.
    let session = open_session(&gw, &[("host", "10.213.0.2:8811")]).await;

    let msgs = mcp_messages(
        mcp_post(
            &gw,
            Some(&session),
            &[],
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await,
    )
    .await;
    let names: BTreeSet<String> = msgs.last().unwrap().0["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, TOOLS.iter().map(|s| s.to_string()).collect());

    let ping = mcp_messages(
        mcp_post(
            &gw,
            Some(&session),
            &[],
            json!({"jsonrpc": "2.0", "id": 3, "method": "ping"}),
        )
        .await,
    )
    .await;
    assert_eq!(ping.last().unwrap().0["result"], json!({}));

    assert_eq!(
        call_tool(&gw, &session, 4, "echo", json!({"text": "héllo\nworld"})).await,
        "héllo\nworld"
    );
    assert_eq!(
        call_tool(&gw, &session, 5, "list_servers", json!({})).await,
        r#"["fetch","github"]"#
    );
    assert_eq!(
        call_tool(&gw, &session, 6, "list_secret_names", json!({})).await,
        r#"["fetch.api_key","github.token"]"#
    );
    let who: Value =
        serde_json::from_str(&call_tool(&gw, &session, 7, "whoami", json!({})).await).unwrap();
    assert_eq!(who["pid"], json!(gw.child.id()));
    assert!(!who["hostname"].as_str().unwrap().is_empty());
    assert_eq!(who["instance"].as_str().unwrap().len(), 36);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_port = listener.local_addr().unwrap().port();
    assert_eq!(
        call_tool(
            &gw,
            &session,
            8,
            "connect_tcp",
            json!({"host": "127.0.0.1", "port": open_port, "timeout_ms": 2000})
        )
        .await,
        "connected"
    );
    drop(listener);
    // A bound socket that does not listen: its port stays ours, and connecting is refused.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    let refused = call_tool(
        &gw,
        &session,
        9,
        "connect_tcp",
        json!({"host": "127.0.0.1", "port": closed_port}),
    )
    .await;
    assert!(refused.starts_with("error:"), "{refused}");
    drop(closed);

    // Progress notifications stream as SSE events while the call runs.
    let token = json!("progress-1");
    let mut req = call(
        10,
        "stream_progress",
        json!({"count": 4, "interval_ms": 200}),
    );
    req["params"]["_meta"] = json!({"progressToken": token});
    let started = Instant::now();
    let msgs = mcp_messages(mcp_post(&gw, Some(&session), &[], req).await).await;
    check_progress(&msgs, 10, &token, 4, 200);
    assert!(started.elapsed() >= Duration::from_millis(550));

    // Unknown tool and bad arguments are JSON-RPC errors, not crashes.
    let msgs = mcp_messages(
        mcp_post(
            &gw,
            Some(&session),
            &[],
            call(11, "echo", json!({"wrong": 1})),
        )
        .await,
    )
    .await;
    let reply = &msgs.last().unwrap().0;
    assert!(
        reply.get("error").is_some() || reply["result"]["isError"] == json!(true),
        "{msgs:?}"
    );

    // A session that was deleted is gone.
    let (ak, av) = auth();
    let resp = send(
        &gw,
        Method::DELETE,
        "/mcp",
        &[(ak, &av), ("mcp-session-id", &session)],
        None,
    )
    .await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let resp = mcp_post(
        &gw,
        Some(&session),
        &[],
        call(12, "echo", json!({"text": "x"})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let log = gw.log();
    assert!(
        !log.contains(SECRET_VALUE),
        "a secret value was logged:\n{log}"
    );
    assert!(log.contains("not-in-catalog"), "{log}");
}

#[tokio::test]
async fn newer_protocol_versions_get_sessions_too() {
    let gw = Gateway::start(&[]);
    let (ak, av) = auth();
    // rmcp answers 400 when the MCP-Protocol-Version header and params.protocolVersion differ;
    // 2026-07-28 (no initialize any more) is negotiated down to 2025-11-25 with a session.
    for (asked, got) in [("2025-11-25", "2025-11-25"), ("2026-07-28", "2025-11-25")] {
        let headers = [
            (ak, av.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", asked),
        ];
        let body = initialize(1, asked).to_string();
        let resp = send(&gw, Method::POST, "/mcp", &headers, Some(body)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{asked}");
        assert!(resp.headers().contains_key("mcp-session-id"), "{asked}");
        let msgs = mcp_messages(resp).await;
        assert_eq!(msgs.last().unwrap().0["result"]["protocolVersion"], got);
    }
    let resp = mcp_post(&gw, None, &[], initialize(1, "2025-11-25")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn auth_and_origin_checks() {
    let gw = Gateway::start(&[]);
    let init = initialize(1, PROTOCOL).to_string();
    let json_headers = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];

    // /health needs no token.
    let resp = send(&gw, Method::GET, "/health", &[], None).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Everything else does: missing, wrong, or not a Bearer token is 401.
    let bad_auth: [&[(&str, &str)]; 4] = [
        &[],
        &[("authorization", "Bearer wrong")],
        &[("authorization", "bearer test-token-0123456789")],
        &[("authorization", "Basic dGVzdA==")],
    ];
    for headers in bad_auth {
        let mut h = headers.to_vec();
        h.extend_from_slice(&json_headers);
        let resp = send(&gw, Method::POST, "/mcp", &h, Some(init.clone())).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{headers:?}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            "Bearer realm=\"MCP Gateway\""
        );
    }
    for (method, path) in [
        (Method::GET, "/sse"),
        (Method::POST, "/message?sessionId=x"),
        (Method::GET, "/elsewhere"),
    ] {
        let resp = send(&gw, method, path, &[], None).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }

    // Auth comes first; then a non-localhost Origin is 403 everywhere.
    let resp = send(
        &gw,
        Method::POST,
        "/mcp",
        &[("origin", "https://evil.example")],
        Some(init.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (ak, av) = auth();
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example",
        "null",
    ] {
        for (method, path) in [(Method::POST, "/mcp"), (Method::GET, "/sse")] {
            let mut h = vec![(ak, av.as_str()), ("origin", origin)];
            h.extend_from_slice(&json_headers);
            let resp = send(&gw, method, path, &h, Some(init.clone())).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin} {path}");
        }
    }
    // Localhost origins pass.
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1",
        "https://[::1]:8443",
    ] {
        let resp = mcp_post(&gw, None, &[("origin", origin)], initialize(1, PROTOCOL)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{origin}");
    }

    // Unknown paths redirect to the transport's endpoint, as docker/mcp-gateway does.
    let resp = send(&gw, Method::GET, "/", &[(ak, &av)], None).await;
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(resp.headers()["location"], "/mcp");
}

#[tokio::test]
async fn health_delay_and_sse_redirect() {
    let gw = Gateway::start(&["--transport", "sse", "--health-delay-ms=600"]);
    let started = Instant::now();
    let resp = send(&gw, Method::GET, "/health", &[], None).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    loop {
        let resp = send(&gw, Method::GET, "/health", &[], None).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(400));

    let (ak, av) = auth();
    let resp = send(&gw, Method::GET, "/nowhere", &[(ak, &av)], None).await;
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(resp.headers()["location"], "/sse");
    // /mcp is served whatever --transport says.
    open_session(&gw, &[]).await;
}

#[tokio::test]
async fn legacy_sse_transport() {
    let gw = Gateway::start(&["--transport=sse"]);
    let (ak, av) = auth();
    let resp = send(
        &gw,
        Method::GET,
        "/sse",
        &[
            (ak, &av),
            ("accept", "text/event-stream"),
            ("host", "10.213.0.2:8811"),
        ],
        None,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut stream = SseReader::new(resp);
    let endpoint = stream.next().await.unwrap();
    assert_eq!(endpoint.event, "endpoint");
    let path = endpoint.data.clone();
    assert!(path.starts_with("/message?sessionId="), "{path}");
    let session_id = path.split('=').nth(1).unwrap().to_owned();

    let post = |path: String, msg: Value| {
        let gw = &gw;
        let av = av.clone();
        async move {
            send(
                gw,
                Method::POST,
                &path,
                &[(ak, av.as_str()), ("content-type", "application/json")],
                Some(msg.to_string()),
            )
            .await
            .status()
        }
    };

    assert_eq!(
        post(path.clone(), initialize(1, "2024-11-05")).await,
        StatusCode::ACCEPTED
    );
    let (init, _) = stream.next_json().await.unwrap();
    assert_eq!(init["id"], 1);
    assert_eq!(init["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(init["result"]["serverInfo"]["name"], "mcp-test-gateway");
    assert_eq!(
        post(
            path.clone(),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
        )
        .await,
        StatusCode::ACCEPTED
    );

    assert_eq!(
        post(
            path.clone(),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        )
        .await,
        StatusCode::ACCEPTED
    );
    let (list, _) = stream.next_json().await.unwrap();
    assert_eq!(list["id"], 2);
    assert_eq!(
        list["result"]["tools"].as_array().unwrap().len(),
        TOOLS.len()
    );

    assert_eq!(
        post(
            path.clone(),
            json!({"jsonrpc": "2.0", "id": 3, "method": "ping"})
        )
        .await,
        StatusCode::ACCEPTED
    );
    assert_eq!(stream.next_json().await.unwrap().0["id"], 3);

    // docker/mcp-gateway's own spelling of the message endpoint works too.
    assert_eq!(
        post(
            format!("/sse?sessionid={session_id}"),
            call(4, "echo", json!({"text": "over sse"}))
        )
        .await,
        StatusCode::ACCEPTED
    );
    let (echo, _) = stream.next_json().await.unwrap();
    assert_eq!(tool_text(&echo), "over sse");

    let token = json!(77);
    let mut req = call(
        5,
        "stream_progress",
        json!({"count": 3, "interval_ms": 200}),
    );
    req["params"]["_meta"] = json!({"progressToken": token});
    assert_eq!(post(path.clone(), req).await, StatusCode::ACCEPTED);
    let mut msgs = Vec::new();
    while let Some(m) = stream.next_json().await {
        let done = m.0["id"] == json!(5);
        msgs.push(m);
        if done {
            break;
        }
    }
    check_progress(&msgs, 5, &token, 3, 200);

    // Bad message-endpoint requests.
    assert_eq!(
        post(
            "/message?sessionId=00000000-0000-0000-0000-000000000000".into(),
            call(6, "echo", json!({"text": "x"}))
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post("/message".into(), call(6, "echo", json!({"text": "x"}))).await,
        StatusCode::BAD_REQUEST
    );
    let resp = send(
        &gw,
        Method::POST,
        &path,
        &[(ak, av.as_str()), ("content-type", "application/json")],
        Some("not json".into()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Closing the stream ends the session.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = post(
            path.clone(),
            json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}),
        )
        .await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(Instant::now() < deadline, "session still open: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The stderr reader thread may lag the 404 a little.
    let closed = format!("sse session {session_id} closed");
    while !gw.log().contains(&closed) {
        assert!(Instant::now() < deadline, "no {closed:?} in the log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn startup_variants() {
    // A catalog that is not a catalog stops the start, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "registry: [not, a, map]\n").unwrap();
    let log = Gateway::try_start(&[&format!("--catalog={}", bad.display())], Some(TOKEN))
        .err()
        .expect("bad catalog must fail");
    assert!(log.contains("bad.yaml"), "{log}");

    // Unknown flags are refused (cobra does the same), known docker flags are not.
    assert!(Gateway::try_start(&["--no-such-flag"], Some(TOKEN)).is_err());

    // No MCP_GATEWAY_AUTH_TOKEN: a token is generated and logged, as docker/mcp-gateway does.
    let gw = Gateway::try_start(&[], None).unwrap();
    let log = gw.log();
    let generated = log
        .split("use Bearer token: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("{log}"))
        .to_owned();
    let auth = format!("Bearer {generated}");
    let resp = send(&gw, Method::GET, "/x", &[("authorization", &auth)], None).await;
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);

    // --allow-unauthenticated: no token needed.
    let gw = Gateway::try_start(&["--allow-unauthenticated"], Some(TOKEN)).unwrap();
    let resp = send(&gw, Method::GET, "/x", &[], None).await;
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
}
