//! Catalog metrics: generation duration, merges, cache hits/misses, file errors.
//! Labels are closed enums, so cardinality is fixed.

use std::fmt::Write as _;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::storage::FileOp;

/// `result` label of the cache counter.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CacheResult {
    /// The input hash matched; the cached merge was reused.
    Hit,
    /// The inputs changed (or were never seen); a merge ran.
    Miss,
}

impl EncodeLabelValue for CacheResult {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
        })
    }
}

impl EncodeLabelValue for FileOp {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: CacheResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileOpLabels {
    op: FileOp,
}

/// Catalog metrics; cheap to clone (all handles are shared).
#[derive(Clone, Debug)]
pub struct CatalogMetrics {
    generation_duration: Histogram,
    merges: Counter,
    cache: Family<CacheLabels, Counter>,
    file_errors: Family<FileOpLabels, Counter>,
}

impl Default for CatalogMetrics {
    fn default() -> Self {
        CatalogMetrics {
            // 10 µs .. ~1.3 s: a merge is sub-millisecond, a regeneration with disk I/O is more.
            generation_duration: Histogram::new(exponential_buckets(0.000_01, 4.0, 9)),
            merges: Counter::default(),
            cache: Family::default(),
            file_errors: Family::default(),
        }
    }
}

impl CatalogMetrics {
    /// Registers every catalog metric into the front door's registry, which adds the
    /// `mcp_frontdoor_` prefix; counters get `_total` from prometheus-client.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "catalog_generation_duration_seconds",
            "Time to produce a user's merged catalog (load, merge, write)",
            self.generation_duration.clone(),
        );
        registry.register(
            "catalog_merges",
            "Merges computed (cache misses that ran the merge)",
            self.merges.clone(),
        );
        registry.register(
            "catalog_cache",
            "Merged catalog cache lookups by result",
            self.cache.clone(),
        );
        registry.register(
            "catalog_file_errors",
            "Failed file operations on catalog files in the data dir, by operation",
            self.file_errors.clone(),
        );
    }

    /// Records one catalog generation.
    pub fn observe_generation(&self, d: Duration) {
        self.generation_duration.observe(d.as_secs_f64());
    }

    /// Counts one merge.
    pub fn inc_merges(&self) {
        self.merges.inc();
    }

    /// Counts one cache lookup.
    pub fn inc_cache(&self, result: CacheResult) {
        self.cache.get_or_create(&CacheLabels { result }).inc();
    }

    /// Counts one failed file operation.
    pub fn inc_file_error(&self, op: FileOp) {
        self.file_errors.get_or_create(&FileOpLabels { op }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_prefixed_names() {
        let m = CatalogMetrics::default();
        let mut reg = Registry::with_prefix("mcp_frontdoor");
        m.register(&mut reg);
        m.inc_cache(CacheResult::Hit);
        m.inc_cache(CacheResult::Miss);
        m.inc_merges();
        m.inc_file_error(FileOp::Rename);
        m.observe_generation(Duration::from_micros(300));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        for want in [
            "mcp_frontdoor_catalog_cache_total{result=\"hit\"} 1",
            "mcp_frontdoor_catalog_cache_total{result=\"miss\"} 1",
            "mcp_frontdoor_catalog_merges_total 1",
            "mcp_frontdoor_catalog_file_errors_total{op=\"rename\"} 1",
            "mcp_frontdoor_catalog_generation_duration_seconds_count 1",
        ] {
            assert!(out.contains(want), "missing {want} in\n{out}");
        }
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("mcp_frontdoor_"), "{line}");
        }
    }
}
