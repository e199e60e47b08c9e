//! Per-user secrets files: put, delete, list names, and render the gateway's secrets file.
//!
//! Every change is read-modify-write of `users/<slug>/secrets.enc` under a per-user lock,
//! then an atomic replace (0600). Plaintext exists only in [`SecretValue`]s and the rendered
//! [`Zeroizing`] string.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use zeroize::Zeroizing;

use super::error::SecretsError;
use super::keyring::KeyRing;
use super::seal::{open, seal, SecretsFile};
use super::value::SecretValue;
use crate::catalog::check_secret_name;
use crate::storage::files::{create_private_dir, read_limited, write_atomic};
use crate::storage::{DataLayout, UserFile};

/// Largest accepted secret value.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most secrets one user may hold.
pub const MAX_SECRETS_PER_USER: usize = 1_000;
/// Largest secrets file read (values are base64 of at most [`MAX_VALUE_BYTES`] each).
pub(crate) const MAX_FILE_BYTES: usize = 128 * 1024 * 1024;

/// Sealed per-user secrets in the data dir; shareable across threads.
#[derive(Debug)]
pub struct SecretStore {
    layout: DataLayout,
    keyring: Arc<KeyRing>,
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn check_value(name: &str, value: &SecretValue) -> Result<(), SecretsError> {
    let v = value.expose();
    let reason = if v.len() > MAX_VALUE_BYTES {
        "longer than 64 KiB"
    } else if v.contains(['\n', '\r', '\0']) {
        // The gateway's secrets file is one `name=value` per line.
        "contains a line break or NUL"
    } else if v.trim() != v {
        // docker/mcp-gateway trims it, so the server would get another value than was set.
        "has leading or trailing whitespace (which the gateway would trim); remove it"
    } else {
        return Ok(());
    };
    Err(SecretsError::InvalidValue {
        name: name.to_owned(),
        reason,
    })
}

impl SecretStore {
    /// A store over `layout` using `keyring` (check it first with
    /// [`super::verify_keyring`]).
    pub fn new(layout: DataLayout, keyring: Arc<KeyRing>) -> Self {
        SecretStore {
            layout,
            keyring,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The key ring in use.
    pub fn keyring(&self) -> &Arc<KeyRing> {
        &self.keyring
    }

    /// The per-user lock that serializes read-modify-write of one secrets file.
    pub(crate) fn user_lock(&self, slug: &str) -> Arc<Mutex<()>> {
        self.locks
            .lock()
            .entry(slug.to_owned())
            .or_default()
            .clone()
    }

    pub(crate) fn path(&self, slug: &str) -> Result<PathBuf, SecretsError> {
        Ok(self.layout.user_file(slug, UserFile::Secrets)?)
    }

    pub(crate) fn layout(&self) -> &DataLayout {
        &self.layout
    }

    /// Reads a user's file (empty when absent).
    pub(crate) fn read_file(path: &Path) -> Result<SecretsFile, SecretsError> {
        match read_limited(path, MAX_FILE_BYTES)? {
            Some(bytes) => SecretsFile::parse(&bytes, path),
            None => Ok(SecretsFile::empty()),
        }
    }

    /// Stores (or replaces) one secret.
    pub fn put(&self, slug: &str, name: &str, value: &SecretValue) -> Result<(), SecretsError> {
        self.put_many(slug, &[(name, value)])
    }

    /// Stores several secrets in one atomic file replacement: all or nothing.
    pub fn put_many(&self, slug: &str, items: &[(&str, &SecretValue)]) -> Result<(), SecretsError> {
        let path = self.path(slug)?;
        for (name, value) in items {
            check_secret_name(name).map_err(SecretsError::InvalidName)?;
            check_value(name, value)?;
        }
        let lock = self.user_lock(slug);
        let _guard = lock.lock();
        let mut file = Self::read_file(&path)?;
        for (name, value) in items {
            let sealed = seal(self.keyring.current(), slug, name, value)?;
            file.entries.insert((*name).to_owned(), sealed);
        }
        if file.entries.len() > MAX_SECRETS_PER_USER {
            return Err(SecretsError::InvalidValue {
                name: items.first().map(|i| i.0.to_owned()).unwrap_or_default(),
                reason: "user would exceed 1000 secrets",
            });
        }
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        write_atomic(&path, &file.to_bytes())?;
        Ok(())
    }

    /// Deletes one secret; `NotFound` when the user has no such secret.
    pub fn delete(&self, slug: &str, name: &str) -> Result<(), SecretsError> {
        let path = self.path(slug)?;
        let lock = self.user_lock(slug);
        let _guard = lock.lock();
        let mut file = Self::read_file(&path)?;
        if file.entries.remove(name).is_none() {
            return Err(SecretsError::NotFound {
                slug: slug.to_owned(),
                name: name.to_owned(),
            });
        }
        write_atomic(&path, &file.to_bytes())?;
        Ok(())
    }

    /// Names of a user's secrets, sorted (the API never returns values).
    pub fn list_names(&self, slug: &str) -> Result<Vec<String>, SecretsError> {
        let path = self.path(slug)?;
        Ok(Self::read_file(&path)?.entries.into_keys().collect())
    }

    /// The gateway's `--secrets` file content: `<server>.<key>=<value>` lines, sorted by name.
    /// Fails whole if any value cannot be opened, rather than start a gateway half-configured.
    pub fn render_gateway_secrets(&self, slug: &str) -> Result<Zeroizing<String>, SecretsError> {
        let path = self.path(slug)?;
        let file = Self::read_file(&path)?;
        let mut out = Zeroizing::new(String::new());
        for (name, sealed) in &file.entries {
            let value = open(&self.keyring, &path, slug, name, sealed)?;
            out.push_str(name);
            out.push('=');
            out.push_str(value.expose());
            out.push('\n');
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ErrorClass;
    use crate::secrets::MasterKey;
    use std::os::unix::fs::PermissionsExt;

    fn store(dir: &Path) -> SecretStore {
        let ring = KeyRing::single(MasterKey::generate().unwrap());
        SecretStore::new(DataLayout::new(dir), Arc::new(ring))
    }

    #[test]
    fn put_list_render_delete() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        s.put("alice", "github.token", &SecretValue::new("ghp_1"))
            .unwrap();
        s.put_many(
            "alice",
            &[
                ("wiki.api_token", &SecretValue::new("w=2")),
                ("a.b", &SecretValue::new("")),
            ],
        )
        .unwrap();
        assert_eq!(
            s.list_names("alice").unwrap(),
            ["a.b", "github.token", "wiki.api_token"]
        );
        let rendered = s.render_gateway_secrets("alice").unwrap();
        assert_eq!(&*rendered, "a.b=\ngithub.token=ghp_1\nwiki.api_token=w=2\n");
        let path = d.path().join("users/alice/secrets.enc");
        let raw = std::fs::read_to_string(&path).unwrap();
        assert!(!raw.contains("ghp_1") && raw.contains("\"kid\""), "{raw}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );

        s.delete("alice", "github.token").unwrap();
        let err = s.delete("alice", "github.token").unwrap_err();
        assert_eq!(err.class(), ErrorClass::NotFound);
        assert!(s.list_names("nobody").unwrap().is_empty());
        assert_eq!(&*s.render_gateway_secrets("nobody").unwrap(), "");
    }

    #[test]
    fn bad_input_changes_nothing_and_never_echoes_values() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        for padded in [" lead", "trail ", "\ttab"] {
            let err = s
                .put("alice", "a.b", &SecretValue::new(padded))
                .unwrap_err();
            assert!(err.to_string().contains("whitespace"), "{err}");
        }
        let v = SecretValue::new("line1\nline2");
        let err = s
            .put_many(
                "alice",
                &[("ok.name", &SecretValue::new("x")), ("bad.name", &v)],
            )
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadRequest);
        assert!(!err.to_string().contains("line1"), "{err}");
        assert!(s.list_names("alice").unwrap().is_empty());
        let err = s
            .put("alice", "noserver", &SecretValue::new("x"))
            .unwrap_err();
        assert!(matches!(err, SecretsError::InvalidName(_)));
        let err = s
            .put("../alice", "a.b", &SecretValue::new("x"))
            .unwrap_err();
        assert!(matches!(err, SecretsError::InvalidSlug(_)));
    }

    #[test]
    fn copied_entries_do_not_open_for_another_user() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        s.put("alice", "a.b", &SecretValue::new("alice-only"))
            .unwrap();
        let alice = d.path().join("users/alice/secrets.enc");
        let bob = d.path().join("users/bob");
        std::fs::create_dir_all(&bob).unwrap();
        std::fs::copy(&alice, bob.join("secrets.enc")).unwrap();
        let err = s.render_gateway_secrets("bob").unwrap_err();
        assert!(matches!(err, SecretsError::Decrypt { .. }), "{err}");
    }

    #[test]
    fn concurrent_puts_lose_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = Arc::new(store(d.path()));
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let s = s.clone();
                std::thread::spawn(move || {
                    s.put(
                        "alice",
                        &format!("srv.k{i}"),
                        &SecretValue::new(format!("v{i}")),
                    )
                    .unwrap()
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s.list_names("alice").unwrap().len(), 20);
    }
}
