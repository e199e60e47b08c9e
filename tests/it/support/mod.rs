//! The integration-test DSL: real upstream servers on 127.0.0.1:0, the real front door,
//! real HTTP/1.1 and HTTP/2 clients over real TLS.

pub mod client;
pub mod frontdoor;
pub mod tokens;
pub mod upstream;

pub use client::Proto;
pub use frontdoor::Frontdoor;
pub use upstream::TestUpstream;

/// Reads a response body to the end.
pub async fn body_bytes(resp: http::Response<hyper::body::Incoming>) -> bytes::Bytes {
    use http_body_util::BodyExt;
    resp.into_body().collect().await.expect("body").to_bytes()
}

/// Reads a JSON response body.
pub async fn body_json(resp: http::Response<hyper::body::Incoming>) -> serde_json::Value {
    let b = body_bytes(resp).await;
    serde_json::from_slice(&b)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&b)))
}
