//! Sealing single values with AES-256-GCM, and the `secrets.enc` file format.
//!
//! File: `{"version": 1, "entries": {"<name>": {"kid": "<8 hex>", "nonce": "<b64 12 bytes>",
//! "ct": "<b64 ciphertext+tag>"}}}`. The AAD binds each ciphertext to its user slug and secret
//! name, so an entry copied to another user or renamed does not open.

use std::collections::BTreeMap;
use std::path::Path;

use aes_gcm::aead::{Aead, Generate, KeyInit, Nonce, Payload};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::SecretsError;
use super::keyring::{KeyId, KeyRing, MasterKey};
use super::value::SecretValue;

/// Version written in every secrets file.
pub const FILE_VERSION: u32 = 1;

/// One sealed value as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedValue {
    /// Id of the key that sealed it.
    pub kid: String,
    /// Base64 of the 96-bit nonce.
    pub nonce: String,
    /// Base64 of ciphertext and tag.
    pub ct: String,
}

/// A user's `secrets.enc`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    /// Format version ([`FILE_VERSION`]).
    pub version: u32,
    /// Sealed values by secret name, sorted.
    pub entries: BTreeMap<String, SealedValue>,
}

impl SecretsFile {
    /// An empty file of the current version.
    pub fn empty() -> Self {
        SecretsFile {
            version: FILE_VERSION,
            entries: BTreeMap::new(),
        }
    }

    /// Parses a file's bytes; `path` is for the error message.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, SecretsError> {
        let f: SecretsFile = serde_json::from_slice(bytes).map_err(|e| SecretsError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if f.version != FILE_VERSION {
            return Err(SecretsError::Corrupt {
                path: path.to_path_buf(),
                reason: format!(
                    "unsupported version {} (this build reads {FILE_VERSION})",
                    f.version
                ),
            });
        }
        Ok(f)
    }

    /// Serialized form (pretty JSON; it holds no plaintext).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

fn aad(slug: &str, name: &str) -> Vec<u8> {
    // Neither a slug nor a secret name can contain NUL, so this is unambiguous.
    let mut a = b"mcp-frontdoor/secret/v1\0".to_vec();
    a.extend_from_slice(slug.as_bytes());
    a.push(0);
    a.extend_from_slice(name.as_bytes());
    a
}

fn cipher(key: &MasterKey) -> Aes256Gcm {
    Aes256Gcm::new(key.bytes().into())
}

/// Seals `value` for `slug`/`name` under `key` with a fresh random nonce.
pub fn seal(
    key: &MasterKey,
    slug: &str,
    name: &str,
    value: &SecretValue,
) -> Result<SealedValue, SecretsError> {
    let nonce = Nonce::<Aes256Gcm>::try_generate().map_err(|e| SecretsError::Rng(e.to_string()))?;
    let aad = aad(slug, name);
    let ct = cipher(key)
        .encrypt(
            &nonce,
            Payload {
                msg: value.expose().as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| SecretsError::Rng("AES-GCM refused to encrypt".into()))?;
    Ok(SealedValue {
        kid: key.id().to_string(),
        nonce: B64.encode(nonce),
        ct: B64.encode(ct),
    })
}

/// Opens a sealed value with the ring's key of the recorded id.
pub fn open(
    ring: &KeyRing,
    path: &Path,
    slug: &str,
    name: &str,
    sealed: &SealedValue,
) -> Result<SecretValue, SecretsError> {
    let corrupt = |reason: &str| SecretsError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("entry {name:?}: {reason}"),
    };
    let kid = KeyId::parse(&sealed.kid).ok_or_else(|| corrupt("bad key id"))?;
    let key = ring.get(kid).ok_or_else(|| SecretsError::UnknownKey {
        path: path.to_path_buf(),
        kid: sealed.kid.clone(),
    })?;
    let nonce_bytes = B64
        .decode(&sealed.nonce)
        .map_err(|_| corrupt("nonce is not base64"))?;
    let nonce = Nonce::<Aes256Gcm>::try_from(nonce_bytes.as_slice())
        .map_err(|_| corrupt("nonce is not 12 bytes"))?;
    let ct = B64
        .decode(&sealed.ct)
        .map_err(|_| corrupt("ciphertext is not base64"))?;
    let aad = aad(slug, name);
    let plain = Zeroizing::new(
        cipher(key)
            .decrypt(
                &nonce,
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretsError::Decrypt {
                path: path.to_path_buf(),
                name: name.to_owned(),
            })?,
    );
    let s = std::str::from_utf8(&plain).map_err(|_| corrupt("plaintext is not UTF-8"))?;
    Ok(SecretValue::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding_to_user_and_name() {
        let key = MasterKey::generate().unwrap();
        let ring = KeyRing::single(key.clone());
        let p = Path::new("users/alice/secrets.enc");
        let v = SecretValue::new("s3cr3t");
        let sealed = seal(&key, "alice", "github.token", &v).unwrap();
        assert_eq!(open(&ring, p, "alice", "github.token", &sealed).unwrap(), v);
        // Same value sealed twice: different nonces, different ciphertexts.
        assert_ne!(seal(&key, "alice", "github.token", &v).unwrap(), sealed);
        for (slug, name) in [("bob", "github.token"), ("alice", "github.other")] {
            let err = open(&ring, p, slug, name, &sealed).unwrap_err();
            assert!(matches!(err, SecretsError::Decrypt { .. }), "{err}");
        }
        let other = KeyRing::single(MasterKey::generate().unwrap());
        let err = open(&other, p, "alice", "github.token", &sealed).unwrap_err();
        assert!(matches!(err, SecretsError::UnknownKey { .. }), "{err}");
        assert!(!err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn file_format_round_trips_and_refuses_unknown_versions() {
        let key = MasterKey::generate().unwrap();
        let mut f = SecretsFile::empty();
        f.entries.insert(
            "a.b".into(),
            seal(&key, "u", "a.b", &SecretValue::new("v")).unwrap(),
        );
        let p = Path::new("x");
        assert_eq!(SecretsFile::parse(&f.to_bytes(), p).unwrap(), f);
        let err = SecretsFile::parse(br#"{"version": 9, "entries": {}}"#, p).unwrap_err();
        assert!(err.to_string().contains("unsupported version 9"), "{err}");
        assert!(SecretsFile::parse(b"garbage", p).is_err());
    }
}
