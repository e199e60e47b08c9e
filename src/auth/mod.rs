//! Authentication: `Authorization: Bearer <JWT>` → verified [`Principal`].

mod cache;
mod claims;
mod jwks;
pub mod keys;
pub mod metadata;
pub mod mint;
pub mod principal;

pub use principal::{slug, Principal};

use crate::config::AuthConfig;
use cache::{token_hash, TokenCache};
use http::{HeaderMap, HeaderValue, Uri};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, Validation};
use jwks::Jwks;
use keys::{KeyError, VerifyKey};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Why a request was not authenticated; `label()` is the bounded metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing bearer token")]
    Missing,
    #[error("tokens in the query string are not accepted; send Authorization: Bearer")]
    InQuery,
    #[error("malformed bearer token")]
    Malformed,
    #[error("token signature is not valid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("no configured key can verify this token")]
    UnknownKey,
    #[error("token lacks a required claim")]
    MissingClaim,
}

impl AuthFailure {
    /// A fixed label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::InQuery => "query_token",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::UnknownKey => "unknown_key",
            Self::MissingClaim => "missing_claim",
        }
    }
}

/// Verifies bearer tokens against the configured keys, with a cache of verified tokens.
pub struct Authenticator {
    static_keys: Vec<VerifyKey>,
    /// `jwks_file` and `jwks_url`, reloaded in the background.
    jwks: Vec<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Vec<String>,
    leeway: u64,
    claims: claims::ClaimMap,
    cache: TokenCache,
    challenge: HeaderValue,
}

impl Authenticator {
    /// Loads every key source in `cfg`; the JWKS URL is fetched once here (a failure is logged
    /// and retried in the background, so an IdP outage does not stop the front door).
    pub async fn from_config(
        cfg: &AuthConfig,
        public_url: &str,
        stop: CancellationToken,
    ) -> Result<Self, KeyError> {
        let mut static_keys = Vec::new();
        if let Some(var) = &cfg.hs256_secret_env {
            let secret = std::env::var(var).map_err(|_| KeyError::Invalid {
                source_name: format!("auth.hs256_secret_env ({var})"),
                message: "the environment variable is not set".into(),
            })?;
            static_keys.push(keys::hs256(secret.trim().as_bytes(), var)?);
        }
        if let Some(path) = &cfg.hs256_secret_file {
            let name = path.display().to_string();
            let secret = std::fs::read_to_string(path).map_err(|e| KeyError::Invalid {
                source_name: name.clone(),
                message: format!("cannot read: {}", crate::storage::read_error(path, &e)),
            })?;
            static_keys.push(keys::hs256(secret.trim().as_bytes(), &name)?);
        }
        for path in &cfg.public_key_files {
            static_keys.push(keys::from_pem_file(path)?);
        }
        let mut jwks = Vec::new();
        if let Some(path) = &cfg.jwks_file {
            // A file that does not load at start-up is a config error; later failures keep
            // the previous keys.
            let f = Arc::new(Jwks::file(path.clone()));
            f.fetch().await?;
            f.clone()
                .spawn_refresher(cfg.jwks_refresh.0, stop.child_token());
            jwks.push(f);
        }
        if let Some(url) = &cfg.jwks_url {
            if cfg.jwks_allow_http && url.starts_with("http://") {
                tracing::warn!(url = %url, "auth.jwks_allow_http: verification keys come over plain HTTP (tests and development only)");
            }
            let r = Arc::new(Jwks::url(url, cfg.jwks_allow_http)?);
            if let Err(e) = r.fetch().await {
                tracing::error!(error = %e, "initial JWKS fetch failed; retrying in the background");
            }
            r.clone().spawn_refresher(cfg.jwks_refresh.0, stop);
            jwks.push(r);
        }
        if cfg.issuer.is_none() {
            tracing::warn!(
                "auth.issuer is not set: tokens from any issuer signed by these keys are accepted"
            );
        }
        if cfg.audience.is_empty() {
            tracing::warn!("auth.audience is not set: tokens for any audience are accepted");
        }
        let challenge = HeaderValue::from_str(&format!(
            "Bearer resource_metadata=\"{}\"",
            metadata::metadata_url(public_url)
        ))
        .map_err(|_| KeyError::Invalid {
            source_name: "server.public_url".into(),
            message: "contains characters not allowed in a header".into(),
        })?;
        Ok(Self {
            static_keys,
            jwks,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            leeway: cfg.leeway.0.as_secs(),
            claims: claims::ClaimMap::from_config(cfg),
            cache: TokenCache::new(cfg.cache_size),
            challenge,
        })
    }

    /// The `WWW-Authenticate` value sent with every 401.
    pub fn challenge(&self) -> HeaderValue {
        self.challenge.clone()
    }

    /// Authenticates a request from its headers; tokens in the URL are refused outright
    /// because URLs end up in logs and browser history.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Arc<Principal>, AuthFailure> {
        if uri.query().is_some_and(query_has_token) {
            return Err(AuthFailure::InQuery);
        }
        let value = headers
            .get(http::header::AUTHORIZATION)
            .ok_or(AuthFailure::Missing)?;
        let value = value.to_str().map_err(|_| AuthFailure::Malformed)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthFailure::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure::Missing);
        }
        let token = token.trim();
        match self.cached(token) {
            Some(p) => Ok(p),
            // Verifying may fetch a key set: in a box of its own, so that the future of every
            // request (whose token is usually cached) does not carry room for that.
            None => Box::pin(self.verify_uncached(token)).await,
        }
    }

    /// The principal of a token verified before, if it is still cached (unexpired, and the
    /// key that verified it still in the key set).
    fn cached(&self, token: &str) -> Option<Arc<Principal>> {
        let now = jsonwebtoken::get_current_timestamp();
        let key = token_hash(token);
        let (p, by) = self.cache.get(&key, now)?;
        if self.has_key(&by) {
            return Some(p);
        }
        // Its key was rotated out: verify again (and fail, unless another key signs it).
        self.cache.remove(&key);
        None
    }

    /// Verifies one token (cached by hash until it expires, or until the key that verified it
    /// leaves the key set).
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthFailure> {
        match self.cached(token) {
            Some(p) => Ok(p),
            None => self.verify_uncached(token).await,
        }
    }

    /// Verifies a token that [`Self::cached`] did not have, and caches it.
    async fn verify_uncached(&self, token: &str) -> Result<Arc<Principal>, AuthFailure> {
        let now = jsonwebtoken::get_current_timestamp();
        let key = token_hash(token);
        let header = decode_header(token).map_err(|_| AuthFailure::Malformed)?;
        let unknown = |r: &Result<_, AuthFailure>| matches!(r, Err(AuthFailure::UnknownKey));
        let mut result = self.verify_with(token, &header, &self.static_keys);
        for j in &self.jwks {
            if !unknown(&result) {
                break;
            }
            result = self.verify_with(token, &header, &j.keys());
        }
        for j in &self.jwks {
            if !unknown(&result) {
                break;
            }
            if j.refetch_for_unknown_kid().await {
                result = self.verify_with(token, &header, &j.keys());
            }
        }
        let (claims, by) = result?;
        let principal = Arc::new(self.claims.principal(&claims)?);
        self.cache.insert(key, principal.clone(), by, now);
        Ok(principal)
    }

    /// True when a key with this fingerprint is configured or in a current JWKS.
    fn has_key(&self, fingerprint: &[u8; 32]) -> bool {
        self.static_keys
            .iter()
            .any(|k| &k.fingerprint == fingerprint)
            || self.jwks.iter().any(|j| j.has(fingerprint))
    }

    /// The claims, and the fingerprint of the key that verified them.
    fn verify_with(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        keys: &[VerifyKey],
    ) -> Result<(serde_json::Value, [u8; 32]), AuthFailure> {
        let mut outcome = Err(AuthFailure::UnknownKey);
        // The key decides the algorithm: only keys of the header's algorithm are candidates,
        // and a kid in the token narrows them to the key with that id.
        let candidates = keys.iter().filter(|k| {
            k.alg == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                }
        });
        for k in candidates {
            match decode::<serde_json::Value>(token, &k.key, &self.validation(k.alg)) {
                Ok(data) => return Ok((data.claims, k.fingerprint)),
                Err(e) => {
                    let failure = map_jwt_error(e.kind());
                    if failure != AuthFailure::BadSignature {
                        // The signature was good; claim checks fail the same way for any key.
                        return Err(failure);
                    }
                    outcome = Err(failure);
                }
            }
        }
        outcome
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audience);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// How many verified tokens are cached (for tests and metrics).
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

fn query_has_token(query: &str) -> bool {
    query.split('&').any(|kv| {
        let k = kv.split('=').next().unwrap_or("");
        k.eq_ignore_ascii_case("access_token") || k.eq_ignore_ascii_case("token")
    })
}

fn map_jwt_error(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::InvalidSignature => AuthFailure::BadSignature,
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
        ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) => AuthFailure::MissingClaim,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthFailure::UnknownKey,
        _ => AuthFailure::Malformed,
    }
}

/// The `exp` claim of the bearer token in `headers`, read without verification: only for
/// telling a caller whose token was refused as expired (which jsonwebtoken reports only after
/// the signature verified) when it expired.
pub fn unverified_expiry(headers: &HeaderMap) -> Option<u64> {
    use base64::Engine as _;
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.split_once(' ')?.1.trim();
    let payload = token.split('.').nth(1)?;
    // A token is small; anything larger is not worth decoding for a hint.
    if payload.len() > 8192 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}
