//! Lifecycle metrics: gateways by state, start duration by outcome, starts / stops / idle
//! stops / crashes / evictions, and the runtime's API errors. Labels are closed sets.

use crate::runtime::RuntimeMetrics;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::fmt::Write as _;

/// A gateway state as a metric label (`stopped` is not counted: it is every user ever seen).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum StateLabel {
    Starting,
    Ready,
    Stopping,
    Failed,
}

/// How a start ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum StartOutcome {
    /// Ready and answering its health check.
    Ready,
    /// Found running at start-up (or after an engine reconnect) and adopted.
    Adopted,
    /// `spawn_timeout` passed first.
    Timeout,
    /// The image could not be had.
    Image,
    /// The engine refused or could not be reached.
    Engine,
    /// The gateway exited before it became healthy.
    Exited,
    /// Catalog or secrets could not be prepared.
    Prepare,
}

impl EncodeLabelValue for StateLabel {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(match self {
            StateLabel::Starting => "starting",
            StateLabel::Ready => "ready",
            StateLabel::Stopping => "stopping",
            StateLabel::Failed => "failed",
        })
    }
}

impl StartOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StartOutcome::Ready => "ready",
            StartOutcome::Adopted => "adopted",
            StartOutcome::Timeout => "timeout",
            StartOutcome::Image => "image",
            StartOutcome::Engine => "engine",
            StartOutcome::Exited => "exited",
            StartOutcome::Prepare => "prepare",
        }
    }
}

impl EncodeLabelValue for StartOutcome {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        e.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: StateLabel,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: StartOutcome,
}

fn start_histogram() -> Histogram {
    // 50 ms .. ~100 s: a local image starts in well under a second, a pull takes minutes.
    Histogram::new(exponential_buckets(0.05, 2.0, 12))
}

/// Every lifecycle metric; cheap to clone.
#[derive(Clone)]
pub struct GatewayMetrics {
    states: Family<StateLabels, Gauge>,
    start_duration: Family<OutcomeLabels, Histogram, fn() -> Histogram>,
    pub starts: Counter,
    pub stops: Counter,
    pub idle_stops: Counter,
    pub crashes: Counter,
    pub evictions: Counter,
    /// Starts that found another replica's gateway and adopted it instead (DESIGN.md §8).
    pub adopted_from_peer: Counter,
    /// Idle stops put off because a peer replica still used the gateway.
    pub peer_kept: Counter,
    /// MCP server containers the running gateways have started (see `servers.rs`).
    pub server_containers: Gauge,
    /// 1 while the container engine answers, 0 once a call found it unreachable.
    pub engine_reachable: Gauge,
    pub runtime: RuntimeMetrics,
    /// The policed Docker API of gateways (`crate::dockerapi`).
    pub api: crate::dockerapi::ApiMetrics,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            states: Family::default(),
            start_duration: Family::new_with_constructor(start_histogram),
            starts: Counter::default(),
            stops: Counter::default(),
            idle_stops: Counter::default(),
            crashes: Counter::default(),
            evictions: Counter::default(),
            adopted_from_peer: Counter::default(),
            peer_kept: Counter::default(),
            server_containers: Gauge::default(),
            engine_reachable: Gauge::default(),
            runtime: RuntimeMetrics::default(),
            api: crate::dockerapi::ApiMetrics::default(),
        }
    }
}

impl GatewayMetrics {
    /// Registers under the registry's `mcp_frontdoor` prefix (counters get `_total`).
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "gateways",
            "Gateways by lifecycle state",
            self.states.clone(),
        );
        r.register(
            "gateway_start_duration_seconds",
            "Time from the start decision to a healthy gateway, by outcome",
            self.start_duration.clone(),
        );
        r.register(
            "gateway_starts",
            "Gateway starts begun",
            self.starts.clone(),
        );
        r.register(
            "gateway_stops",
            "Gateways stopped and removed (any reason)",
            self.stops.clone(),
        );
        r.register(
            "gateway_idle_stops",
            "Gateways stopped for being idle",
            self.idle_stops.clone(),
        );
        r.register(
            "gateway_crashes",
            "Gateways that died without being stopped",
            self.crashes.clone(),
        );
        r.register(
            "gateway_evictions",
            "Idle gateways stopped to make room under gateways.max_running",
            self.evictions.clone(),
        );
        r.register(
            "gateway_adopted_from_peer",
            "Starts that adopted the gateway another front door replica started",
            self.adopted_from_peer.clone(),
        );
        r.register(
            "gateway_peer_kept",
            "Idle stops put off because a peer replica still used the gateway",
            self.peer_kept.clone(),
        );
        r.register(
            "gateway_server_containers",
            "MCP server containers that running gateways have started",
            self.server_containers.clone(),
        );
        r.register(
            "engine_reachable",
            "1 while the container engine answers, 0 when the last call could not reach it",
            self.engine_reachable.clone(),
        );
        self.runtime.register(r);
        self.api.register(r);
    }

    /// Moves one gateway between states (`None` is stopped).
    pub fn transition(&self, from: Option<StateLabel>, to: Option<StateLabel>) {
        if from == to {
            return;
        }
        if let Some(f) = from {
            self.states.get_or_create(&StateLabels { state: f }).dec();
        }
        if let Some(t) = to {
            self.states.get_or_create(&StateLabels { state: t }).inc();
        }
    }

    /// Gateways in `state` now (the gauge's value).
    pub fn count(&self, state: StateLabel) -> i64 {
        self.states.get_or_create(&StateLabels { state }).get()
    }

    /// Starts that ended with `outcome` so far (read as a scrape reads them).
    #[cfg(test)]
    pub fn finished(&self, outcome: StartOutcome) -> u64 {
        let mut r = Registry::default();
        r.register("d", "", self.start_duration.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        let prefix = format!("d_count{{outcome=\"{}\"}} ", outcome.as_str());
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
            .unwrap_or(0)
    }

    /// Records how long a start took and how it ended.
    pub fn start_finished(&self, outcome: StartOutcome, secs: f64) {
        self.start_duration
            .get_or_create(&OutcomeLabels { outcome })
            .observe(secs);
    }
}
