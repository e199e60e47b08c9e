//! Verified tokens by hash, so a busy client pays the signature check once per token.

use super::principal::Principal;
use dashmap::DashMap;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A bounded map from sha256(token) to its verified principal and the fingerprint of the key
/// that verified it; valid until the token expires (the caller drops an entry whose key is
/// gone).
pub(super) struct TokenCache {
    entries: DashMap<[u8; 32], (Arc<Principal>, [u8; 32])>,
    capacity: usize,
}

/// The cache key; the raw token itself is never stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: DashMap::new(),
            capacity,
        }
    }

    /// The principal of a cached, unexpired token, and the key that verified it.
    pub fn get(&self, key: &[u8; 32], now: u64) -> Option<(Arc<Principal>, [u8; 32])> {
        let hit = self.entries.get(key)?;
        if hit.0.expires_at > now {
            return Some(hit.clone());
        }
        drop(hit);
        self.entries.remove(key);
        None
    }

    /// Forgets one token.
    pub fn remove(&self, key: &[u8; 32]) {
        self.entries.remove(key);
    }

    /// Remembers a token verified by the key with fingerprint `by`.
    pub fn insert(&self, key: [u8; 32], principal: Arc<Principal>, by: [u8; 32], now: u64) {
        if self.entries.len() >= self.capacity {
            self.entries.retain(|_, (p, _)| p.expires_at > now);
            if self.entries.len() >= self.capacity {
                // Still full of live tokens: start over rather than grow; the cost is one
                // signature check per token, not a wrong answer.
                self.entries.clear();
            }
        }
        self.entries.insert(key, (principal, by));
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(exp: u64) -> Arc<Principal> {
        Arc::new(Principal {
            user: "u".into(),
            slug: "u".into(),
            teams: vec![],
            roles: vec![],
            admin: false,
            expires_at: exp,
        })
    }

    #[test]
    fn expired_entries_are_not_returned_and_size_is_bounded() {
        let c = TokenCache::new(3);
        c.insert(token_hash("a"), p(100), [1; 32], 0);
        assert_eq!(c.get(&token_hash("a"), 50).unwrap().1, [1; 32]);
        assert!(c.get(&token_hash("a"), 100).is_none());
        for i in 0..10 {
            c.insert(token_hash(&i.to_string()), p(1000), [0; 32], 0);
            assert!(c.len() <= 3);
        }
    }
}
