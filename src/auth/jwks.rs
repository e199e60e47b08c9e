//! A JWKS fetched from a URL and refreshed in the background, plus on demand when a token
//! names a `kid` we have not seen (identity providers rotate keys without telling us).

use super::keys::{from_jwks, KeyError, VerifyKey};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A JWKS document bigger than this is refused (a key set is a few KiB).
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Unknown-`kid` refetches happen at most this often, so junk tokens can't hammer the IdP.
const MIN_REFETCH: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys from a remote JWKS endpoint.
pub struct RemoteJwks {
    url: http::Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    keys: RwLock<Arc<Vec<VerifyKey>>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl RemoteJwks {
    /// Prepares the client; nothing is fetched yet.
    pub fn new(url: &str) -> Result<Self, KeyError> {
        let invalid = |message: String| KeyError::Invalid {
            source_name: url.to_string(),
            message,
        };
        let uri: http::Uri = url.parse().map_err(|e| invalid(format!("bad URL: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| invalid(format!("TLS setup: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            url: uri,
            client: Client::builder(TokioExecutor::new()).build(https),
            keys: RwLock::new(Arc::new(Vec::new())),
            last_attempt: Mutex::new(None),
        })
    }

    /// The keys as of the last successful fetch.
    pub fn keys(&self) -> Arc<Vec<VerifyKey>> {
        self.keys.read().clone()
    }

    /// Fetches the document now and swaps the key set in on success.
    pub async fn fetch(&self) -> Result<usize, KeyError> {
        *self.last_attempt.lock() = Some(Instant::now());
        let name = self.url.to_string();
        let invalid = |message: String| KeyError::Invalid {
            source_name: name.clone(),
            message,
        };
        let req = http::Request::get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| invalid(e.to_string()))?;
        let resp = tokio::time::timeout(FETCH_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| invalid("timed out".into()))?
            .map_err(|e| invalid(format!("request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(invalid(format!("HTTP {}", resp.status())));
        }
        let body = tokio::time::timeout(
            FETCH_TIMEOUT,
            Limited::new(resp.into_body(), MAX_JWKS_BYTES).collect(),
        )
        .await
        .map_err(|_| invalid("timed out reading the body".into()))?
        .map_err(|e| invalid(format!("reading the body: {e}")))?
        .to_bytes();
        let keys = from_jwks(&body, &name)?;
        let n = keys.len();
        *self.keys.write() = Arc::new(keys);
        Ok(n)
    }

    /// Fetches again unless a fetch was attempted within [`MIN_REFETCH`]; true when it fetched.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        let due = self
            .last_attempt
            .lock()
            .is_none_or(|t| t.elapsed() >= MIN_REFETCH);
        if !due {
            return false;
        }
        match self.fetch().await {
            Ok(n) => {
                tracing::info!(url = %self.url, keys = n, "JWKS refetched for an unknown kid");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS refetch failed");
                false
            }
        }
    }

    /// Refreshes every `interval` (every 10 s while the last fetch failed) until cancelled.
    pub fn spawn_refresher(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut ok = !self.keys().is_empty();
            loop {
                let wait = if ok {
                    interval
                } else {
                    Duration::from_secs(10)
                };
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                match self.fetch().await {
                    Ok(n) => {
                        tracing::debug!(url = %self.url, keys = n, "JWKS refreshed");
                        ok = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
                        ok = false;
                    }
                }
            }
        });
    }
}
