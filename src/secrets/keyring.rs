//! Master keys and the key ring.
//!
//! Key source format (the `secrets.master_key_env` variable or the `secrets.master_key_file`
//! file, same content): one or more base64-encoded 32-byte keys, **newest first**, separated
//! by newlines (or commas, handy in an env var); blank lines and lines starting with `#` are
//! ignored. The first key seals new values; the others only open old ones. To rotate: add a
//! new key as the first line, restart, run `mcp-frontdoor secrets rotate`, then drop the old
//! lines. Generate a key with `openssl rand -base64 32`.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Generate, Key};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::error::SecretsError;

/// Length of a master key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// Short public identifier of a key: the first 4 bytes (8 hex) of a domain-separated SHA-256
/// of the key. Stored next to every sealed value so the right key is picked after rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// Parses the 8-hex form stored in secrets files.
    pub fn parse(s: &str) -> Option<KeyId> {
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 4];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(KeyId(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// One 256-bit master key; zeroed on drop, shown only by its id.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
}

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let bytes = Zeroizing::new(bytes);
        let mut h = Sha256::new();
        h.update(b"mcp-frontdoor/key-id/v1\0");
        h.update(&bytes[..]);
        let d = h.finalize();
        MasterKey {
            id: KeyId([d[0], d[1], d[2], d[3]]),
            bytes,
        }
    }

    /// A fresh random key (for `serve --dev` and tests).
    pub fn generate() -> Result<Self, SecretsError> {
        let k = Key::<Aes256Gcm>::try_generate().map_err(|e| SecretsError::Rng(e.to_string()))?;
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&k);
        Ok(Self::from_bytes(bytes))
    }

    /// The base64 form, as it goes into the key file or env var.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(&self.bytes[..]))
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(id={})", self.id)
    }
}

/// The current key plus older keys that can still open values sealed before a rotation.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<MasterKey>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn single(key: MasterKey) -> Self {
        KeyRing { keys: vec![key] }
    }

    /// A ring from keys newest first; refuses an empty list and repeated keys.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, SecretsError> {
        if keys.is_empty() {
            return Err(SecretsError::KeyConfig("no key given".into()));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(SecretsError::KeyConfig(format!(
                    "key {} is listed twice",
                    k.id
                )));
            }
        }
        Ok(KeyRing { keys })
    }

    /// Parses the key source format; `source` names where the text came from, for errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, SecretsError> {
        let tokens = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let mut keys = Vec::new();
        for (i, token) in tokens.enumerate() {
            let n = i + 1;
            let raw = Zeroizing::new(B64.decode(token).map_err(|_| {
                SecretsError::KeyConfig(format!(
                    "key #{n} in {source} is not valid base64 (make one with `openssl rand -base64 32`)"
                ))
            })?);
            let bytes: [u8; KEY_LEN] = raw.as_slice().try_into().map_err(|_| {
                SecretsError::KeyConfig(format!(
                    "key #{n} in {source} decodes to {} bytes; a master key is {KEY_LEN} bytes",
                    raw.len()
                ))
            })?;
            if looks_hand_made(&bytes) {
                // A typed or example key opens every stored secret for whoever guesses it.
                tracing::warn!(
                    source,
                    key = n,
                    "the secrets master key has too little variety to be random (a placeholder or a hand-made key?); anyone who guesses it opens every stored secret: make one with `openssl rand -base64 32`, put it first and run `mcp-frontdoor secrets rotate`"
                );
            }
            keys.push(MasterKey::from_bytes(bytes));
        }
        if keys.is_empty() {
            return Err(SecretsError::KeyConfig(format!("{source} contains no key")));
        }
        Self::new(keys).map_err(|e| SecretsError::KeyConfig(format!("{source}: {e}")))
    }

    /// Loads the ring from the env var named `env_var` if it is set and non-empty, else from
    /// `file`. Neither available is an error that says which settings to fill in.
    pub fn load(env_var: Option<&str>, file: Option<&Path>) -> Result<Self, SecretsError> {
        if let Some(var) = env_var {
            if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                let text =
                    Zeroizing::new(v.into_string().map_err(|_| {
                        SecretsError::KeyConfig(format!("env var {var} is not UTF-8"))
                    })?);
                return Self::parse(&text, &format!("env var {var}"));
            }
        }
        if let Some(path) = file {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                SecretsError::KeyConfig(format!(
                    "cannot read {}: {}",
                    path.display(),
                    crate::fsutil::read_error(path, &e)
                ))
            })?);
            warn_if_readable_by_others(path);
            return Self::parse(&text, &path.display().to_string());
        }
        Err(SecretsError::KeyConfig(match env_var {
            Some(var) => {
                format!("env var {var} is not set and secrets.master_key_file is not configured")
            }
            None => "set secrets.master_key_env or secrets.master_key_file".into(),
        }))
    }

    /// The key new values are sealed with.
    pub fn current(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// The key with this id, if the ring has it.
    pub fn get(&self, id: KeyId) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Ids of all keys, newest first.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|k| k.id).collect()
    }
}

/// True for a key no random source made: few distinct bytes (32 random bytes have about 30;
/// fewer than 16 happens with probability below 1e-9) or an arithmetic run (`0, 1, 2, ...`).
fn looks_hand_made(key: &[u8; KEY_LEN]) -> bool {
    let distinct = key.iter().collect::<std::collections::BTreeSet<_>>().len();
    let step = key[1].wrapping_sub(key[0]);
    let run = key.windows(2).all(|w| w[1].wrapping_sub(w[0]) == step);
    distinct < 16 || run
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "master key file is readable by group/others; chmod 600 it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_made_keys_are_told_from_random_ones() {
        assert!(looks_hand_made(&[0u8; KEY_LEN]));
        assert!(looks_hand_made(&std::array::from_fn(|i| i as u8)));
        assert!(looks_hand_made(&std::array::from_fn(|i| b"abcd"[i % 4])));
        for _ in 0..1000 {
            let k = MasterKey::generate().unwrap();
            assert!(!looks_hand_made(k.bytes()), "a random key flagged");
        }
    }

    #[test]
    fn parses_newest_first_with_comments_and_commas() {
        let a = MasterKey::generate().unwrap();
        let b = MasterKey::generate().unwrap();
        let text = format!(
            "# current\n{}\n\n# previous\n{}\n",
            *a.to_base64(),
            *b.to_base64()
        );
        let ring = KeyRing::parse(&text, "test").unwrap();
        assert_eq!(ring.current().id(), a.id());
        assert_eq!(ring.ids(), [a.id(), b.id()]);
        let ring =
            KeyRing::parse(&format!("{},{}", *a.to_base64(), *b.to_base64()), "env").unwrap();
        assert!(ring.get(b.id()).is_some());
    }

    #[test]
    fn bad_sources_are_clear_and_never_echo_the_key() {
        let short = B64.encode([1u8; 16]);
        let err = KeyRing::parse(&short, "key.txt").unwrap_err().to_string();
        assert!(err.contains("16 bytes") && err.contains("key.txt"), "{err}");
        assert!(!err.contains(&short));
        let err = KeyRing::parse("not base64!!", "key.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid base64"), "{err}");
        assert!(KeyRing::parse("# only a comment\n", "f").is_err());
        let a = MasterKey::generate().unwrap();
        let dup = format!("{}\n{}", *a.to_base64(), *a.to_base64());
        assert!(KeyRing::parse(&dup, "f")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let err = KeyRing::load(Some("MCP_FD_TEST_SURELY_UNSET_VAR"), None).unwrap_err();
        assert!(
            err.to_string().contains("MCP_FD_TEST_SURELY_UNSET_VAR"),
            "{err}"
        );
    }

    #[test]
    fn loads_from_file_and_debug_shows_only_ids() {
        let d = tempfile::tempdir().unwrap();
        let a = MasterKey::generate().unwrap();
        let p = d.path().join("master.key");
        std::fs::write(&p, format!("{}\n", *a.to_base64())).unwrap();
        let ring = KeyRing::load(Some("MCP_FD_TEST_SURELY_UNSET_VAR"), Some(&p)).unwrap();
        assert_eq!(ring.current().id(), a.id());
        let dbg = format!("{ring:?}");
        assert!(
            dbg.contains(&a.id().to_string()) && !dbg.contains(&*a.to_base64()),
            "{dbg}"
        );
        assert_eq!(KeyId::parse(&a.id().to_string()), Some(a.id()));
        assert_eq!(KeyId::parse("zz"), None);
    }
}
