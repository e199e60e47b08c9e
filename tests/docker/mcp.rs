//! A minimal MCP client speaking JSON-RPC over streamable HTTP (`POST /mcp`) through the
//! front door: initialize, then tools/call.

use crate::support::client::{Client, Proto};
use crate::support::{tokens, Frontdoor};
use http::StatusCode;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::time::Duration;

const PROTOCOL: &str = "2025-06-18";

/// A session of one user with their gateway.
pub struct Mcp {
    client: Client,
    auth: String,
    session: String,
    next_id: std::sync::atomic::AtomicU64,
}

/// A failed HTTP exchange: status, `Retry-After`, body.
#[derive(Debug)]
pub struct Refused {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub body: String,
}

async fn post(
    client: &Client,
    auth: &str,
    session: Option<&str>,
    msg: Value,
) -> Result<http::Response<hyper::body::Incoming>, Refused> {
    let mut req = client
        .req("POST", "/mcp")
        .header("authorization", auth)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL);
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        client.send_body(req, msg.to_string()),
    )
    .await
    .expect("response in 60 s");
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = String::from_utf8_lossy(&crate::support::body_bytes(resp).await).into_owned();
    Err(Refused {
        status,
        retry_after,
        body,
    })
}

/// The JSON-RPC response (the message with an id) of a streamable-HTTP answer, JSON or SSE;
/// `on_message` sees every message as it arrives.
async fn response(
    resp: http::Response<hyper::body::Incoming>,
    mut on_message: impl FnMut(&Value),
) -> Value {
    let json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    let mut body = resp.into_body();
    let mut buf = String::new();
    loop {
        if json {
            let all = body.collect().await.unwrap().to_bytes();
            let v: Value = serde_json::from_slice(&all).unwrap();
            on_message(&v);
            return v;
        }
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim_start)
                .collect();
            if data.is_empty() || data.concat().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&data.join("\n")).unwrap();
            on_message(&v);
            if v.get("id").is_some() && v.get("method").is_none() {
                return v;
            }
        }
        let frame = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .expect("SSE frame in time")
            .expect("stream ended before the response")
            .unwrap();
        if let Ok(d) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&d).replace("\r\n", "\n"));
        }
    }
}

impl Mcp {
    /// Opens a session as `sub` (no teams).
    pub async fn open(fd: &Frontdoor, sub: &str) -> Result<Mcp, Refused> {
        Self::open_with(fd, &tokens::bearer(sub)).await
    }

    /// Opens a session with an explicit `Authorization` value.
    pub async fn open_with(fd: &Frontdoor, auth: &str) -> Result<Mcp, Refused> {
        Self::open_at(fd.client(Proto::H1), auth).await
    }

    /// Opens a session through `client` (a front door that is not this process's).
    pub async fn open_at(client: Client, auth: &str) -> Result<Mcp, Refused> {
        Self::open_server(client, auth, "mcp-test-gateway").await
    }

    /// Opens a session as `sub` with a gateway that calls itself `server` (the real one).
    #[allow(dead_code)] // the Swarm tests only
    pub async fn open_gateway(fd: &Frontdoor, sub: &str, server: &str) -> Result<Mcp, Refused> {
        Self::open_server(fd.client(Proto::H1), &tokens::bearer(sub), server).await
    }

    /// Opens a session through `client` with a gateway that calls itself `server`.
    pub async fn open_server(client: Client, auth: &str, server: &str) -> Result<Mcp, Refused> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "frontdoor-docker-test", "version": "0"}}});
        let resp = post(&client, auth, None, init).await?;
        let session = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string();
        let v = response(resp, |_| {}).await;
        assert_eq!(v["result"]["serverInfo"]["name"], server, "{v}");
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let resp = post(&client, auth, Some(&session), note).await?;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        Ok(Mcp {
            client,
            auth: auth.to_string(),
            session,
            next_id: 1.into(),
        })
    }

    /// The same session sent through another front door (a replica), as `auth`.
    pub fn via(&self, fd: &Frontdoor, auth: &str) -> Mcp {
        Mcp {
            client: fd.client(Proto::H1),
            auth: auth.to_string(),
            session: self.session.clone(),
            next_id: 1000.into(),
        }
    }

    /// Calls a tool; returns its text. `on_message` sees progress notifications as they come.
    pub async fn call_with(
        &self,
        tool: &str,
        args: Value,
        on_message: impl FnMut(&Value),
    ) -> Result<String, Refused> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": args, "_meta": {"progressToken": id}}});
        let resp = post(&self.client, &self.auth, Some(&self.session), msg).await?;
        let v = response(resp, on_message).await;
        // The real gateway leaves `isError` out when false.
        assert!(v.get("result").is_some(), "{v}");
        assert_ne!(v["result"]["isError"], json!(true), "{v}");
        Ok(v["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text in {v}"))
            .to_string())
    }

    /// Calls a tool; returns its text.
    pub async fn call(&self, tool: &str, args: Value) -> String {
        self.call_with(tool, args, |_| {})
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e:?}"))
    }

    /// `whoami`'s per-process instance id (tells gateway processes apart).
    pub async fn instance(&self) -> String {
        let v: Value = serde_json::from_str(&self.call("whoami", json!({})).await).unwrap();
        v["instance"].as_str().unwrap().to_string()
    }

    /// `list_servers` as names.
    pub async fn servers(&self) -> Vec<String> {
        serde_json::from_str(&self.call("list_servers", json!({})).await).unwrap()
    }

    /// `list_servers`, or why not (a replaced gateway does not know the session).
    pub async fn try_servers(&self) -> Result<Vec<String>, Refused> {
        let text = self.call_with("list_servers", json!({}), |_| {}).await?;
        Ok(serde_json::from_str(&text).unwrap())
    }
}
