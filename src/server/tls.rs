//! TLS with rustls (aws-lc-rs): ALPN h2 + http/1.1 and a certificate that is reloaded when its
//! files change, so renewals need no restart. A bad renewal is logged and the old pair stays.

use crate::config::TlsConfig;
use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// The one crypto provider, set explicitly rather than picked by feature flags.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Why a certificate pair could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what} {path}: {message}")]
pub struct TlsError {
    what: &'static str,
    path: PathBuf,
    message: String,
}

fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let err = |what, path: &Path, message: String| TlsError {
        what,
        path: path.to_path_buf(),
        message,
    };
    // Read first, so an unreadable file gets the message that says what to run.
    let read = |what, path: &Path| {
        std::fs::read(path)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| err(what, path, crate::fsutil::read_error(path, &e)))
    };
    let cert_pem = read("certificate", cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(err("certificate", cert, "no CERTIFICATE block".into()));
    }
    let key_pem = read("key", key)?;
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| err("key", key, e.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| err("key", key, e.to_string()))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| err("key", key, format!("does not match the certificate: {e}")))?;
    Ok(ck)
}

/// Serves the current certificate; swapped atomically on reload.
#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

impl ReloadingCert {
    /// Loads the pair now; fails start-up if it is unusable.
    pub fn load(cfg: &TlsConfig) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let ck = load_pair(&cfg.cert, &cfg.key, &provider)?;
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(ck)),
            cert: cfg.cert.clone(),
            key: cfg.key.clone(),
            provider,
        }))
    }

    fn stamp(&self) -> Option<(SystemTime, SystemTime, u64, u64)> {
        let c = std::fs::metadata(&self.cert).ok()?;
        let k = std::fs::metadata(&self.key).ok()?;
        Some((c.modified().ok()?, k.modified().ok()?, c.len(), k.len()))
    }

    /// Polls the files every `interval` (works with editors, certbot and Kubernetes symlink
    /// swaps alike, unlike inotify on the file itself) until `stop`.
    pub fn spawn_watcher(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut last = self.stamp();
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                let now = self.stamp();
                if now == last {
                    continue;
                }
                match load_pair(&self.cert, &self.key, &self.provider) {
                    Ok(ck) => {
                        *self.current.write() = Arc::new(ck);
                        last = now;
                        tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    }
                    // Cert and key are often written one after the other: retry next tick.
                    Err(e) => {
                        tracing::warn!(error = %e, "TLS reload failed; keeping the previous certificate")
                    }
                }
            }
        });
    }
}

/// The server config for the public listener.
pub fn server_config(resolver: Arc<ReloadingCert>) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Writes a self-signed certificate and key for `hosts` (`certs generate`, `serve --dev`).
pub fn generate_self_signed(
    dir: &Path,
    hosts: &[String],
) -> Result<(PathBuf, PathBuf), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(dir)?;
    let ck = rcgen::generate_simple_self_signed(hosts.to_vec())?;
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    crate::fsutil::write_atomic(&cert, ck.cert.pem().as_bytes(), 0o644)?;
    crate::fsutil::write_atomic(&key, ck.signing_key.serialize_pem().as_bytes(), 0o600)?;
    Ok((cert, key))
}
