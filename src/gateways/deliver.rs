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
    let failed = |e: io::Error| DeliverError::Failed(e.to_string());
    conn.write_all(&encode(token, files))
        .await
        .map_err(failed)?;
    let mut answer = String::new();
    BufReader::new(&mut conn)
        .read_line(&mut answer)
        .await
        .map_err(failed)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

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
