//! Verification keys. Each key fixes its own algorithm, so a token can never choose a weaker
//! one (`alg: none`, or HS256 signed with an RSA public key, find no key to verify against).

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};
use std::path::Path;

/// One key a token may be verified with.
#[derive(Clone)]
pub struct VerifyKey {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// sha256 of the algorithm, kid and key material: what a cached verification remembers,
    /// so it ends when this key leaves the key set.
    pub fingerprint: [u8; 32],
}

/// The fingerprint of a key from its algorithm, kid and material.
fn fingerprint(alg: Algorithm, kid: Option<&str>, material: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(format!("{alg:?}\0{}\0", kid.unwrap_or("")).as_bytes());
    h.update(material);
    h.finalize().into()
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key material stays out of logs, even for public keys (HS secrets live here too).
        f.debug_struct("VerifyKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why keys could not be loaded (start-up errors, named by source).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

fn invalid(source_name: impl Into<String>, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        source_name: source_name.into(),
        message: message.into(),
    }
}

/// Minimum HS256 secret length: shorter secrets can be brute-forced offline from one token.
pub const MIN_HS256_SECRET: usize = 32;

/// An HS256 key from a shared secret.
pub fn hs256(secret: &[u8], source_name: &str) -> Result<VerifyKey, KeyError> {
    if secret.len() < MIN_HS256_SECRET {
        return Err(invalid(
            source_name,
            format!(
                "HS256 secret is {} bytes; use at least {MIN_HS256_SECRET}",
                secret.len()
            ),
        ));
    }
    if looks_like_placeholder(secret) {
        // Long enough, but copied from an example: anyone who read it can mint tokens.
        tracing::warn!(
            source = source_name,
            "the HS256 secret looks like a placeholder or has too little variety; anyone who can guess it can mint admin tokens: use `openssl rand -base64 48`"
        );
    }
    Ok(VerifyKey {
        alg: Algorithm::HS256,
        kid: None,
        key: DecodingKey::from_secret(secret),
        fingerprint: fingerprint(Algorithm::HS256, None, secret),
    })
}

/// A secret copied from an example (`change-me...`, as `.env.example` once had) or with so few distinct
/// bytes (`aaaa...`, `0123012301...`) that it is no secret.
fn looks_like_placeholder(secret: &[u8]) -> bool {
    let lower = String::from_utf8_lossy(secret).to_ascii_lowercase();
    let placeholder = [
        "change-me",
        "changeme",
        "replace-me",
        "example",
        "secret-here",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let distinct = secret
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    placeholder || distinct < 10
}

// DER encodings of the OIDs that tell key types apart inside a SubjectPublicKeyInfo.
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// A public key from a PEM file; the algorithm follows from the key type.
pub fn from_pem_file(path: &Path) -> Result<VerifyKey, KeyError> {
    let name = path.display().to_string();
    let pem = std::fs::read(path).map_err(|e| invalid(&name, format!("cannot read: {e}")))?;
    from_pem(&pem, &name)
}

/// A public key from PEM text (`PUBLIC KEY` or `RSA PUBLIC KEY`).
pub fn from_pem(pem: &[u8], name: &str) -> Result<VerifyKey, KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| invalid(name, "not PEM text"))?;
    if text.contains("PRIVATE KEY") {
        return Err(invalid(
            name,
            "this is a private key; give the front door only the public key",
        ));
    }
    let (alg, key) = if text.contains("BEGIN RSA PUBLIC KEY") {
        (Algorithm::RS256, DecodingKey::from_rsa_pem(pem))
    } else {
        let der = pem_body(text).ok_or_else(|| invalid(name, "no PUBLIC KEY block found"))?;
        let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
        if has(OID_RSA) {
            (Algorithm::RS256, DecodingKey::from_rsa_pem(pem))
        } else if has(OID_P256) {
            (Algorithm::ES256, DecodingKey::from_ec_pem(pem))
        } else if has(OID_P384) {
            (Algorithm::ES384, DecodingKey::from_ec_pem(pem))
        } else if has(OID_ED25519) {
            (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem))
        } else {
            return Err(invalid(
                name,
                "unsupported key type (RSA, P-256, P-384, Ed25519)",
            ));
        }
    };
    let key = key.map_err(|e| invalid(name, format!("not a usable public key: {e}")))?;
    // The file stem doubles as a kid, so a token naming it picks this key first.
    let kid = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned());
    let fingerprint = fingerprint(alg, kid.as_deref(), pem);
    Ok(VerifyKey {
        alg,
        kid,
        key,
        fingerprint,
    })
}

fn pem_body(text: &str) -> Option<Vec<u8>> {
    let start = text.find("-----BEGIN PUBLIC KEY-----")?;
    let rest = &text[start + "-----BEGIN PUBLIC KEY-----".len()..];
    let end = rest.find("-----END")?;
    let b64: String = rest[..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Signature keys from a JWKS document; encryption and symmetric keys are skipped.
pub fn from_jwks(json: &[u8], name: &str) -> Result<Vec<VerifyKey>, KeyError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(json)
        .map_err(|e| invalid(name, format!("not a JWKS document: {e}")))?;
    let mut out = Vec::new();
    for raw in set.keys {
        // One odd key (an encryption key, a new algorithm) must not take down the others.
        let jwk: Jwk = match serde_json::from_value(raw) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(source = name, error = %e, "skipping a JWKS key that cannot be read");
                continue;
            }
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(alg) = jwk_algorithm(&jwk) else {
            tracing::warn!(source = name, kid = ?jwk.common.key_id, "skipping a JWKS key without a usable signature algorithm");
            continue;
        };
        // The parameters as serde writes them back: the same key gives the same bytes
        // whatever order the document lists its fields in.
        let material = serde_json::to_vec(&jwk.algorithm).unwrap_or_default();
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => out.push(VerifyKey {
                alg,
                kid: jwk.common.key_id.clone(),
                key,
                fingerprint: fingerprint(alg, jwk.common.key_id.as_deref(), &material),
            }),
            Err(e) => tracing::warn!(source = name, error = %e, "skipping an unusable JWKS key"),
        }
    }
    if out.is_empty() {
        return Err(invalid(name, "the JWKS holds no usable signature key"));
    }
    Ok(out)
}

fn jwk_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let from_params = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Some(Algorithm::EdDSA)
        }
        // A symmetric key in a published key set would be a shared secret made public.
        _ => None,
    }?;
    match jwk.common.key_algorithm {
        None => Some(from_params),
        Some(KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512) => None,
        Some(declared) => {
            let declared = match declared {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::RS384 => Algorithm::RS384,
                KeyAlgorithm::RS512 => Algorithm::RS512,
                KeyAlgorithm::PS256 => Algorithm::PS256,
                KeyAlgorithm::PS384 => Algorithm::PS384,
                KeyAlgorithm::PS512 => Algorithm::PS512,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::ES384 => Algorithm::ES384,
                KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                _ => return None,
            };
            // The declared alg must belong to the key's family (RS384 on an RSA key is fine).
            (declared.family() == from_params.family()).then_some(declared)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_placeholder;

    #[test]
    fn example_and_low_variety_secrets_are_flagged() {
        assert!(looks_like_placeholder(
            b"change-me-to-a-long-random-string-of-at-least-32-bytes"
        ));
        assert!(looks_like_placeholder(&[b'a'; 40]));
        assert!(looks_like_placeholder(b"01230123012301230123012301230123"));
        assert!(!looks_like_placeholder(b"u8Zq3LrV0pX7m2KcW9yBdTf1hGnJ4sEa"));
    }
}
