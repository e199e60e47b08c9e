//! Event streams on the relay (`proxy::relay`): a `GET` that accepts `text/event-stream` goes
//! over an HTTP/1.1 exchange of the front door's own. The gateway here is a raw TCP server
//! that writes exactly the bytes a test gives it, the way a broken or hostile gateway (a
//! tenant's code runs behind it) could: odd chunk boundaries, oversized heads, bad framing,
//! answers it was not asked for. None of it may panic the front door or reach the client as
//! anything but a clean error, and the front door keeps serving.

use crate::support::client::empty;
use crate::support::{body_json, reason, tokens, Frontdoor, Proto};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the raw gateway does with one connection after reading the request head: these
/// writes, each flushed on its own, then it holds the connection open (a gateway that stops
/// mid-answer) or closes it.
#[derive(Clone)]
struct Script {
    writes: Vec<Vec<u8>>,
    pause: Duration,
    hold: bool,
}

impl Script {
    /// Writes `wire` in one piece, then holds the connection.
    fn holds(wire: impl Into<Vec<u8>>) -> Self {
        Self {
            writes: vec![wire.into()],
            pause: Duration::ZERO,
            hold: true,
        }
    }

    /// Writes `wire` in one piece, then closes.
    fn closes(wire: impl Into<Vec<u8>>) -> Self {
        Self {
            hold: false,
            ..Self::holds(wire)
        }
    }

    async fn run(self, mut tcp: TcpStream) {
        for w in self.writes {
            if tcp.write_all(&w).await.is_err() || tcp.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(self.pause).await;
        }
        if self.hold {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }
}

/// A gateway that reads each request head, reports it, and runs `script` on the connection.
async fn raw_gateway(script: Script) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (tx, script) = (tx.clone(), script.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tcp.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
                script.run(tcp).await;
            });
        }
    });
    (addr, rx)
}

/// An event-stream GET as an MCP client sends it.
fn stream_request(c: &crate::support::client::Client) -> http::request::Builder {
    c.req("GET", "/mcp")
        .header("authorization", tokens::bearer("alice"))
        .header("accept", "text/event-stream")
}

/// The whole body as the client got it, or the error that ended it.
async fn body_text(resp: http::Response<hyper::body::Incoming>) -> Result<String, String> {
    match resp.into_body().collect().await {
        Ok(b) => Ok(String::from_utf8_lossy(&b.to_bytes()).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// The front door still answers after whatever the gateway did.
async fn still_serving(fd: &Frontdoor) {
    let resp = fd.client(Proto::H1).get_as("alice", "/healthz").await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_chunked_stream_written_a_byte_at_a_time_arrives_whole_over_h1_and_h2() {
    let wire = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                 transfer-encoding: chunked\r\n\r\n\
                 d\r\ndata: first\n\n\r\n10;x=y\r\ndata: second!!\n\n\r\n0\r\n\r\n";
    let (addr, mut heads) = raw_gateway(Script {
        writes: wire.iter().map(|b| vec![*b]).collect(),
        pause: Duration::from_micros(200),
        hold: false,
    })
    .await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    for proto in [Proto::H1, Proto::H2] {
        let c = fd.client(proto);
        let resp = c.send(stream_request(&c)).await;
        assert_eq!(resp.status(), 200, "{proto:?}");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        assert!(resp.headers().get("transfer-encoding").is_none() || proto == Proto::H1);
        let text = body_text(resp).await.unwrap();
        assert_eq!(text, "data: first\n\ndata: second!!\n\n", "{proto:?}");
        // The relay's own exchange (one per stream) is what carried it.
        let head = heads.recv().await.unwrap();
        assert!(head.starts_with("GET /mcp HTTP/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(
            head.contains("\r\nauthorization: Bearer gw-token\r\n"),
            "{head}"
        );
        assert!(
            !head.contains(&tokens::bearer("alice")),
            "client token forwarded: {head}"
        );
    }
}

#[tokio::test]
async fn a_stream_ending_with_the_connection_or_a_length_arrives_whole() {
    let (addr, _heads) = raw_gateway(Script {
        writes: vec![
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: a\n\n".to_vec(),
            b"data: b\n\n".to_vec(),
        ],
        pause: Duration::from_millis(50),
        hold: false,
    })
    .await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    let c = fd.client(Proto::H1);
    let text = body_text(c.send(stream_request(&c)).await).await.unwrap();
    assert_eq!(text, "data: a\n\ndata: b\n\n");

    // Bytes past the length are not part of the answer.
    let (addr, _heads) = raw_gateway(Script::closes(
        "HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnopeEXTRA",
    ))
    .await;
    let fd = Frontdoor::before_raw_gateway(addr).await;
    let c = fd.client(Proto::H1);
    let resp = c.send(stream_request(&c)).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(body_text(resp).await.unwrap(), "nope");
}

#[tokio::test]
async fn a_gateway_breaking_its_own_framing_ends_the_stream_not_the_front_door() {
    const HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n";
    const CHUNKED: &str = "transfer-encoding: chunked\r\n\r\n9\r\ndata: x\n\n\r\n";
    for (script, why) in [
        (
            Script::holds(format!("{HEAD}{CHUNKED}zz\r\n")),
            "a chunk size that is not hex",
        ),
        (
            Script::holds(format!("{HEAD}{CHUNKED}fffffffffffffffff\r\n")),
            "a chunk size over 64 bits",
        ),
        (
            Script::closes(format!("{HEAD}content-length: 100\r\n\r\ndata: x\n\n")),
            "closed before its Content-Length",
        ),
    ] {
        let (addr, _heads) = raw_gateway(script).await;
        let fd = Frontdoor::before_raw_gateway(addr).await;
        let c = fd.client(Proto::H1);
        // The head may or may not have left before the break: either way the client sees a
        // cut exchange, never a stream that ended cleanly.
        let got = tokio::time::timeout(Duration::from_secs(5), async {
            let resp = c
                .try_send(stream_request(&c).body(empty()).unwrap())
                .await
                .map_err(|e| e.to_string())?;
            assert_eq!(resp.status(), 200, "{why}");
            body_text(resp).await
        })
        .await
        .unwrap_or_else(|_| panic!("{why}: the stream did not end"));
        assert!(
            got.is_err(),
            "{why}: the client must see a cut stream, got {got:?}"
        );
        still_serving(&fd).await;
    }
}

#[tokio::test]
async fn hostile_answer_heads_are_a_502_with_the_front_doors_own_words() {
    let many: String = (0..200).map(|i| format!("x-{i}: 1\r\n")).collect();
    for (script, why) in [
        (
            Script::holds(format!(
                "HTTP/1.1 200 OK\r\nx-big: {}\r\n",
                "a".repeat(70_000)
            )),
            "a head over 64 KiB",
        ),
        (
            Script::holds(format!("HTTP/1.1 200 OK\r\n{many}\r\n")),
            "200 header fields",
        ),
        (
            Script::holds("HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n"),
            "an upgrade nobody asked for",
        ),
        (
            Script::holds("HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n"),
            "two different lengths",
        ),
        (Script::closes(""), "closed before any answer"),
        (
            Script::holds("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
            "not HTTP at all",
        ),
    ] {
        let (addr, _heads) = raw_gateway(script).await;
        let fd = Frontdoor::before_raw_gateway(addr).await;
        let c = fd.client(Proto::H1);
        let resp = c.send(stream_request(&c)).await;
        assert_eq!(resp.status(), 502, "{why}");
        let body = body_json(resp).await;
        assert_eq!(reason(&body), "upstream_unavailable", "{why}: {body}");
        assert!(
            !body.to_string().contains("aaaa"),
            "{why}: gateway bytes in the answer"
        );
        still_serving(&fd).await;
    }
}

#[tokio::test]
async fn a_gateway_that_never_answers_is_a_504_after_the_response_timeout() {
    let (addr, _heads) = raw_gateway(Script::holds("")).await;
    let fd = Frontdoor::builder()
        .upstream(&format!("http://{addr}"))
        .gateways("response_timeout: 1s")
        .start()
        .await;
    let c = fd.client(Proto::H1);
    let resp = c.send(stream_request(&c)).await;
    assert_eq!(resp.status(), 504);
}

#[tokio::test]
async fn the_gateway_sees_the_stream_close_when_the_client_leaves() {
    let (closed_tx, mut closed) = mpsc::unbounded_channel::<()>();
    let closed_tx = std::sync::Arc::new(closed_tx);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                          transfer-encoding: chunked\r\n\r\n9\r\ndata: x\n\n\r\n",
                    )
                    .await;
                // Quiet from here: only the read sees the front door close its side.
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    let _ = closed_tx.send(());
                }
            });
        }
    });
    let fd = Frontdoor::before_raw_gateway(addr).await;
    for proto in [Proto::H1, Proto::H2] {
        let c = fd.client(proto);
        let mut resp = c.send(stream_request(&c)).await;
        resp.body_mut().frame().await.unwrap().unwrap();
        drop(resp);
        drop(c);
        tokio::time::timeout(Duration::from_secs(5), closed.recv())
            .await
            .unwrap_or_else(|_| {
                panic!("{proto:?}: gateway connection open 5 s after the client left")
            })
            .unwrap();
    }
}
