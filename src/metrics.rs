//! Prometheus metrics: one typed registry, `mcp_frontdoor_` prefix, bounded label values only
//! (route classes, status codes, fixed reasons; never a user id or a path), plus the standard
//! `process_*` metrics. `/metrics` answers Prometheus text 0.0.4 or OpenMetrics by `Accept`.

mod exposition;
mod process;

pub use exposition::Format;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The class of a request path; the only path information a metric carries.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum RouteClass {
    /// `/mcp` (streamable HTTP).
    Mcp,
    /// `/sse` and the legacy message endpoint.
    Sse,
    /// Any other path served by the gateway.
    Gateway,
    /// `/api/v1/*`.
    Api,
    /// `/healthz`, `/readyz`, `/.well-known/*`.
    Local,
}

impl RouteClass {
    /// The label value (lower case, as Prometheus conventions have it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mcp => "mcp",
            Self::Sse => "sse",
            Self::Gateway => "gateway",
            Self::Api => "api",
            Self::Local => "local",
        }
    }
}

impl EncodeLabelValue for RouteClass {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: RouteClass,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: RouteClass,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

/// `mcp_frontdoor_build_info` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    /// `release` or `debug`.
    profile: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~16 s: proxy overhead at the low end, gateway cold starts at the high end.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the front door exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by route class and final status.
    pub requests: Family<RequestLabels, Counter>,
    /// Time until the response head is sent (streams run on; their length is not latency).
    pub request_duration: HistogramFamily<RouteLabels>,
    /// Event-stream responses currently open.
    pub open_streams: Gauge,
    /// Authentication failures by reason.
    pub auth_failures: Family<ReasonLabels, Counter>,
    /// Failures to reach a gateway by kind (connect, timeout, protocol).
    pub upstream_errors: Family<ReasonLabels, Counter>,
    /// MCP sessions currently bound to a user.
    pub bound_sessions: Gauge,
}

impl Metrics {
    /// Builds the registry; `extra` registers metrics owned by other modules (catalog, gateways).
    pub fn new(extra: impl FnOnce(&mut Registry)) -> Self {
        // `process_*` are the standard unprefixed names; everything of ours is prefixed.
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("mcp_frontdoor");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                profile: if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                },
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the labels say which build of mcp-frontdoor is running",
            build_info,
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by route class and status",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from request to response head",
            request_duration.clone(),
        );
        let open_streams = Gauge::default();
        registry.register(
            "open_streams",
            "Open event-stream responses",
            open_streams.clone(),
        );
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "auth_failures",
            "Authentication failures by reason",
            auth_failures.clone(),
        );
        let upstream_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Failures to reach a gateway by kind",
            upstream_errors.clone(),
        );
        let bound_sessions = Gauge::default();
        registry.register(
            "bound_sessions",
            "MCP session ids bound to a user",
            bound_sessions.clone(),
        );
        extra(registry);
        Self {
            registry: root,
            requests,
            request_duration,
            open_streams,
            auth_failures,
            upstream_errors,
            bound_sessions,
        }
    }

    /// Counts a request by route class and status and observes its time to response head.
    pub fn record_request(&self, route: RouteClass, status: u16, elapsed: std::time::Duration) {
        self.requests
            .get_or_create(&RequestLabels { route, status })
            .inc();
        self.request_duration
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
    }

    /// Everything registered, in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Format::OpenMetrics => out,
            Format::Prometheus => exposition::to_prometheus(&out),
        }
    }
}
