//! Start-up key check and key rotation over every user's secrets file.

use std::path::Path;
use std::sync::Arc;

use super::error::SecretsError;
use super::keyring::KeyRing;
use super::seal::{open, seal, SecretsFile};
use super::store::{SecretStore, MAX_FILE_BYTES};
use crate::storage::files::{list_dir, read_limited, write_atomic};
use crate::storage::{validate_name, DataLayout, NameKind};

/// What [`verify_keyring`] checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Secrets files found.
    pub files: usize,
    /// Values opened (one per key id per file).
    pub values_checked: usize,
}

/// What [`rotate`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotateReport {
    /// Secrets files found.
    pub files: usize,
    /// Files rewritten.
    pub files_rewritten: usize,
    /// Values re-sealed under the current key.
    pub resealed: usize,
    /// Values that were already under the current key.
    pub already_current: usize,
    /// `(slug, error)` for files left untouched because a value could not be opened or the
    /// file changed meanwhile.
    pub failures: Vec<(String, String)>,
}

/// Slugs that have a secrets file, sorted.
fn users_with_secrets(store: &SecretStore) -> Result<Vec<String>, SecretsError> {
    let mut out = Vec::new();
    for (name, ft) in list_dir(&store.layout().users_dir())? {
        if ft.is_dir()
            && validate_name(NameKind::UserSlug, &name).is_ok()
            && store.path(&name)?.is_file()
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// Start-up check that the key ring opens every user's secrets: for each file, one value per
/// key id found in it is opened. Fails on the first file that does not open; reads only.
pub fn verify_keyring(data_dir: &Path, keyring: &KeyRing) -> Result<VerifyReport, SecretsError> {
    let store = SecretStore::new(DataLayout::new(data_dir), Arc::new(keyring.clone()));
    let mut report = VerifyReport::default();
    for slug in users_with_secrets(&store)? {
        let path = store.path(&slug)?;
        let file = SecretStore::read_file(&path)?;
        report.files += 1;
        let mut seen = Vec::new();
        for (name, sealed) in &file.entries {
            if seen.contains(&&sealed.kid) {
                continue;
            }
            seen.push(&sealed.kid);
            open(keyring, &path, &slug, name, sealed)?;
            report.values_checked += 1;
        }
    }
    Ok(report)
}

/// Re-seals every value under the ring's current key, one atomic file replacement per user.
/// A file with a value that does not open is left as it is and reported.
pub fn rotate(data_dir: &Path, keyring: &KeyRing) -> Result<RotateReport, SecretsError> {
    SecretStore::new(DataLayout::new(data_dir), Arc::new(keyring.clone())).rotate()
}

impl SecretStore {
    /// [`rotate`] on this store, serialized with its own writers.
    pub fn rotate(&self) -> Result<RotateReport, SecretsError> {
        let mut report = RotateReport::default();
        for slug in users_with_secrets(self)? {
            report.files += 1;
            match self.rotate_user(&slug, &mut report) {
                Ok(true) => report.files_rewritten += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(user = %slug, error = %e, "secrets rotation skipped a file");
                    report.failures.push((slug, e.to_string()));
                }
            }
        }
        Ok(report)
    }

    fn rotate_user(&self, slug: &str, report: &mut RotateReport) -> Result<bool, SecretsError> {
        let path = self.path(slug)?;
        let lock = self.user_lock(slug);
        let _guard = lock.lock();
        let before = read_limited(&path, MAX_FILE_BYTES)?.unwrap_or_default();
        let mut file = SecretsFile::parse(&before, &path)?;
        let current = self.keyring().current();
        let current_kid = current.id().to_string();
        let (mut resealed, mut kept) = (0, 0);
        // Open everything first: a file is rewritten whole or not at all.
        for (name, sealed) in file.entries.iter_mut() {
            if sealed.kid == current_kid {
                kept += 1;
                continue;
            }
            let value = open(self.keyring(), &path, slug, name, sealed)?;
            *sealed = seal(current, slug, name, &value)?;
            resealed += 1;
        }
        if resealed > 0 {
            // Another process (the running server) may have written meanwhile; never
            // overwrite its change with an older copy.
            let now = read_limited(&path, MAX_FILE_BYTES)?.unwrap_or_default();
            if now != before {
                return Err(SecretsError::Concurrent { path });
            }
            write_atomic(&path, &file.to_bytes())?;
        }
        report.resealed += resealed;
        report.already_current += kept;
        Ok(resealed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{MasterKey, SecretValue};

    fn put(dir: &Path, ring: &KeyRing, slug: &str, name: &str, v: &str) {
        SecretStore::new(DataLayout::new(dir), Arc::new(ring.clone()))
            .put(slug, name, &SecretValue::new(v))
            .unwrap();
    }

    #[test]
    fn rotation_moves_everything_to_the_new_key() {
        let d = tempfile::tempdir().unwrap();
        let old = MasterKey::generate().unwrap();
        let new = MasterKey::generate().unwrap();
        let old_ring = KeyRing::single(old.clone());
        put(d.path(), &old_ring, "alice", "a.x", "1");
        put(d.path(), &old_ring, "alice", "a.y", "2");
        put(d.path(), &old_ring, "bob", "b.x", "3");

        // The new key alone cannot open old values: a clear start-up error, nothing touched.
        let only_new = KeyRing::single(new.clone());
        let before = std::fs::read(d.path().join("users/alice/secrets.enc")).unwrap();
        let err = verify_keyring(d.path(), &only_new).unwrap_err();
        assert!(matches!(err, SecretsError::UnknownKey { .. }), "{err}");
        assert!(err.to_string().contains(&old.id().to_string()), "{err}");
        let r = rotate(d.path(), &only_new).unwrap();
        assert_eq!(r.failures.len(), 2);
        assert_eq!(
            std::fs::read(d.path().join("users/alice/secrets.enc")).unwrap(),
            before
        );

        let ring = KeyRing::new(vec![new.clone(), old.clone()]).unwrap();
        assert_eq!(verify_keyring(d.path(), &ring).unwrap().files, 2);
        let r = rotate(d.path(), &ring).unwrap();
        assert_eq!(
            (r.files, r.files_rewritten, r.resealed, r.already_current),
            (2, 2, 3, 0)
        );
        assert!(r.failures.is_empty());
        let r = rotate(d.path(), &ring).unwrap();
        assert_eq!(
            (r.files_rewritten, r.resealed, r.already_current),
            (0, 0, 3)
        );

        // Now the old key can go.
        let v = verify_keyring(d.path(), &only_new).unwrap();
        assert_eq!((v.files, v.values_checked), (2, 2));
        let s = SecretStore::new(DataLayout::new(d.path()), Arc::new(only_new));
        assert_eq!(
            &*s.render_gateway_secrets("alice").unwrap(),
            "a.x=1\na.y=2\n"
        );
    }

    #[test]
    fn wrong_key_material_under_known_id_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let ring = KeyRing::single(MasterKey::generate().unwrap());
        put(d.path(), &ring, "alice", "a.x", "1");
        let p = d.path().join("users/alice/secrets.enc");
        let mut f = SecretsFile::parse(&std::fs::read(&p).unwrap(), &p).unwrap();
        let e = f.entries.get_mut("a.x").unwrap();
        e.ct = e.ct.chars().rev().collect();
        std::fs::write(&p, f.to_bytes()).unwrap();
        let err = verify_keyring(d.path(), &ring).unwrap_err();
        assert!(
            matches!(
                err,
                SecretsError::Decrypt { .. } | SecretsError::Corrupt { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_data_dir_verifies() {
        let d = tempfile::tempdir().unwrap();
        let ring = KeyRing::single(MasterKey::generate().unwrap());
        assert_eq!(
            verify_keyring(d.path(), &ring).unwrap(),
            VerifyReport::default()
        );
    }
}
