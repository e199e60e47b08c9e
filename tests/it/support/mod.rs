//! The integration-test DSL: real upstream servers on 127.0.0.1:0, the real front door,
//! real HTTP/1.1 and HTTP/2 clients over real TLS.

pub mod client;
pub mod frontdoor;
pub mod sse;
pub mod tokens;
pub mod upstream;

pub use client::Proto;
pub use frontdoor::Frontdoor;
pub use upstream::TestUpstream;

use sha2::Digest;

/// The `Mcp-Session-Id` a front door with the test master key hands `slug` for the gateway's
/// `upstream` id (sealed, as `proxy::sealed` does).
pub fn sealed_session(slug: &str, upstream: &str) -> String {
    let ring = mcp_frontdoor::secrets::KeyRing::parse(frontdoor::MASTER_KEY, "test").unwrap();
    mcp_frontdoor::proxy::sealed::SessionSeal::from_keyring(&ring)
        .seal(slug, upstream)
        .unwrap()
}

/// Reads a response body to the end.
pub async fn body_bytes(resp: http::Response<hyper::body::Incoming>) -> bytes::Bytes {
    use http_body_util::BodyExt;
    resp.into_body().collect().await.expect("body").to_bytes()
}

/// Reads a JSON response body.
pub async fn body_json(resp: http::Response<hyper::body::Incoming>) -> serde_json::Value {
    let b = body_bytes(resp).await;
    serde_json::from_slice(&b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&b)))
}

/// sha256 over every file under `dir` except the audit log (which records the refusals).
#[allow(dead_code)] // not every test binary compares data dirs
pub fn tree_hash(dir: &std::path::Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.ends_with("audit/audit.log") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h = sha2::Sha256::new();
    for f in files {
        h.update(f.strip_prefix(dir).unwrap().to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap());
    }
    format!("{:x}", h.finalize())
}

/// The machine-readable reason of an error body in either shape: the REST API's
/// `{error, message}` or the JSON-RPC error of the MCP routes (`error.data.reason`).
#[allow(dead_code)] // not every test binary reads error bodies
pub fn reason(body: &serde_json::Value) -> serde_json::Value {
    match &body["error"] {
        e @ serde_json::Value::Object(_) => e["data"]["reason"].clone(),
        e => e.clone(),
    }
}

/// The message of an error body in either shape (see [`reason`]).
#[allow(dead_code)] // not every test binary reads error bodies
pub fn message(body: &serde_json::Value) -> serde_json::Value {
    match &body["error"] {
        e @ serde_json::Value::Object(_) => e["message"].clone(),
        _ => body["message"].clone(),
    }
}

/// A front door whose one upstream refuses every connection (a port bound and dropped, so
/// nothing listens on it): the gateway-unreachable path.
pub async fn frontdoor_with_dead_upstream() -> Frontdoor {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Frontdoor::builder()
        .upstream(&format!("http://127.0.0.1:{port}"))
        .start()
        .await
}
