//! The optional bearer token Prometheus sends to `/metrics` (`metrics.bearer_token_env` or
//! `metrics.bearer_token_file`). Only its sha256 is kept: the comparison runs over two
//! digests in constant time, and nothing that could leak the token sits in memory or `Debug`.

use crate::config::MetricsConfig;
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// What a scrape must present.
#[derive(Clone)]
pub struct ScrapeToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for ScrapeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScrapeToken(<redacted>)")
    }
}

/// Why the configured token cannot be used (start-up error naming the key).
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ScrapeTokenError {
    key: &'static str,
    message: String,
}

impl ScrapeToken {
    /// The token the config names, if any; a named source that is unset, unreadable or
    /// empty is an error (a scrape endpoint left open by a typo is not what was asked for).
    pub fn from_config(cfg: &MetricsConfig) -> Result<Option<Self>, ScrapeTokenError> {
        let (key, text) = match (&cfg.bearer_token_env, &cfg.bearer_token_file) {
            (Some(var), _) => {
                let key = "metrics.bearer_token_env";
                let v = std::env::var(var).map_err(|_| ScrapeTokenError {
                    key,
                    message: format!("the environment variable {var} is not set"),
                })?;
                (key, v)
            }
            (None, Some(path)) => {
                let key = "metrics.bearer_token_file";
                let v = std::fs::read_to_string(path).map_err(|e| ScrapeTokenError {
                    key,
                    message: format!(
                        "cannot read {}: {}",
                        path.display(),
                        crate::fsutil::read_error(path, &e)
                    ),
                })?;
                (key, v)
            }
            (None, None) => return Ok(None),
        };
        let token = text.trim();
        if token.is_empty() {
            return Err(ScrapeTokenError {
                key,
                message: "the token is empty".into(),
            });
        }
        Ok(Some(Self::new(token)))
    }

    /// A token from its text.
    pub fn new(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// True when `Authorization: Bearer <token>` carries this token.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some((scheme, token)) = value.split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        // Every byte is compared whatever the first difference: no early exit to time.
        presented
            .iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let t = ScrapeToken::new("s3cret-scrape");
        assert!(t.accepts(&headers("Bearer s3cret-scrape")));
        assert!(t.accepts(&headers("bearer s3cret-scrape")));
        for bad in [
            "Bearer s3cret-scrap",
            "Bearer s3cret-scrape2",
            "Basic s3cret-scrape",
            "s3cret-scrape",
            "Bearer ",
        ] {
            assert!(!t.accepts(&headers(bad)), "{bad}");
        }
        assert!(!t.accepts(&HeaderMap::new()));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn a_named_but_missing_or_empty_token_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("token");
        std::fs::write(&f, "  \n").unwrap();
        let cfg = MetricsConfig {
            bearer_token_file: Some(f.clone()),
            ..MetricsConfig::default()
        };
        let err = ScrapeToken::from_config(&cfg).unwrap_err().to_string();
        assert!(err.contains("metrics.bearer_token_file"), "{err}");
        std::fs::write(&f, "tok\n").unwrap();
        assert!(ScrapeToken::from_config(&cfg)
            .unwrap()
            .unwrap()
            .accepts(&headers("Bearer tok")));
        let cfg = MetricsConfig {
            bearer_token_env: Some("MCP_FRONTDOOR_TEST_UNSET_SCRAPE_VAR".into()),
            ..MetricsConfig::default()
        };
        let err = ScrapeToken::from_config(&cfg).unwrap_err().to_string();
        assert!(err.contains("metrics.bearer_token_env"), "{err}");
        assert!(ScrapeToken::from_config(&MetricsConfig::default())
            .unwrap()
            .is_none());
    }
}
