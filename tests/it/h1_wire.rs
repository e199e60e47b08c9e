//! The public listener's HTTP/1.1 as a raw TCP (or TLS) client sees it: pipelining, keep-alive,
//! the refusals that keep a request from being smuggled past the front door, malformed heads,
//! the head limits, `Expect: 100-continue`, chunked request bodies, and a client that leaves
//! mid-request. Every answer is read with a deadline ([`WAIT`]) and parsed from the bytes
//! (status line and fields with httparse, the body by its length or its chunks), so a server
//! that answers twice, not at all, or keeps a connection it must close fails the test.

use crate::support::client::tls_config;
use crate::support::frontdoor::FrontdoorBuilder;
use crate::support::upstream::full;
use crate::support::{tokens, Frontdoor, TestUpstream};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest a test waits for an answer or a close.
const WAIT: Duration = Duration::from_secs(5);

/// How the client reaches the public listener.
#[derive(Debug, Clone, Copy)]
enum Wire {
    Plain,
    /// TLS with ALPN `http/1.1`.
    Tls,
}

/// For each `check(wire)`, a module of that name with the tests `plain` and `tls`.
macro_rules! on_both_wires {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test]
            async fn plain() {
                super::$check(super::Wire::Plain).await
            }

            #[tokio::test]
            async fn tls() {
                super::$check(super::Wire::Tls).await
            }
        }
    )*};
}

/// A front door serving `wire`.
fn builder(wire: Wire) -> FrontdoorBuilder {
    match wire {
        Wire::Plain => Frontdoor::builder().plain(),
        Wire::Tls => Frontdoor::builder(),
    }
}

/// A [`Gateway`] and a front door on `wire` that sends every user to it.
async fn behind_gateway(wire: Wire) -> (Gateway, Frontdoor) {
    let gw = Gateway::start().await;
    let fd = builder(wire).upstream(&gw.up.url()).start().await;
    (gw, fd)
}

/// A gateway that reads every request body whole and answers `{method, path, body}` in JSON
/// (`/slow` only after a minute).
struct Gateway {
    up: TestUpstream,
    /// The bodies it read to their end, in order.
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Gateway {
    async fn start() -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let up = TestUpstream::start(move |req: http::Request<hyper::body::Incoming>| {
            let kept = kept.clone();
            async move {
                let (parts, body) = req.into_parts();
                if parts.uri.path() == "/slow" {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                let Ok(body) = body.collect().await else {
                    return http::Response::builder()
                        .status(400)
                        .body(full("the body broke off"))
                        .unwrap();
                };
                let body = body.to_bytes().to_vec();
                kept.lock().push(body.clone());
                let echo = json!({
                    "method": parts.method.as_str(),
                    "path": parts.uri.path(),
                    "body": String::from_utf8_lossy(&body),
                });
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(full(echo.to_string()))
                    .unwrap()
            }
        })
        .await;
        Self { up, bodies }
    }

    /// The paths of the requests that reached it (their heads), in order.
    fn paths(&self) -> Vec<String> {
        self.up
            .seen()
            .iter()
            .map(|s| s.uri.path().to_string())
            .collect()
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().clone()
    }
}

/// alice's `Authorization` field.
fn auth() -> String {
    format!("authorization: {}", tokens::bearer("alice"))
}

/// A request head: `line`, a `host` field, `fields`, the blank line.
fn head(line: &str, fields: &[&str]) -> String {
    let mut h = format!("{line}\r\nhost: localhost\r\n");
    for f in fields {
        h.push_str(f);
        h.push_str("\r\n");
    }
    h.push_str("\r\n");
    h
}

/// An HTTP/1.1 GET of `path` without a body.
fn get(path: &str) -> String {
    head(&format!("GET {path} HTTP/1.1"), &[])
}

/// alice's HTTP/1.1 GET of `path` (to the gateway).
fn authed_get(path: &str) -> String {
    head(&format!("GET {path} HTTP/1.1"), &[&auth()])
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One answer as it came off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The status line and fields, for failure messages.
    head: String,
    /// Names in lower case.
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it says `connection: close`.
    fn says_close(&self) -> bool {
        self.field("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", self.head, lossy(&self.body)))
    }
}

/// The answer at the start of `buf` and the bytes it took; `None` while incomplete. The answer
/// to a HEAD request (`to_head`), a 1xx, 204 and 304 have no body; otherwise the body is framed
/// by chunks, by its length, or by the close (`closed`: the server closed the connection).
fn parse(buf: &[u8], to_head: bool, closed: bool) -> Result<Option<(Answer, usize)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut fields);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("not an HTTP/1.x answer ({e})")),
    };
    let status = resp.code.unwrap_or_default();
    let mut answer = Answer {
        status,
        head: lossy(&buf[..n]),
        fields: resp
            .headers
            .iter()
            .map(|h| (h.name.to_ascii_lowercase(), lossy(h.value)))
            .collect(),
        body: Vec::new(),
    };
    let rest = &buf[n..];
    if to_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some((answer, n)));
    }
    let chunked = answer
        .field("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return Ok(dechunk(rest)?.map(|(body, used)| {
            answer.body = body;
            (answer, n + used)
        }));
    }
    if let Some(len) = answer.field("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| format!("content-length {len:?}"))?;
        return Ok(rest.get(..len).map(|body| {
            answer.body = body.to_vec();
            (answer, n + len)
        }));
    }
    Ok(closed.then(|| {
        answer.body = rest.to_vec();
        (answer, buf.len())
    }))
}

/// The chunked body at the start of `buf`: its data and the bytes it took (trailer fields
/// included); `None` while incomplete.
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, String> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (used, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(c)) => c,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(format!("bad chunk size at {:?}", lossy(&buf[at..]))),
        };
        at += used;
        if size == 0 {
            break;
        }
        let size = usize::try_from(size).map_err(|e| e.to_string())?;
        let Some(chunk) = buf.get(at..at + size + 2) else {
            return Ok(None);
        };
        if !chunk.ends_with(b"\r\n") {
            return Err("a chunk without its CRLF".into());
        }
        body.extend_from_slice(&chunk[..size]);
        at += size + 2;
    }
    loop {
        let Some(eol) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        at += eol + 2;
        if eol == 0 {
            return Ok(Some((body, at)));
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw client connection: bytes out, answers parsed from the bytes that come back.
struct Conn {
    io: Box<dyn Io>,
    /// Read and not yet taken by an answer.
    buf: Vec<u8>,
    /// The server closed the connection (EOF or reset).
    closed: bool,
}

impl Conn {
    async fn open(fd: &Frontdoor, wire: Wire) -> Self {
        let tcp = TcpStream::connect(fd.addr).await.unwrap();
        let io: Box<dyn Io> = match wire {
            Wire::Plain => Box::new(tcp),
            Wire::Tls => {
                let mut cfg = tls_config(fd.ca_pem.as_deref().expect("a TLS front door"));
                cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
                let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
                    .connect("localhost".try_into().unwrap(), tcp)
                    .await
                    .expect("TLS handshake");
                Box::new(tls)
            }
        };
        Self {
            io,
            buf: Vec::new(),
            closed: false,
        }
    }

    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.io
            .write_all(bytes.as_ref())
            .await
            .expect("write (did the server close the connection?)");
        self.io.flush().await.expect("flush");
    }

    /// As [`Conn::send`], for bytes the server may stop reading (it answers and closes first).
    async fn send_lenient(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.io.write_all(bytes.as_ref()).await;
        let _ = self.io.flush().await;
    }

    /// One read into `buf`, or the close.
    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        match self.io.read(&mut chunk).await {
            Ok(0) => self.closed = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            // A close with unread bytes is a reset; a TLS peer's close without close_notify
            // is an unexpected EOF.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                        | ErrorKind::BrokenPipe
                ) =>
            {
                self.closed = true
            }
            Err(e) => panic!("read: {e}"),
        }
    }

    /// The next answer (to a HEAD request: `to_head`), or `None` when the server closed the
    /// connection before its first byte. Panics after [`WAIT`] or on bytes that are no answer.
    async fn next(&mut self, to_head: bool) -> Option<Answer> {
        let read = async {
            loop {
                match parse(&self.buf, to_head, self.closed)? {
                    Some((answer, used)) => {
                        self.buf.drain(..used);
                        return Ok(Some(answer));
                    }
                    None if self.closed && self.buf.is_empty() => return Ok(None),
                    None if self.closed => return Err("closed mid-answer".to_string()),
                    None => self.fill().await,
                }
            }
        };
        let r = tokio::time::timeout(WAIT, read).await;
        match r {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => panic!("{e}: {:?}", lossy(&self.buf)),
            Err(_) => panic!(
                "no complete answer within {WAIT:?}; got {:?}",
                lossy(&self.buf)
            ),
        }
    }

    /// The answer to a request other than HEAD.
    async fn answer(&mut self) -> Answer {
        self.next(false)
            .await
            .expect("the connection closed instead of an answer")
    }

    /// The answer to a HEAD request.
    async fn answer_to_head(&mut self) -> Answer {
        self.next(true)
            .await
            .expect("the connection closed instead of an answer")
    }

    /// Asserts that the server closes the connection within [`WAIT`] and sends nothing more.
    async fn expect_close(&mut self, what: &str) {
        let read = async {
            while !self.closed {
                self.fill().await;
            }
        };
        let r = tokio::time::timeout(WAIT, read).await;
        assert!(
            self.buf.is_empty(),
            "{what}: more after the answer: {:?}",
            lossy(&self.buf)
        );
        assert!(r.is_ok(), "{what}: still open after {WAIT:?}");
    }
}

/// What a refused request gets: exactly one answer, with `status`, then the close; so a request
/// written behind it is never answered.
async fn assert_refused(c: &mut Conn, status: u16, what: &str) {
    let a = c
        .next(false)
        .await
        .unwrap_or_else(|| panic!("{what}: closed without an answer"));
    assert_eq!(a.status, status, "{what}: {}{}", a.head, lossy(&a.body));
    c.expect_close(what).await;
}

/// alice's POST to the gateway with `fields` and then `body`, and another request of hers
/// smuggled right behind it in the same write: one 400, the close, and nothing reaches the
/// gateway (the smuggled request least of all).
async fn smuggling_is_refused(wire: Wire, line: &str, fields: &[&str], body: &str) {
    let (gw, fd) = behind_gateway(wire).await;
    let mut c = Conn::open(&fd, wire).await;
    let auth = auth();
    let mut all = vec![auth.as_str()];
    all.extend(fields);
    c.send(format!(
        "{}{body}{}",
        head(line, &all),
        authed_get("/smuggled")
    ))
    .await;
    let what = format!("{line} {fields:?}");
    assert_refused(&mut c, 400, &what).await;
    assert!(
        gw.paths().is_empty(),
        "{what}: the gateway was sent {:?}",
        gw.paths()
    );
}

/// A POST with `Content-Length: value` (and a body of five bytes) is refused.
async fn content_length_is_refused(value: &str) {
    smuggling_is_refused(
        Wire::Plain,
        "POST /rpc HTTP/1.1",
        &[&format!("content-length: {value}")],
        "hello",
    )
    .await
}

/// A chunked POST to the gateway whose chunk-size line is `size`: at most one answer, an error,
/// then the close; the GET written behind it is never answered and the gateway never gets a
/// whole body.
async fn bad_chunk_size_is_not_served(size: &str) {
    bad_chunked_body_is_not_served(&format!("{size}\r\nhello\r\n0\r\n\r\n")).await
}

/// The same for a whole chunked `body` that breaks the framing somewhere.
async fn bad_chunked_body_is_not_served(body: &str) {
    let (gw, fd) = behind_gateway(Wire::Plain).await;
    let mut c = Conn::open(&fd, Wire::Plain).await;
    c.send(format!(
        "{}{body}{}",
        head(
            "POST /rpc HTTP/1.1",
            &[&auth(), "transfer-encoding: chunked"]
        ),
        authed_get("/smuggled")
    ))
    .await;
    let what = format!("chunked body {body:?}");
    if let Some(a) = c.next(false).await {
        assert!(a.status >= 400, "{what}: {}{}", a.head, lossy(&a.body));
    }
    c.expect_close(&what).await;
    assert!(
        gw.bodies().is_empty(),
        "{what}: the gateway read {:?}",
        gw.bodies()
    );
    assert!(!gw.paths().contains(&"/smuggled".to_string()), "{what}");
}

/// `raw` (a head the listener must not parse), then a GET behind it: one 400, then the close.
async fn malformed_head_is_refused(raw: &str) {
    let fd = builder(Wire::Plain).start().await;
    let mut c = Conn::open(&fd, Wire::Plain).await;
    c.send(format!("{raw}{}", get("/healthz"))).await;
    assert_refused(&mut c, 400, &format!("{raw:?}")).await;
}

/// Waits (up to [`WAIT`]) until `ready` holds.
async fn until(what: &str, ready: impl Fn() -> bool) {
    for _ in 0..(WAIT.as_millis() / 20) {
        if ready() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within {WAIT:?}");
}

// 1. Pipelining.

/// Requests written in one go are answered in order on the one connection; the answer to a
/// HEAD carries no body, so the answer after it parses.
async fn pipelined_requests_are_answered_in_order(wire: Wire) {
    let (_gw, fd) = behind_gateway(wire).await;
    let mut c = Conn::open(&fd, wire).await;
    for paths in [&["/one", "/two"][..], &["/a", "/b", "/c"]] {
        c.send(paths.iter().map(|p| authed_get(p)).collect::<String>())
            .await;
        for p in paths {
            let a = c.answer().await;
            assert_eq!(a.status, 200, "{}", a.head);
            assert_eq!(a.json()["path"], *p, "answers in the order asked");
        }
    }
    // HEAD of the front door's own path and of a gateway's, each followed by a GET.
    c.send(format!(
        "{}{}{}{}",
        head("HEAD /healthz HTTP/1.1", &[]),
        get("/healthz"),
        head("HEAD /head HTTP/1.1", &[&auth()]),
        authed_get("/after-head"),
    ))
    .await;
    let a = c.answer_to_head().await;
    assert_eq!(a.status, 200, "{}", a.head);
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["status"], "ok");
    let a = c.answer_to_head().await;
    assert_eq!(a.status, 200, "{}", a.head);
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["path"], "/after-head");
}

// 2. Keep-alive.

async fn http11_keeps_the_connection_by_default(wire: Wire) {
    let fd = builder(wire).start().await;
    let mut c = Conn::open(&fd, wire).await;
    for _ in 0..2 {
        c.send(get("/healthz")).await;
        let a = c.answer().await;
        assert_eq!(a.status, 200, "{}", a.head);
        assert!(!a.says_close(), "{}", a.head);
        // The next request comes a little later, not in the same breath.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn connection_close_from_the_client_is_answered_then_closed(wire: Wire) {
    let fd = builder(wire).start().await;
    let mut c = Conn::open(&fd, wire).await;
    c.send(head("GET /healthz HTTP/1.1", &["connection: close"]))
        .await;
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}", a.head);
    assert!(a.says_close(), "the answer says close: {}", a.head);
    c.expect_close("after `connection: close`").await;
}

async fn http10_without_keep_alive_is_answered_then_closed(wire: Wire) {
    let fd = builder(wire).start().await;
    let mut c = Conn::open(&fd, wire).await;
    c.send(head("GET /healthz HTTP/1.0", &[])).await;
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["status"], "ok");
    c.expect_close("after an HTTP/1.0 request").await;
}

async fn http10_with_keep_alive_keeps_the_connection(wire: Wire) {
    let fd = builder(wire).start().await;
    let mut c = Conn::open(&fd, wire).await;
    for _ in 0..2 {
        c.send(head("GET /healthz HTTP/1.0", &["connection: keep-alive"]))
            .await;
        let a = c.answer().await;
        assert_eq!(a.status, 200, "{}", a.head);
        assert_eq!(a.json()["status"], "ok");
    }
}

// 3. Request smuggling.

async fn content_length_with_transfer_encoding_is_refused(wire: Wire) {
    smuggling_is_refused(
        wire,
        "POST /rpc HTTP/1.1",
        &["content-length: 5", "transfer-encoding: chunked"],
        "0\r\n\r\n",
    )
    .await
}

#[tokio::test]
async fn transfer_encoding_with_content_length_first_is_refused() {
    smuggling_is_refused(
        Wire::Plain,
        "POST /rpc HTTP/1.1",
        &["transfer-encoding: chunked", "content-length: 5"],
        "0\r\n\r\n",
    )
    .await
}

#[tokio::test]
async fn transfer_encoding_not_ending_in_chunked_is_refused() {
    smuggling_is_refused(
        Wire::Plain,
        "POST /rpc HTTP/1.1",
        &["transfer-encoding: gzip"],
        "hello",
    )
    .await
}

#[tokio::test]
async fn transfer_encoding_on_http10_is_refused() {
    smuggling_is_refused(
        Wire::Plain,
        "POST /rpc HTTP/1.0",
        &["transfer-encoding: chunked"],
        "5\r\nhello\r\n0\r\n\r\n",
    )
    .await
}

#[tokio::test]
async fn content_length_not_a_number_is_refused() {
    content_length_is_refused("abc").await
}

#[tokio::test]
async fn content_length_with_a_plus_sign_is_refused() {
    content_length_is_refused("+5").await
}

#[tokio::test]
async fn content_length_negative_is_refused() {
    content_length_is_refused("-1").await
}

#[tokio::test]
async fn content_length_of_two_numbers_is_refused() {
    content_length_is_refused("5 5").await
}

#[tokio::test]
async fn content_length_list_of_different_values_is_refused() {
    content_length_is_refused("1,2").await
}

#[tokio::test]
async fn two_different_content_lengths_are_refused() {
    smuggling_is_refused(
        Wire::Plain,
        "POST /rpc HTTP/1.1",
        &["content-length: 5", "content-length: 6"],
        "hello",
    )
    .await
}

#[tokio::test]
async fn two_equal_content_lengths_are_accepted() {
    let (gw, fd) = behind_gateway(Wire::Plain).await;
    let mut c = Conn::open(&fd, Wire::Plain).await;
    c.send(format!(
        "{}hello",
        head(
            "POST /rpc HTTP/1.1",
            &[&auth(), "content-length: 5", "content-length: 5"]
        )
    ))
    .await;
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}{}", a.head, lossy(&a.body));
    assert_eq!(a.json()["body"], "hello");
    assert_eq!(gw.bodies(), vec![b"hello".to_vec()]);
}

#[tokio::test]
async fn chunk_size_not_hex_is_not_served() {
    bad_chunk_size_is_not_served("zz").await
}

#[tokio::test]
async fn chunk_size_overflowing_is_not_served() {
    bad_chunk_size_is_not_served("ffffffffffffffffffff").await
}

/// Lines ended by a bare LF (or a CR and something else) are read differently by different
/// servers; a body framed with them is refused, not guessed at.
#[tokio::test]
async fn chunked_lines_not_ended_by_crlf_are_not_served() {
    for body in [
        "5\nhello\n0\n\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\rXhello\r\n0\r\n\r\n",
        "5;ext\nhello\r\n0\r\n\r\n",
        "5\r\nhello\r\n0\r\nx-t: 1\n\r\n",
    ] {
        bad_chunked_body_is_not_served(body).await
    }
}

// 4. Malformed heads.

#[tokio::test]
async fn space_before_a_field_colon_is_refused() {
    malformed_head_is_refused("GET /healthz HTTP/1.1\r\nhost: localhost\r\nFoo : bar\r\n\r\n").await
}

#[tokio::test]
async fn obs_fold_continuation_line_is_refused() {
    malformed_head_is_refused(
        "GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-folded: a\r\n  b\r\n\r\n",
    )
    .await
}

#[tokio::test]
async fn request_target_with_spaces_is_refused() {
    malformed_head_is_refused("GET /a b c HTTP/1.1\r\nhost: localhost\r\n\r\n").await
}

// 5. Head limits.

async fn head_over_64_kib_gets_431_and_the_close(wire: Wire) {
    let fd = builder(wire).start().await;
    let mut c = Conn::open(&fd, wire).await;
    let big = format!("x-big: {}", "a".repeat(70_000));
    c.send_lenient(head("GET /healthz HTTP/1.1", &[&big])).await;
    assert_refused(&mut c, 431, "a 70 000-byte field").await;
}

async fn head_with_120_fields_gets_431_and_the_close(wire: Wire) {
    let fd = builder(wire).start().await;
    let mut c = Conn::open(&fd, wire).await;
    let fields: Vec<String> = (0..120).map(|i| format!("x-field-{i}: {i}")).collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    c.send_lenient(head("GET /healthz HTTP/1.1", &fields)).await;
    assert_refused(&mut c, 431, "120 fields").await;
}

async fn head_of_16_kib_is_accepted(wire: Wire) {
    let fd = builder(wire).start().await;
    let mut c = Conn::open(&fd, wire).await;
    let fields: Vec<String> = (0..8)
        .map(|i| format!("x-field-{i}: {}", "a".repeat(2048)))
        .collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    c.send(head("GET /healthz HTTP/1.1", &fields)).await;
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}", a.head);
}

on_both_wires!(
    pipelined_requests_are_answered_in_order,
    http11_keeps_the_connection_by_default,
    connection_close_from_the_client_is_answered_then_closed,
    http10_without_keep_alive_is_answered_then_closed,
    http10_with_keep_alive_keeps_the_connection,
    content_length_with_transfer_encoding_is_refused,
    head_over_64_kib_gets_431_and_the_close,
    head_with_120_fields_gets_431_and_the_close,
    head_of_16_kib_is_accepted,
);

// 6. Expect: 100-continue.

const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

/// A POST of [`PING`] to `/mcp` that announces its body and waits to be asked for it.
fn expecting_post(fields: &[&str]) -> String {
    let len = format!("content-length: {}", PING.len());
    let mut all = vec![
        "content-type: application/json",
        "accept: application/json, text/event-stream",
        len.as_str(),
        "expect: 100-continue",
    ];
    all.extend(fields);
    head("POST /mcp HTTP/1.1", &all)
}

#[tokio::test]
async fn expect_100_continue_gets_100_before_the_body_is_sent() {
    let (gw, fd) = behind_gateway(Wire::Plain).await;
    let mut c = Conn::open(&fd, Wire::Plain).await;
    c.send(expecting_post(&[&auth()])).await;
    let first = c.next(false).await.expect("an answer before the body");
    assert_eq!(first.status, 100, "{}", first.head);
    c.send(PING).await;
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}{}", a.head, lossy(&a.body));
    assert_eq!(a.json()["body"], PING);
    assert_eq!(gw.bodies(), vec![PING.as_bytes().to_vec()]);
}

/// An API call refused before its body is wanted gets its final answer without a `100
/// Continue`; the client may then never send the body, so the connection closes after it.
/// (An unauthenticated `POST /mcp` is different: its body is read for the JSON-RPC id the
/// 401 echoes, so it gets the 100 first.)
#[tokio::test]
async fn expect_100_continue_refused_before_the_body_gets_its_answer_without_100() {
    let (gw, fd) = behind_gateway(Wire::Plain).await;
    let mut c = Conn::open(&fd, Wire::Plain).await;
    c.send(head(
        "PUT /api/v1/users/alice/catalogs HTTP/1.1",
        &[
            "content-type: application/json",
            "content-length: 2",
            "expect: 100-continue",
        ],
    ))
    .await;
    let first = c.next(false).await.expect("an answer without the body");
    assert_eq!(
        first.status,
        401,
        "the first answer: {}{}",
        first.head,
        lossy(&first.body)
    );
    c.expect_close("no 100 was sent, so the body may never come")
        .await;
    assert!(gw.paths().is_empty(), "{:?}", gw.paths());
}

// 7. Chunked request bodies.

#[tokio::test]
async fn chunked_body_with_a_trailer_reaches_the_gateway_whole() {
    let (gw, fd) = behind_gateway(Wire::Plain).await;
    let mut c = Conn::open(&fd, Wire::Plain).await;
    c.send(head(
        "POST /rpc HTTP/1.1",
        &[
            &auth(),
            "content-type: application/json",
            "transfer-encoding: chunked",
            "trailer: x-checksum",
        ],
    ))
    .await;
    let parts = [r#"{"part":"#, r#""one,"#, " two,", r#" three"}"#];
    for p in parts {
        c.send(format!("{:x}\r\n{p}\r\n", p.len())).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    c.send("0\r\nx-checksum: abc\r\n\r\n").await;
    let whole = parts.concat();
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}{}", a.head, lossy(&a.body));
    assert_eq!(a.json()["body"], whole.as_str());
    assert_eq!(gw.bodies(), vec![whole.into_bytes()]);
    // The connection goes on.
    c.send(get("/healthz")).await;
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}", a.head);
}

// 8. Clients that leave.

#[tokio::test]
async fn clients_gone_mid_request_leave_the_front_door_serving() {
    let (gw, fd) = behind_gateway(Wire::Plain).await;
    // One waits for a gateway that sits on its request, one stops halfway through its body.
    let mut waiting = Conn::open(&fd, Wire::Plain).await;
    waiting.send(authed_get("/slow")).await;
    let mut halfway = Conn::open(&fd, Wire::Plain).await;
    halfway
        .send(format!(
            "{}5\r\nhello\r\n",
            head(
                "POST /halfway HTTP/1.1",
                &[&auth(), "transfer-encoding: chunked"]
            )
        ))
        .await;
    until("both requests reached the gateway", || {
        let paths = gw.paths();
        paths.contains(&"/slow".to_string()) && paths.contains(&"/halfway".to_string())
    })
    .await;
    drop(waiting);
    drop(halfway);
    let mut c = Conn::open(&fd, Wire::Plain).await;
    c.send(get("/healthz")).await;
    assert_eq!(c.answer().await.status, 200);
    c.send(authed_get("/after")).await;
    let a = c.answer().await;
    assert_eq!(a.status, 200, "{}", a.head);
    assert_eq!(a.json()["path"], "/after");
    assert!(gw.bodies().iter().all(|b| b != b"hello"), "a cut body");
}
