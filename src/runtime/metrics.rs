//! Engine API errors by operation (a fixed set of operation names, so bounded).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    operation: &'static str,
}

/// Counters owned by the runtime; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RuntimeMetrics {
    api_errors: Family<OpLabels, Counter>,
}

impl RuntimeMetrics {
    /// Registers under the registry's `mcp_frontdoor` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "docker_api_errors",
            "Failed container engine API calls by operation",
            self.api_errors.clone(),
        );
    }

    /// Counts one failed call of `operation`.
    pub fn error(&self, operation: &'static str) {
        self.api_errors.get_or_create(&OpLabels { operation }).inc();
    }
}
