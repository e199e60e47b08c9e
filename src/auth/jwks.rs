//! A JWKS from a URL or a file, loaded again in the background, plus on demand when a token
//! names a `kid` we have not seen (identity providers rotate keys without telling us). A key
//! that disappears from the document stops verifying at once, cached tokens included (the
//! cache checks the key of each entry against the current set).

use super::keys::{from_jwks, KeyError, VerifyKey};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use parking_lot::{Mutex, RwLock};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// A JWKS document bigger than this is refused (a key set is a few KiB).
const MAX_JWKS_BYTES: usize = 1 << 20;
/// Unknown-`kid` reloads happen at most this often, so junk tokens can't hammer the IdP.
const MIN_REFETCH: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the document comes from.
enum Source {
    Url {
        url: http::Uri,
        // Boxed: one per front door, and the client is large next to a path.
        client: Box<Client<HttpsConnector<HttpConnector>, Empty<Bytes>>>,
    },
    File(PathBuf),
}

/// A key set that is loaded again from its source.
pub struct Jwks {
    source: Source,
    /// The URL or path, for messages.
    name: String,
    keys: RwLock<Arc<Vec<VerifyKey>>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl Jwks {
    /// Keys from `url`; nothing is fetched yet. Plain `http://` only with `allow_http` (the
    /// config refuses it otherwise; the connector refuses it here too).
    pub fn url(url: &str, allow_http: bool) -> Result<Self, KeyError> {
        let invalid = |message: String| KeyError::Invalid {
            source_name: url.to_string(),
            message,
        };
        let uri: http::Uri = url.parse().map_err(|e| invalid(format!("bad URL: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| invalid(format!("TLS setup: {e}")))?;
        let https = if allow_http {
            builder.https_or_http().enable_http1().build()
        } else {
            builder.https_only().enable_http1().build()
        };
        Ok(Self {
            source: Source::Url {
                url: uri,
                client: Box::new(Client::builder(TokioExecutor::new()).build(https)),
            },
            name: url.to_string(),
            keys: RwLock::new(Arc::new(Vec::new())),
            last_attempt: Mutex::new(None),
        })
    }

    /// Keys from a file, read again at every refresh.
    pub fn file(path: PathBuf) -> Self {
        Self {
            name: path.display().to_string(),
            source: Source::File(path),
            keys: RwLock::new(Arc::new(Vec::new())),
            last_attempt: Mutex::new(None),
        }
    }

    /// The keys as of the last successful load.
    pub fn keys(&self) -> Arc<Vec<VerifyKey>> {
        self.keys.read().clone()
    }

    /// True when a key with this fingerprint is in the current set.
    pub fn has(&self, fingerprint: &[u8; 32]) -> bool {
        self.keys
            .read()
            .iter()
            .any(|k| &k.fingerprint == fingerprint)
    }

    fn invalid(&self, message: String) -> KeyError {
        KeyError::Invalid {
            source_name: self.name.clone(),
            message,
        }
    }

    /// The document's bytes, from the URL or the file.
    async fn read(&self) -> Result<Bytes, KeyError> {
        match &self.source {
            Source::Url { url, client } => {
                let req = http::Request::get(url.clone())
                    .header(http::header::ACCEPT, "application/json")
                    .body(Empty::new())
                    .map_err(|e| self.invalid(e.to_string()))?;
                let resp = tokio::time::timeout(FETCH_TIMEOUT, client.request(req))
                    .await
                    .map_err(|_| self.invalid("timed out".into()))?
                    .map_err(|e| self.invalid(format!("request failed: {e}")))?;
                if !resp.status().is_success() {
                    return Err(self.invalid(format!("HTTP {}", resp.status())));
                }
                Ok(tokio::time::timeout(
                    FETCH_TIMEOUT,
                    Limited::new(resp.into_body(), MAX_JWKS_BYTES).collect(),
                )
                .await
                .map_err(|_| self.invalid("timed out reading the body".into()))?
                .map_err(|e| self.invalid(format!("reading the body: {e}")))?
                .to_bytes())
            }
            Source::File(path) => {
                let f = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| self.invalid(format!("cannot read: {e}")))?;
                let mut buf = Vec::new();
                f.take(MAX_JWKS_BYTES as u64 + 1)
                    .read_to_end(&mut buf)
                    .await
                    .map_err(|e| self.invalid(format!("cannot read: {e}")))?;
                if buf.len() > MAX_JWKS_BYTES {
                    return Err(self.invalid("larger than 1 MiB".into()));
                }
                Ok(buf.into())
            }
        }
    }

    /// Loads the document now and swaps the key set in on success (a failure keeps the
    /// previous keys).
    pub async fn fetch(&self) -> Result<usize, KeyError> {
        *self.last_attempt.lock() = Some(Instant::now());
        let body = self.read().await?;
        let keys = from_jwks(&body, &self.name)?;
        let n = keys.len();
        *self.keys.write() = Arc::new(keys);
        Ok(n)
    }

    /// Loads again unless a load was attempted within [`MIN_REFETCH`]; true when it loaded.
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
                tracing::info!(source = %self.name, keys = n, "JWKS reloaded for an unknown kid");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS reload failed");
                false
            }
        }
    }

    /// Loads again every `interval` (every 10 s while the last load failed) until cancelled.
    pub fn spawn_refresher(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut ok = !self.keys().is_empty();
            loop {
                let wait = if ok {
                    interval
                } else {
                    Duration::from_secs(10).min(interval)
                };
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                match self.fetch().await {
                    Ok(n) => {
                        tracing::debug!(source = %self.name, keys = n, "JWKS refreshed");
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
