//! Handing a gateway its files: the init in the fresh container listens on the gateway's port
//! and takes them over one connection (format in `init/src/wire.rs`, shared with the init),
//! authenticated with the gateway's bearer token. No Docker API call, so no host file and no archive round trip
//! (Docker's archive API re-executes the daemon for every upload: ~65 ms per start).

use super::files::GatewayFile;
use std::io;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Why a delivery did not land.
#[derive(Debug)]
pub(super) enum DeliverError {
    /// Nobody listens yet (or any more): worth another try while the container runs.
    NotListening(io::Error),
    /// The init answered, or the connection broke mid-way.
    Failed(String),
}

// The init's own definition of the format; the reading half is the init's, hence the allow.
#[allow(dead_code)]
#[path = "../../init/src/wire.rs"]
mod wire;

/// The whole delivery as bytes (they hold secrets, hence `Zeroizing`).
fn encode(token: &str, files: &[GatewayFile]) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::new());
    let files = files
        .iter()
        .map(|f| (f.path.as_str(), f.mode, &f.contents[..]));
    wire::encode_into(&mut out, token, files);
    out
}

/// Sends the files to the init at `addr` and waits for its `ok`.
pub(super) async fn deliver(
    addr: &http::uri::Authority,
    token: &str,
    files: &[GatewayFile],
) -> Result<(), DeliverError> {
    let mut conn = TcpStream::connect(addr.as_str())
        .await
        .map_err(DeliverError::NotListening)?;
    let _ = conn.set_nodelay(true);
    conn.write_all(&encode(token, files))
        .await
        .map_err(before_answer)?;
    let mut answer = String::new();
    BufReader::new(&mut conn)
        .read_line(&mut answer)
        .await
        .map_err(before_answer)?;
    // Closing first leaves the TIME_WAIT here, not on the port the gateway binds next.
    drop(conn);
    match answer.trim_end() {
        "ok" => Ok(()),
        "" => Err(DeliverError::NotListening(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed without an answer",
        ))),
        other => Err(DeliverError::Failed(format!("the init said: {other}"))),
    }
}

/// A connection that broke before the init answered. With `reach: loopback` Docker's port
/// proxy accepts the connection for a container whose init is not listening yet and then
/// resets it (it closes with our delivery unread), so a reset is "not listening yet", worth
/// another try while the container runs; the readiness loop bounds the tries.
fn before_answer(e: io::Error) -> DeliverError {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => DeliverError::NotListening(e),
        _ => DeliverError::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    /// What Docker's port proxy does while the container's init is not listening yet: accept,
    /// then reset.
    #[tokio::test]
    async fn a_connection_reset_before_the_answer_is_not_listening_yet() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: http::uri::Authority =
            listener.local_addr().unwrap().to_string().parse().unwrap();
        let proxy = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            #[allow(deprecated)]
            conn.set_linger(Some(std::time::Duration::ZERO)).unwrap();
            drop(conn);
        });
        let r = deliver(&addr, "tok", &[]).await;
        proxy.await.unwrap();
        assert!(matches!(r, Err(DeliverError::NotListening(_))), "{r:?}");
        // An answer that is not `ok` is a failure, not a retry.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: http::uri::Authority =
            listener.local_addr().unwrap().to_string().parse().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            conn.write_all(b"bad token\n").await.unwrap();
        });
        let r = deliver(&addr, "tok", &[]).await;
        assert!(
            matches!(&r, Err(DeliverError::Failed(m)) if m.contains("bad token")),
            "{r:?}"
        );
    }

    #[test]
    fn what_is_sent_is_what_the_init_reads() {
        let files = [GatewayFile {
            path: "/a/s.env".into(),
            contents: Zeroizing::new(b"k=v\n".to_vec()),
            mode: 0o400,
        }];
        let bytes = encode("tok", &files);
        let read = wire::read_delivery(&mut &bytes[..], "tok").unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].path.as_str(), read[0].mode), ("/a/s.env", 0o400));
        assert_eq!(read[0].contents, b"k=v\n");
    }
}
