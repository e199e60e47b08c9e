//! The bench SSE upstream. Every contender (direct, front door, nginx) talks to this same
//! process, so differences are the proxy's.
//!
//! - `GET /events?n=N&interval_ms=I`: `text/event-stream`; event k is sent at
//!   `start + k * I` (absolute schedule, no drift; a thread per stream sleeping with
//!   nanosleep, so the schedule is not quantized to tokio's 1 ms timer), one body frame per event:
//!   `data: <k> <send time, ns since the Unix epoch>\n\n`. The stream ends after N events.
//! - `GET /idle`: `text/event-stream`; one `: open` comment, then nothing until the client
//!   goes away.
//! - `POST /rpc`: reads the (small JSON-RPC) body, answers `200` with a fixed
//!   `{"jsonrpc":"2.0","id":1,"result":{}}` (`application/json`): a stateless warm POST.
//! - anything else: `200 ok` (a tiny static answer).

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The response bodies this server sends.
enum UpBody {
    Once(Option<Bytes>),
    Events(mpsc::Receiver<Bytes>),
    /// First the comment, then pending forever.
    Idle(Option<Bytes>),
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            UpBody::Once(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpBody::Events(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
            UpBody::Idle(first) => match first.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, UpBody::Once(None))
    }
}

fn query_u64(q: Option<&str>, key: &str, default: u64) -> u64 {
    q.unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn event_stream(body: UpBody) -> Response<UpBody> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .expect("static response")
}

async fn handle(req: Request<Incoming>) -> Result<Response<UpBody>, Infallible> {
    let resp = match req.uri().path() {
        "/events" => {
            let n = query_u64(req.uri().query(), "n", 100).min(100_000);
            let interval = Duration::from_millis(query_u64(req.uri().query(), "interval_ms", 10));
            let (tx, rx) = mpsc::channel(16);
            // A thread of its own with nanosleep, not a tokio timer: tokio's 1 ms wheel would
            // add up to 1 ms of jitter (and delay event 0 to the next tick) for every contender.
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                for k in 0..n {
                    let due = start + interval * k as u32;
                    let now = std::time::Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let ev = format!("data: {k} {}\n\n", unix_ns());
                    if tx.blocking_send(Bytes::from(ev)).is_err() {
                        return;
                    }
                }
            });
            event_stream(UpBody::Events(rx))
        }
        "/rpc" if req.method() == http::Method::POST => {
            let status = match req.into_body().collect().await {
                Ok(_) => StatusCode::OK,
                Err(_) => StatusCode::BAD_REQUEST,
            };
            Response::builder()
                .status(status)
                .header(header::CONTENT_TYPE, "application/json")
                .body(UpBody::Once(Some(Bytes::from_static(
                    br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
                ))))
                .expect("static response")
        }
        "/idle" => event_stream(UpBody::Idle(Some(Bytes::from_static(b": open\n\n")))),
        _ => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(UpBody::Once(Some(Bytes::from_static(b"ok\n"))))
            .expect("static response"),
    };
    Ok(resp)
}

pub async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("fd-load upstream listening on {}", listener.local_addr()?);
    loop {
        let tcp = crate::net::accept(&listener).await;
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), hyper::service::service_fn(handle))
                .await;
        });
    }
}
