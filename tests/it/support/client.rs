//! A real HTTP client: HTTP/1.1 or HTTP/2 (ALPN), trusting only the test certificate.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;

pub type ReqBody = BoxBody<Bytes, std::io::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

/// A client bound to one front door.
#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, ReqBody>,
    base: String,
}

/// TLS client config trusting exactly `ca_pem` (hyper-rustls sets ALPN from the protocols
/// enabled on the connector).
pub fn tls_config(ca_pem: &[u8]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}

impl Client {
    /// `base` is `https://localhost:port` or `http://127.0.0.1:port`.
    pub fn new(base: &str, ca_pem: Option<&[u8]>, proto: Proto) -> Self {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = builder
            .with_tls_config(tls_config(ca_pem.unwrap_or_default()))
            .https_or_http();
        let https = match proto {
            Proto::H1 => builder.enable_http1().build(),
            Proto::H2 => builder.enable_http2().build(),
        };
        let mut b = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        if proto == Proto::H2 {
            b.http2_only(true);
        }
        Self {
            inner: b.build(https),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request builder for `path` on the front door.
    pub fn req(&self, method: &str, path: &str) -> http::request::Builder {
        Request::builder().method(method).uri(self.url(path))
    }

    /// Sends a request with an empty body.
    pub async fn send(&self, req: http::request::Builder) -> Response<Incoming> {
        self.try_send(req.body(empty()).unwrap())
            .await
            .expect("request failed")
    }

    /// Sends a request with `body`.
    pub async fn send_body(
        &self,
        req: http::request::Builder,
        body: impl Into<Bytes>,
    ) -> Response<Incoming> {
        self.try_send(req.body(full(body)).unwrap())
            .await
            .expect("request failed")
    }

    /// Sends any request; errors are returned, not unwrapped.
    pub async fn try_send(
        &self,
        req: Request<ReqBody>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.inner.request(req).await
    }

    /// GET `path` with `Authorization: Bearer <token of sub>`.
    pub async fn get_as(&self, sub: &str, path: &str) -> Response<Incoming> {
        self.send(
            self.req("GET", path)
                .header("authorization", super::tokens::bearer(sub)),
        )
        .await
    }
}

pub fn empty() -> ReqBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(b: impl Into<Bytes>) -> ReqBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}
