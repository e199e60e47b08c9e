//! Merged catalogs cached per user by input hash, and the channel that tells the gateway
//! lifecycle when a user's hash changed.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::broadcast;

use super::merge::{input_hash, merge, CatalogHash, MergeInputs};
use super::metrics::{CacheResult, CatalogMetrics};
use super::model::Catalog;

/// Events kept for slow subscribers before they see `RecvError::Lagged`.
const EVENT_CAPACITY: usize = 1024;

/// A user's merged catalog changed; their running gateway (if any) is stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogChanged {
    /// The user's slug.
    pub slug: String,
    /// The new catalog hash (compare with the container's `mcp-frontdoor.catalog-hash`).
    pub hash: CatalogHash,
}

/// A merged catalog and where it came from.
#[derive(Clone, Debug)]
pub struct MergedCatalog {
    /// Hash of the inputs.
    pub hash: CatalogHash,
    /// The merge result, shared.
    pub catalog: Arc<Catalog>,
    /// True when the hash matched the cached entry and no merge ran.
    pub cache_hit: bool,
}

/// Per-user cache of `(input hash, merged catalog)`.
#[derive(Debug)]
pub struct CatalogCache {
    entries: RwLock<HashMap<String, (CatalogHash, Arc<Catalog>)>>,
    events: broadcast::Sender<CatalogChanged>,
    metrics: Arc<CatalogMetrics>,
    /// Serializes regeneration per user, so an older merge never overwrites a newer one.
    regen_locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Default for CatalogCache {
    fn default() -> Self {
        Self::new(Arc::default())
    }
}

impl CatalogCache {
    /// An empty cache reporting to `metrics`.
    pub fn new(metrics: Arc<CatalogMetrics>) -> Self {
        CatalogCache {
            entries: RwLock::new(HashMap::new()),
            events: broadcast::channel(EVENT_CAPACITY).0,
            metrics,
            regen_locks: Mutex::new(HashMap::new()),
        }
    }

    /// Subscribes to hash changes. On `RecvError::Lagged` a subscriber missed events and
    /// should treat every user's gateway as possibly stale.
    pub fn subscribe(&self) -> broadcast::Receiver<CatalogChanged> {
        self.events.subscribe()
    }

    /// The merged catalog for `inputs`: the cached one when the input hash is unchanged,
    /// otherwise a fresh merge that replaces the cache entry.
    pub fn get_or_merge(&self, slug: &str, inputs: &MergeInputs) -> MergedCatalog {
        let hash = input_hash(inputs);
        if let Some((h, c)) = self.entries.read().get(slug) {
            if *h == hash {
                self.metrics.inc_cache(CacheResult::Hit);
                return MergedCatalog {
                    hash,
                    catalog: c.clone(),
                    cache_hit: true,
                };
            }
        }
        self.metrics.inc_cache(CacheResult::Miss);
        self.metrics.inc_merges();
        let catalog = Arc::new(merge(inputs));
        self.entries
            .write()
            .insert(slug.to_owned(), (hash.clone(), catalog.clone()));
        MergedCatalog {
            hash,
            catalog,
            cache_hit: false,
        }
    }

    /// The cached entry for a user, if any.
    pub fn get(&self, slug: &str) -> Option<(CatalogHash, Arc<Catalog>)> {
        self.entries.read().get(slug).cloned()
    }

    /// Drops a user's entry (e.g. after their data was deleted).
    pub fn remove(&self, slug: &str) {
        self.entries.write().remove(slug);
    }

    /// The lock held while a user's `merged.yaml` is regenerated.
    pub(crate) fn regen_lock(&self, slug: &str) -> Arc<Mutex<()>> {
        self.regen_locks
            .lock()
            .entry(slug.to_owned())
            .or_default()
            .clone()
    }

    /// Announces that a user's catalog hash changed. No subscriber is not an error.
    pub fn notify(&self, slug: &str, hash: CatalogHash) {
        let _ = self.events.send(CatalogChanged {
            slug: slug.to_owned(),
            hash,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::digest::Digested;
    use crate::catalog::format::Format;
    use crate::catalog::merge::BaseLayer;

    fn inputs(image: &str) -> MergeInputs {
        let mut i = MergeInputs::empty();
        let c = Catalog::parse(
            format!("registry:\n  a: {{image: {image}}}\n").as_bytes(),
            Format::Yaml,
        )
        .unwrap();
        i.base.push(BaseLayer {
            name: "b".into(),
            priority: 0,
            catalog: Digested::new(c),
        });
        i
    }

    #[test]
    fn hit_on_same_inputs_miss_on_change() {
        let cache = CatalogCache::default();
        let first = cache.get_or_merge("alice", &inputs("x/a"));
        assert!(!first.cache_hit);
        let second = cache.get_or_merge("alice", &inputs("x/a"));
        assert!(second.cache_hit);
        assert!(Arc::ptr_eq(&first.catalog, &second.catalog));
        let third = cache.get_or_merge("alice", &inputs("x/b"));
        assert!(!third.cache_hit);
        assert_ne!(third.hash, first.hash);
        assert!(!cache.get_or_merge("bob", &inputs("x/a")).cache_hit);
        cache.remove("bob");
        assert!(cache.get("bob").is_none());
    }

    #[tokio::test]
    async fn subscribers_see_changes() {
        let cache = CatalogCache::default();
        let mut rx = cache.subscribe();
        let h = cache.get_or_merge("alice", &inputs("x/a")).hash;
        cache.notify("alice", h.clone());
        let ev = rx.recv().await.unwrap();
        assert_eq!(
            ev,
            CatalogChanged {
                slug: "alice".into(),
                hash: h
            }
        );
    }
}
