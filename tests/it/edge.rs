//! The edge under abuse: silent and idle connections are closed by their deadlines, the
//! connection cap keeps room for health checks and users, the per-address cap refuses the
//! next connection from a busy address, and the metrics count each.

use crate::support::client::tls_config;
use crate::support::{tokens, Frontdoor, TestUpstream};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Waits until the peer closes the connection (EOF or reset); the time it took, or `None`
/// when it was still open after `within`.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    within: Duration,
) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(within, read_all)
        .await
        .ok()
        .map(|_| t.elapsed())
}

async fn tls_connect(fd: &Frontdoor, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut cfg = tls_config(fd.ca_pem.as_deref().unwrap());
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = TcpStream::connect(fd.addr).await.unwrap();
    connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// A counter or gauge sample from the metrics text (0 when absent).
pub async fn sample(fd: &Frontdoor, series: &str) -> f64 {
    let text = fd.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn closed_metric(reason: &str) -> String {
    format!("mcp_frontdoor_connections_closed_total{{listener=\"public\",reason=\"{reason}\"}}")
}

async fn wait_open(fd: &Frontdoor, n: f64) {
    let series = "mcp_frontdoor_connections_open{listener=\"public\"}";
    for _ in 0..100 {
        if sample(fd, series).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{series} never reached {n}: {}", fd.metrics_text().await);
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed_by_their_deadlines() {
    let fd = Frontdoor::builder()
        .server("tls_handshake_timeout: 1s")
        .server("first_request_timeout: 1500ms")
        .server("idle_timeout: 1s")
        .start()
        .await;
    let limit = Duration::from_secs(4);
    // Never a byte: the handshake deadline (from accept).
    let mut silent_tcp = Vec::new();
    for _ in 0..3 {
        silent_tcp.push(TcpStream::connect(fd.addr).await.unwrap());
    }
    // Handshaken, then nothing: the first-request deadline, for h1 and for an h2 connection
    // that sends its preface and settings but opens no stream.
    let mut silent_tls = Vec::new();
    for _ in 0..3 {
        silent_tls.push(tls_connect(&fd, b"http/1.1").await);
    }
    let mut h2 = tls_connect(&fd, b"h2").await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // One request, then idle on a keep-alive connection: the idle deadline.
    let mut idle = tls_connect(&fd, b"http/1.1").await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 12];
    idle.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    for s in &mut silent_tcp {
        let t = closed_within(s, limit)
            .await
            .expect("silent TCP still open");
        assert!(t < Duration::from_millis(1500), "{t:?}");
    }
    for s in &mut silent_tls {
        closed_within(s, limit)
            .await
            .expect("silent TLS still open");
    }
    closed_within(&mut h2, limit)
        .await
        .expect("h2 without a stream still open");
    closed_within(&mut idle, limit)
        .await
        .expect("idle keep-alive still open");
    assert_eq!(sample(&fd, &closed_metric("handshake_timeout")).await, 3.0);
    assert_eq!(
        sample(&fd, &closed_metric("first_request_timeout")).await,
        4.0
    );
    assert_eq!(sample(&fd, &closed_metric("idle_timeout")).await, 1.0);
    wait_open(&fd, 0.0).await;

    // Plain HTTP has no handshake: a silent connection meets the first-request deadline.
    let plain = Frontdoor::builder()
        .plain()
        .server("first_request_timeout: 1s")
        .start()
        .await;
    let mut s = TcpStream::connect(plain.addr).await.unwrap();
    let t = closed_within(&mut s, limit)
        .await
        .expect("silent plain still open");
    assert!(
        t >= Duration::from_millis(900),
        "closed before its deadline: {t:?}"
    );
    assert_eq!(
        sample(&plain, &closed_metric("first_request_timeout")).await,
        1.0
    );
}

/// An h1 connection of its own that made one authenticated request and stays open.
async fn user_connection(
    fd: &Frontdoor,
    sub: &str,
) -> hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>> {
    let tcp = TcpStream::connect(fd.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    user_request(&mut send, sub).await;
    send
}

async fn user_request(
    send: &mut hyper::client::conn::http1::SendRequest<Empty<bytes::Bytes>>,
    sub: &str,
) {
    let req = http::Request::get("/mcp")
        .header("host", "127.0.0.1")
        .header("authorization", tokens::bearer(sub))
        .body(Empty::new())
        .unwrap();
    let resp = send.send_request(req).await.expect("user request");
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
}

#[tokio::test]
async fn at_the_cap_health_checks_and_users_get_in_and_only_then_is_a_connection_refused() {
    let up = TestUpstream::json().await;
    let fd = Frontdoor::builder()
        .plain()
        .upstream(&up.url())
        .server("max_connections: 4")
        .server("reserved_connections: 1")
        .server("first_request_timeout: 30s")
        .server("reserve_first_request_timeout: 30s")
        .start()
        .await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(fd.addr).await.unwrap());
        // Accepted in this order, so the oldest is evicted first.
        wait_open(&fd, silent.len() as f64).await;
    }
    // The cap is full of silent connections: a probe gets in, the oldest silent one goes.
    let c = fd.client(crate::support::Proto::H1);
    let resp = c.send(c.req("GET", "/healthz")).await;
    assert_eq!(resp.status(), 200);
    drop(resp);
    drop(c);
    closed_within(&mut silent[0], Duration::from_secs(2))
        .await
        .expect("the oldest silent connection was evicted");
    // Users get in the same way, and keep their connections.
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(user_connection(&fd, &format!("user{i}")).await);
    }
    for s in &mut silent[1..] {
        closed_within(s, Duration::from_secs(2))
            .await
            .expect("silent connections made room");
    }
    // Now every slot is a user's: the next connection is accepted and closed at once.
    let mut extra = TcpStream::connect(fd.addr).await.unwrap();
    closed_within(&mut extra, Duration::from_secs(2))
        .await
        .expect("over the cap: closed at once");
    for (i, u) in users.iter_mut().enumerate() {
        user_request(u, &format!("user{i}")).await;
    }
    // The metrics listener is not part of the public cap.
    let health = reqwest_like_get(fd.metrics_addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(sample(&fd, &closed_metric("evicted")).await >= 4.0);
    assert_eq!(sample(&fd, &closed_metric("over_capacity")).await, 1.0);
}

/// One plain GET on a fresh connection; the raw response text.
async fn reqwest_like_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn the_per_address_cap_refuses_the_next_connection_from_that_address() {
    let fd = Frontdoor::builder()
        .plain()
        .server("max_connections_per_address: 2")
        .server("first_request_timeout: 30s")
        .start()
        .await;
    let from = |ip: [u8; 4]| {
        let addr = fd.addr;
        async move {
            let sock = TcpSocket::new_v4().unwrap();
            sock.bind((std::net::Ipv4Addr::from(ip), 0).into()).unwrap();
            sock.connect(addr).await.unwrap()
        }
    };
    let _a1 = from([127, 0, 0, 1]).await;
    let _a2 = from([127, 0, 0, 1]).await;
    wait_open(&fd, 2.0).await;
    let mut a3 = from([127, 0, 0, 1]).await;
    closed_within(&mut a3, Duration::from_secs(2))
        .await
        .expect("the third from one address is closed at once");
    // Another address is not affected.
    let mut b1 = from([127, 0, 0, 2]).await;
    assert!(
        closed_within(&mut b1, Duration::from_millis(500))
            .await
            .is_none(),
        "another address gets in"
    );
    assert_eq!(sample(&fd, &closed_metric("per_address")).await, 1.0);
}
