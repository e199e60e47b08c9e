//! What MCP clients are told: the front door's own errors on `/mcp` and `/sse` are JSON-RPC
//! 2.0 error objects with the request's id and the status the MCP spec asks for; the REST
//! API keeps `{error, message}`. Early answers are readable by curl over HTTP/2.

use crate::support::client::{full, Proto};
use crate::support::tokens::{self, claims, now, sign, Signer};
use crate::support::{body_json, Frontdoor};
use http::StatusCode;
use serde_json::{json, Value};

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":42,"method":"tools/list"}"#;

async fn post_mcp(
    fd: &Frontdoor,
    proto: Proto,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, http::HeaderMap, Value) {
    let c = fd.client(proto);
    let mut req = c
        .req("POST", "/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = c
        .try_send(req.body(full(body.to_string())).unwrap())
        .await
        .expect("request");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, body_json(resp).await)
}

fn rpc_error(v: &Value) -> &Value {
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    &v["error"]
}

#[tokio::test]
async fn auth_failures_on_mcp_are_jsonrpc_errors_with_the_request_id_and_the_challenge() {
    let fd = Frontdoor::builder().start().await;
    for proto in [Proto::H1, Proto::H2] {
        let (status, headers, v) = post_mcp(&fd, proto, None, TOOLS_LIST).await;
        assert_eq!(status, 401);
        assert!(headers.get("www-authenticate").is_some());
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(v["id"], 42, "{v}");
        let e = rpc_error(&v);
        assert_eq!(e["code"], -32001);
        assert_eq!(e["data"]["reason"], "unauthorized");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer"),
            "{e}"
        );
    }
    // An expired token says when it expired and what to do; a string id is echoed.
    let mut c = claims("alice", &[], &[]);
    c["exp"] = json!(now() - 3600);
    let expired = sign(Signer::Hs256, &c);
    let (status, _, v) = post_mcp(
        &fd,
        Proto::H2,
        Some(&expired),
        r#"{"jsonrpc":"2.0","id":"req-7","method":"initialize","params":{}}"#,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(v["id"], "req-7");
    let msg = rpc_error(&v)["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("token expired at 20") && msg.contains("get a new token"),
        "{msg}"
    );
    // A notification has no id to echo; a batch gets one error per request in it.
    let (_, _, v) = post_mcp(
        &fd,
        Proto::H1,
        None,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    )
    .await;
    assert_eq!(v["id"], Value::Null);
    let (_, _, v) = post_mcp(
        &fd,
        Proto::H1,
        None,
        r#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"n"},{"jsonrpc":"2.0","id":2,"method":"b"}]"#,
    )
    .await;
    let ids: Vec<Value> = v
        .as_array()
        .expect("batch answer")
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(1), json!(2)]);
    // A body over the bound is not read for its id (and not waited for). Over HTTP/2: over
    // HTTP/1.1 the connection closes after the answer, and a client still writing the rest
    // (the server runs on threads of its own) may see the reset before the answer.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":9,"method":"m","params":{{"x":"{}"}}}}"#,
        "y".repeat(100_000)
    );
    let (status, _, v) = post_mcp(&fd, Proto::H2, None, &big).await;
    assert_eq!(status, 401);
    assert_eq!(v["id"], Value::Null);
    // The legacy SSE endpoint: the same text.
    let c = fd.client(Proto::H1);
    let resp = c.send(c.req("GET", "/sse")).await;
    assert_eq!(resp.status(), 401);
    let v = body_json(resp).await;
    assert!(
        rpc_error(&v)["message"]
            .as_str()
            .unwrap()
            .contains("bearer token"),
        "{v}"
    );
    // The REST API keeps its own shape.
    let resp = c.send(c.req("GET", "/api/v1/users/me/catalogs")).await;
    assert_eq!(resp.status(), 401);
    let v = body_json(resp).await;
    assert_eq!(v["error"], "unauthorized", "{v}");
    assert!(v["message"].is_string());
}

#[tokio::test]
async fn gateway_failures_on_mcp_echo_the_id_with_their_status() {
    // Nothing listens on this port: the gateway refuses the connection (502), after the
    // body was forwarded, so the id comes from the read-ahead of the small body.
    let fd = crate::support::frontdoor_with_dead_upstream().await;
    let token = tokens::user("alice");
    let (status, _, v) = post_mcp(&fd, Proto::H2, Some(&token), TOOLS_LIST).await;
    assert_eq!(status, 502);
    assert_eq!(v["id"], 42);
    let e = rpc_error(&v);
    assert_eq!(e["data"]["reason"], "upstream_unavailable");
    assert_eq!(e["code"], -32002);
    assert!(e["message"].as_str().unwrap().contains("retry"), "{e}");
    // No runtime at all: 503, same shape.
    let none = Frontdoor::builder().start().await;
    let (status, _, v) = post_mcp(&none, Proto::H1, Some(&token), TOOLS_LIST).await;
    assert_eq!(status, 503);
    assert_eq!(v["id"], 42);
    assert_eq!(rpc_error(&v)["data"]["reason"], "no_gateway_runtime");
}

/// curl 7.88 (Debian 12) reports `(92) Stream error in the HTTP/2 framing layer` for a
/// response that ends its stream before the request body was read; the front door reads a
/// small body first, so every try shows the 401.
#[tokio::test]
async fn curl_over_http2_sees_every_early_401() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "curl is missing and CI=true"
        );
        eprintln!("skipped: curl is not installed");
        return;
    }
    let fd = Frontdoor::builder().start().await;
    let ca = fd.dir.path().join("tls/cert.pem");
    let url = format!("{}/mcp", fd.base());
    let resolve = format!("localhost:{}:127.0.0.1", fd.addr.port());
    let mut codes = Vec::new();
    for _ in 0..20 {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--http2", "--resolve", &resolve, "--cacert"])
            .arg(&ca)
            .args([
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "content-type: application/json",
                "-d",
                TOOLS_LIST,
                &url,
            ])
            .output()
            .await
            .unwrap();
        codes.push(format!(
            "{} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    assert!(codes.iter().all(|c| c == "401 "), "{codes:?}");
}

#[tokio::test]
async fn an_early_answer_keeps_the_http1_connection() {
    let fd = Frontdoor::builder().plain().start().await;
    let tcp = tokio::net::TcpStream::connect(fd.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    for _ in 0..3 {
        let req = http::Request::post("/mcp")
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                TOOLS_LIST.as_bytes(),
            )))
            .unwrap();
        let resp = send.send_request(req).await.expect("same connection");
        assert_eq!(resp.status(), 401);
        let v: Value = serde_json::from_slice(
            &http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes(),
        )
        .unwrap();
        assert_eq!(v["id"], 42);
    }
    assert!(!conn.is_finished(), "the connection was kept");
}
