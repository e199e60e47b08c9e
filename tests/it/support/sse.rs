//! A Server-Sent Events reader over a real response body: frames as they arrive.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Duration;

/// One event frame (comments are counted, not returned).
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: Option<String>,
    pub event: String,
    pub data: serde_json::Value,
}

/// Reads frames off an event stream.
pub struct SseReader {
    body: Incoming,
    buf: Vec<u8>,
    /// Every byte received, to scan for what must never be sent.
    pub raw: Vec<u8>,
}

/// A read that hangs this long means the test failed (not a timing assertion: events the
/// test waits for are published before it reads).
const STUCK: Duration = Duration::from_secs(20);

impl SseReader {
    pub fn new(resp: http::Response<Incoming>) -> Self {
        assert_eq!(resp.status(), 200, "event stream refused");
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            body: resp.into_body(),
            buf: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// The next event frame; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Frame> {
        // One deadline for the whole wait: keep-alive comments do not extend it.
        let deadline = tokio::time::Instant::now() + STUCK;
        loop {
            if let Some(end) = find(&self.buf, b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                if let Some(f) = parse(&block) {
                    return Some(f);
                }
                continue;
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .expect("no event on the stream for 20 s")?;
            let Ok(data) = frame.expect("event stream broke").into_data() else {
                continue;
            };
            self.raw.extend_from_slice(&data);
            self.buf.extend_from_slice(&data);
        }
    }

    /// The next `n` frames.
    pub async fn take(&mut self, n: usize) -> Vec<Frame> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await.expect("the stream ended early"));
        }
        out
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse(block: &[u8]) -> Option<Frame> {
    let text = std::str::from_utf8(block).expect("UTF-8 frame");
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim_start().to_string());
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim_start().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim_start());
        }
    }
    let event = event?;
    Some(Frame {
        id,
        event,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
    })
}
