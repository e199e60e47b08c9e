//! Gateway connections kept alive between requests (`proxy::relay`'s per-worker pools). The
//! gateway here is a raw TCP server that numbers its connections and the requests on them and
//! answers each with exactly the bytes a test gives it, so a test can see which connection
//! carried which request, and can try what a hostile gateway (a tenant's code runs behind it)
//! would: answers past their own end, meant for the next request, perhaps another user's.

use crate::support::client::Client;
use crate::support::{tokens, Frontdoor, Proto};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the gateway does after reading a request.
enum Then {
    /// Writes the answer and waits for the next request on the same connection.
    Keep(Vec<u8>),
    /// Closes the connection without answering (as a gateway that closed an idle connection
    /// just as the request arrived).
    CloseUnanswered,
}

/// One request as the gateway read it.
#[derive(Debug)]
struct Seen {
    conn: usize,
    head: String,
    body: Vec<u8>,
}

/// A gateway that reads requests (bodies framed by Content-Length or chunked) on every
/// connection and does what `answer` says for the n-th request it read (counted over all
/// connections).
async fn gateway<F>(answer: F) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>)
where
    F: Fn(usize) -> Then + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let answer = Arc::new(answer);
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        let mut conn = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            let (tx, answer, count) = (tx.clone(), answer.clone(), count.clone());
            tokio::spawn(async move {
                let (read, mut write) = tcp.into_split();
                let mut read = BufReader::new(read);
                while let Some((head, body)) = read_request(&mut read).await {
                    let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let _ = tx.send(Seen { conn, head, body });
                    match answer(n) {
                        Then::Keep(wire) => {
                            if write.write_all(&wire).await.is_err() {
                                return;
                            }
                        }
                        Then::CloseUnanswered => return,
                    }
                }
            });
            conn += 1;
        }
    });
    (addr, rx)
}

/// One request: its head and its body, or `None` when the connection ended.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("\r\ntransfer-encoding: chunked\r\n") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await.ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut data = vec![0; n + 2];
            r.read_exact(&mut data).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&data[..n]);
        }
    } else if let Some(len) = lower
        .split("\r\n")
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        body = vec![0; len.trim().parse().ok()?];
        r.read_exact(&mut body).await.ok()?;
    }
    Some((head, body))
}

/// A complete answer with `body`.
fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn text(resp: http::Response<hyper::body::Incoming>) -> String {
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&b).into_owned()
}

/// GET on `c`: one client keeps one connection to the front door, so its requests are
/// served by one worker and share that worker's gateway connections.
async fn get(c: &Client, user: &str) -> (u16, String) {
    let resp = c.get_as(user, "/health").await;
    (resp.status().as_u16(), text(resp).await)
}

/// alice's JSON POST of `body` to `path` on `c`, as an MCP client sends it.
async fn post(c: &Client, path: &str, body: &str) -> (u16, String) {
    let req = c
        .req("POST", path)
        .header("authorization", tokens::bearer("alice"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    let resp = c.send_body(req, body.to_string()).await;
    (resp.status().as_u16(), text(resp).await)
}

#[tokio::test]
async fn requests_one_after_another_share_one_gateway_connection() {
    let (addr, mut seen) = gateway(|n| Then::Keep(ok(&format!("answer-{n}")))).await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    let c = fd.client(Proto::H1);
    for i in 0..4 {
        let body = format!("{{\"id\":{i}}}");
        assert_eq!(post(&c, "/rpc", &body).await, (200, format!("answer-{i}")));
        let s = seen.recv().await.unwrap();
        assert_eq!(s.body, body.as_bytes(), "{s:?}");
        assert!(
            s.head
                .contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{s:?}"
        );
        assert!(!s.head.contains("connection: close"), "{s:?}");
        assert_eq!(s.conn, 0, "every request on the first connection: {s:?}");
    }
    assert_eq!(get(&c, "alice").await, (200, "answer-4".into()));
    assert_eq!(seen.recv().await.unwrap().conn, 0);
}

#[tokio::test]
async fn a_connection_the_gateway_closed_while_idle_is_replaced_without_an_error() {
    // Requests 1, 3 and 5 find their pooled connection closed as they arrive.
    let (addr, mut seen) = gateway(|n| match n {
        1 | 3 | 5 => Then::CloseUnanswered,
        n => Then::Keep(ok(&format!("answer-{n}"))),
    })
    .await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    let c = fd.client(Proto::H1);
    assert_eq!(get(&c, "alice").await, (200, "answer-0".into()));
    // Bodiless: sent again on a fresh connection.
    assert_eq!(get(&c, "alice").await, (200, "answer-2".into()));
    // A small MCP body, read before forwarding: sent again, whole.
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
    assert_eq!(post(&c, "/mcp", body).await, (200, "answer-4".into()));
    // Any small body that arrived with its head is in hand too (the client's HTTP/1.1
    // connection says it is over with its last byte): sent again, whole.
    assert_eq!(post(&c, "/other", body).await, (200, "answer-6".into()));
    let s: Vec<Seen> = (0..7).map(|_| seen.try_recv().unwrap()).collect();
    assert_eq!(
        s[0].conn, s[1].conn,
        "the second request tried the pooled one"
    );
    assert_ne!(s[2].conn, s[1].conn, "and went again on a fresh one");
    assert_ne!(s[4].conn, s[3].conn);
    assert_eq!(s[3].body, body.as_bytes());
    assert_eq!(s[4].body, body.as_bytes());
    assert_eq!(s[3].head, s[4].head, "the same request, twice");
    assert_ne!(s[6].conn, s[5].conn);
    assert_eq!(s[6].body, body.as_bytes());
    assert_eq!(s[5].head, s[6].head);
}

#[tokio::test]
async fn an_answer_running_past_its_end_never_answers_the_next_request() {
    // A hostile gateway appends a second answer to its first, for whoever asks next on the
    // connection (with one upstream for everyone, that could be another user).
    let planted = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret";
    let (addr, mut seen) = gateway(move |n| match n {
        0 => Then::Keep(format!("{}{planted}", String::from_utf8(ok("ok")).unwrap()).into_bytes()),
        2 => Then::Keep(
            format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n{planted}"
            )
            .into_bytes(),
        ),
        n => Then::Keep(ok(&format!("answer-{n}"))),
    })
    .await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    let c = fd.client(Proto::H1);
    assert_eq!(get(&c, "alice").await, (200, "ok".into()));
    assert_eq!(get(&c, "bob").await, (200, "answer-1".into()));
    assert_eq!(get(&c, "alice").await, (200, "ok".into()));
    assert_eq!(get(&c, "bob").await, (200, "answer-3".into()));
    let s: Vec<Seen> = (0..4).map(|_| seen.try_recv().unwrap()).collect();
    assert_ne!(
        s[1].conn, s[0].conn,
        "the connection with stray bytes was dropped"
    );
    assert_ne!(s[3].conn, s[2].conn);
}

#[tokio::test]
async fn an_answer_that_says_close_is_the_connections_last() {
    let (addr, mut seen) = gateway(|n| match n {
        0 => Then::Keep(
            b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 5\r\n\r\nfirst".to_vec(),
        ),
        n => Then::Keep(ok(&format!("answer-{n}"))),
    })
    .await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    let c = fd.client(Proto::H1);
    assert_eq!(get(&c, "alice").await, (200, "first".into()));
    assert_eq!(get(&c, "alice").await, (200, "answer-1".into()));
    let a = seen.recv().await.unwrap();
    let b = seen.recv().await.unwrap();
    assert_ne!(a.conn, b.conn, "not reused after `connection: close`");
}

#[tokio::test]
async fn a_body_of_unknown_length_goes_chunked_and_whole() {
    let (addr, mut seen) = gateway(|n| Then::Keep(ok(&format!("answer-{n}")))).await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    let c = fd.client(Proto::H1);
    let (tx, rx) = mpsc::channel::<Result<http_body::Frame<Bytes>, std::io::Error>>(4);
    let body = http_body_util::StreamBody::new(tokio_stream_from(rx)).boxed();
    let req = c
        .req("POST", "/rpc")
        .header("authorization", tokens::bearer("alice"))
        .body(body)
        .unwrap();
    let sending = tokio::spawn(async move {
        for part in ["first part, ", "then ", "the rest"] {
            tx.send(Ok(http_body::Frame::data(Bytes::from(part))))
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
    });
    let resp = c.try_send(req).await.unwrap();
    sending.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(text(resp).await, "answer-0");
    let s = seen.recv().await.unwrap();
    assert!(
        s.head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{s:?}"
    );
    assert!(!s.head.contains("content-length"), "{s:?}");
    assert_eq!(s.body, b"first part, then the rest");
}

/// A stream of the frames sent on `rx`.
fn tokio_stream_from<T: Send + 'static>(
    rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}
