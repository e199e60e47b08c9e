//! Connections to a contender: plain TCP or TLS (rustls, HTTP/1.1 only, trusting the bench
//! certificate), and the HTTP/1.1 client handshake on top.

use crate::Target;
use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A parsed [`Target`]: address, TLS, headers.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: String,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub host: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Endpoint {
    pub fn new(t: &Target) -> anyhow::Result<Self> {
        let (tls, rest) = if let Some(r) = t.base.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = t.base.strip_prefix("http://") {
            (false, r)
        } else {
            bail!("--base must start with http:// or https://");
        };
        let addr = rest.trim_end_matches('/').to_string();
        let tls = if tls {
            let ca = t.ca.as_ref().context("https needs --ca")?;
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem) {
                roots.add(c?)?;
            }
            let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
            cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(t.sni.clone()).map_err(|e| anyhow!("--sni: {e}"))?;
            Some((TlsConnector::from(Arc::new(cfg)), name))
        } else {
            None
        };
        let mut headers = Vec::new();
        for h in &t.headers {
            let (k, v) = h
                .split_once(':')
                .with_context(|| format!("header `{h}` needs `Name: value`"))?;
            headers.push((k.trim().parse()?, v.trim().parse()?));
        }
        Ok(Self {
            host: t.sni.clone(),
            addr,
            tls,
            headers,
        })
    }

    /// TCP connect (+ TLS handshake).
    pub async fn connect(&self) -> io::Result<Stream> {
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some((connector, name)) => Ok(Stream::Tls(Box::new(
                connector.connect(name.clone(), tcp).await?,
            ))),
        }
    }

    /// A request with the target's headers and `Host`.
    pub fn request(&self, method: &http::Method, path: &str) -> http::request::Builder {
        let mut b = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(http::header::HOST, &self.host);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b
    }
}

/// HTTP/1.1 client over a fresh connection; the connection task is spawned.
pub async fn handshake(stream: Stream) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(send)
}

/// Plain or TLS client stream.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The next connection of a bench server, with Nagle off; accept errors (out of descriptors,
/// mostly) are logged and retried after a pause instead of ending the server.
pub async fn accept(listener: &tokio::net::TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let _ = tcp.set_nodelay(true);
                return tcp;
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}
