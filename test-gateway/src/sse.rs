//! The legacy HTTP+SSE transport (MCP 2024-11-05), which rmcp 3 no longer ships.
//!
//! `GET /sse` opens a stream whose first event is `event: endpoint` with an absolute path
//! (`/message?sessionId=<uuid>`); JSON-RPC messages from the server follow as `event: message`.
//! `POST /message?sessionId=<uuid>` (or docker/mcp-gateway's spelling, `POST /sse?sessionid=`)
//! takes one JSON-RPC message and answers 202; the reply arrives on the stream.
//!
//! Each session runs the same rmcp `ServerHandler` as `/mcp`, over an in-memory duplex pipe with
//! rmcp's newline-delimited JSON transport: POST bodies are written into the pipe, lines read
//! from it become SSE events. Closing the stream drops the session and ends its server task.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use parking_lot::Mutex;
use rmcp::ServiceExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, WriteHalf};
use tokio::sync::mpsc;

use crate::tools::Gateway;

type Writer = Arc<tokio::sync::Mutex<WriteHalf<tokio::io::DuplexStream>>>;

#[derive(Clone)]
pub struct SseState {
    gateway: Gateway,
    sessions: Arc<Mutex<HashMap<String, Writer>>>,
    keep_alive: Duration,
}

impl SseState {
    pub fn new(gateway: Gateway, keep_alive: Duration) -> Self {
        SseState {
            gateway,
            sessions: Arc::default(),
            keep_alive,
        }
    }

    fn sessions(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Writer>> {
        self.sessions.lock()
    }
}

/// Removes the session when the SSE response stream is dropped (client gone).
struct SessionGuard {
    state: SseState,
    id: String,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.state.sessions().remove(&self.id);
        crate::log!("sse session {} closed", self.id);
    }
}

const PIPE_BUFFER: usize = 256 * 1024;
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// `GET /sse`
pub async fn open(State(state): State<SseState>) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
    let (read_half, write_half) = tokio::io::split(ours);
    state
        .sessions()
        .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(write_half)));

    let gateway = state.gateway.clone();
    let sid = id.clone();
    tokio::spawn(async move {
        match gateway.serve(theirs).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => crate::log!("sse session {sid}: no MCP session: {e}"),
        }
    });

    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        // Ends when the server side closes or the SSE stream is dropped (`tx.closed()`), so the
        // pipe is released and the server task sees EOF.
        let mut lines = BufReader::new(read_half).lines();
        loop {
            let line = tokio::select! {
                line = lines.next_line() => line,
                () = tx.closed() => break,
            };
            match line {
                Ok(Some(line)) => {
                    if tx.send(line).await.is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
    });

    crate::log!("sse session {id} opened");
    let endpoint = format!("/message?sessionId={id}");
    let guard = SessionGuard {
        state: state.clone(),
        id,
    };
    let events = futures_util::stream::unfold(
        (Some(endpoint), rx, guard),
        |(endpoint, mut rx, guard)| async move {
            if let Some(endpoint) = endpoint {
                let event = Event::default().event("endpoint").data(endpoint);
                return Some((Ok(event), (None, rx, guard)));
            }
            let line = rx.recv().await?;
            let event = Event::default().event("message").data(line);
            Some((Ok(event), (None, rx, guard)))
        },
    );
    sse_response(events, state.keep_alive)
}

fn sse_response(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response();
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// `POST /message?sessionId=` and `POST /sse?sessionid=`
pub async fn post(
    State(state): State<SseState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(id) = query.get("sessionId").or_else(|| query.get("sessionid")) else {
        return (StatusCode::BAD_REQUEST, "missing sessionId\n").into_response();
    };
    let Some(writer) = state.sessions().get(id).cloned() else {
        return (StatusCode::NOT_FOUND, "unknown session\n").into_response();
    };
    if body.len() > MAX_MESSAGE_BYTES {
        return (StatusCode::PAYLOAD_TOO_LARGE, "message too large\n").into_response();
    }
    // Re-serialize so the message is one line whatever whitespace the client used.
    let message: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        Ok(_) => {
            return (StatusCode::BAD_REQUEST, "expected one JSON-RPC message\n").into_response()
        }
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}\n")).into_response(),
    };
    // A Value's Display is its compact JSON and cannot fail.
    let mut line = message.to_string().into_bytes();
    line.push(b'\n');
    let mut w = writer.lock().await;
    if let Err(e) = w.write_all(&line).await {
        return (StatusCode::GONE, format!("session ended: {e}\n")).into_response();
    }
    let _ = w.flush().await;
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
