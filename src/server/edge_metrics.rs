//! Connection metrics of the listeners: open, accepted, closed by the front door (with a
//! fixed reason) and accept errors. Labels are the listener name and a fixed reason only.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why the front door closed (or refused) a connection; the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Accepted and closed at once: `server.max_connections` open and none could be evicted.
    OverCapacity,
    /// Accepted and closed at once: `server.max_connections_per_address` from this address.
    PerAddress,
    /// The TLS handshake did not finish within `server.tls_handshake_timeout` of accept.
    HandshakeTimeout,
    /// The TLS handshake failed (not TLS, bad version, ...).
    HandshakeFailed,
    /// No complete request head within `server.first_request_timeout` of accept.
    FirstRequestTimeout,
    /// No request in flight for `server.idle_timeout` (keep-alive h1, h2 without streams).
    IdleTimeout,
    /// Closed to make room for a new connection at the cap (never authenticated, idle).
    Evicted,
}

impl CloseReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OverCapacity => "over_capacity",
            Self::PerAddress => "per_address",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::HandshakeFailed => "handshake_failed",
            Self::FirstRequestTimeout => "first_request_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::Evicted => "evicted",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloseLabels {
    listener: &'static str,
    reason: &'static str,
}

/// The connection metrics of every listener.
#[derive(Clone, Default)]
pub struct EdgeMetrics {
    open: Family<ListenerLabels, Gauge>,
    accepted: Family<ListenerLabels, Counter>,
    closed: Family<CloseLabels, Counter>,
    accept_errors: Family<ListenerLabels, Counter>,
}

impl EdgeMetrics {
    /// Adds the families to `r` (prefixed `mcp_frontdoor_` by the registry).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "connections_open",
            "Client connections open, by listener",
            self.open.clone(),
        );
        r.register(
            "connections_accepted",
            "Client connections accepted, by listener",
            self.accepted.clone(),
        );
        r.register(
            "connections_closed",
            "Client connections the front door closed or refused, by listener and reason",
            self.closed.clone(),
        );
        r.register(
            "accept_errors",
            "Failed accept calls (out of descriptors, ...), by listener",
            self.accept_errors.clone(),
        );
    }

    pub(super) fn accepted(&self, listener: &'static str) {
        self.accepted
            .get_or_create(&ListenerLabels { listener })
            .inc();
    }

    pub(super) fn opened(&self, listener: &'static str, delta: i64) {
        self.open
            .get_or_create(&ListenerLabels { listener })
            .inc_by(delta);
    }

    pub(super) fn closed(&self, listener: &'static str, reason: CloseReason) {
        self.closed
            .get_or_create(&CloseLabels {
                listener,
                reason: reason.as_str(),
            })
            .inc();
    }

    pub(super) fn accept_error(&self, listener: &'static str) {
        self.accept_errors
            .get_or_create(&ListenerLabels { listener })
            .inc();
    }
}
