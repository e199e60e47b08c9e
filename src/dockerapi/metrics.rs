//! `gateway_api_refused_total{reason}`: calls the policed Docker API refused (a closed set of
//! reasons, see [`super::Reason`]).

use super::Reason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The policed API's counters; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ApiMetrics {
    refused: Family<ReasonLabels, Counter>,
}

impl ApiMetrics {
    /// Registers under the registry's `mcp_frontdoor` prefix.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "gateway_api_refused",
            "Docker API calls of gateways refused by the policed endpoint, by reason",
            self.refused.clone(),
        );
    }

    /// Counts one refusal.
    pub fn refused(&self, reason: Reason) {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .inc();
    }

    /// How many calls were refused for `reason` (tests).
    pub fn refused_count(&self, reason: Reason) -> u64 {
        self.refused
            .get_or_create(&ReasonLabels {
                reason: reason.label(),
            })
            .get()
    }
}
