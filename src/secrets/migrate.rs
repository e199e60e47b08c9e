//! Moving a user's secrets to another slug. Each value's AAD names the slug it was sealed for
//! (a file copied to another user does not open), so a user directory that moves to a new
//! slug (`crate::owners`) needs its values sealed again for the new name.

use super::error::SecretsError;
use super::seal::{open, seal, SecretsFile};
use super::store::{SecretStore, MAX_FILE_BYTES};
use crate::storage::files::read_limited;

impl SecretStore {
    /// The contents of `users/<from>/secrets.enc` with every value sealed for slug `to` under
    /// the current key (`None` when `from` has no secrets file). Writes nothing: the caller
    /// puts the bytes where `to` will live.
    pub fn resealed_for(&self, from: &str, to: &str) -> Result<Option<Vec<u8>>, SecretsError> {
        let path = self.path(from)?;
        self.path(to)?;
        let lock = self.user_lock(from);
        let _guard = lock.lock();
        let Some(bytes) = read_limited(&path, MAX_FILE_BYTES)? else {
            return Ok(None);
        };
        let mut file = SecretsFile::parse(&bytes, &path)?;
        let current = self.keyring().current();
        for (name, sealed) in file.entries.iter_mut() {
            let value = open(self.keyring(), &path, from, name, sealed)?;
            *sealed = seal(current, to, name, &value)?;
        }
        Ok(Some(file.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use crate::secrets::{KeyRing, SecretStore, SecretValue};
    use crate::storage::DataLayout;
    use std::sync::Arc;

    #[test]
    fn resealed_values_open_under_the_new_slug_only() {
        let d = tempfile::tempdir().unwrap();
        let key = d.path().join("k");
        std::fs::write(&key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let ring = Arc::new(KeyRing::load(None, Some(&key)).unwrap());
        let store = SecretStore::new(DataLayout::new(d.path()), ring);
        assert_eq!(store.resealed_for("old", "new").unwrap(), None);
        store
            .put("old", "github.token", &SecretValue::new("s3cret"))
            .unwrap();
        let bytes = store.resealed_for("old", "new").unwrap().unwrap();
        let new_dir = d.path().join("users/new");
        std::fs::create_dir_all(&new_dir).unwrap();
        std::fs::write(new_dir.join("secrets.enc"), &bytes).unwrap();
        let rendered = store.render_gateway_secrets("new").unwrap();
        assert!(rendered.contains("github.token=s3cret"), "opens as `new`");
        // The same bytes do not open for any other slug.
        std::fs::write(d.path().join("users/old/secrets.enc"), &bytes).unwrap();
        assert!(store.render_gateway_secrets("old").is_err());
    }
}
