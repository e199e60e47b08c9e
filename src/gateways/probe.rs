//! Readiness: a gateway is ready when `GET <health_path>` answers 2xx. Probed from the moment
//! the start call returns, at [`probe_interval`]; no fixed sleep.

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Pause between two probes once a gateway is slow to come up (a refused connection fails at
/// once, so this is the cadence).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(25);
/// Pause during the first second: a small gateway is up within tens of milliseconds of its
/// start, and every millisecond here is cold-start latency; a refused connect costs ~20 µs.
const PROBE_INTERVAL_EARLY: Duration = Duration::from_millis(5);
const EARLY: Duration = Duration::from_secs(1);

/// The pause before the next probe, `since` the container started.
pub fn probe_interval(since: Duration) -> Duration {
    if since < EARLY {
        PROBE_INTERVAL_EARLY
    } else {
        PROBE_INTERVAL
    }
}
/// Longest wait for one probe's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// An HTTP/1.1 client for health probes; no pooling, so a probe never reuses a connection to
/// a container that is gone.
#[derive(Clone)]
pub struct Prober {
    client: Client<HttpConnector, Empty<Bytes>>,
    path: String,
}

impl Prober {
    /// Probes `health_path` (starts with `/`).
    pub fn new(health_path: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(PROBE_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Self {
            client,
            path: health_path.to_string(),
        }
    }

    /// One probe: true on a 2xx answer.
    pub async fn healthy(&self, base: &http::uri::Authority, token: &str) -> bool {
        let Ok(uri) = http::Uri::builder()
            .scheme("http")
            .authority(base.clone())
            .path_and_query(self.path.as_str())
            .build()
        else {
            return false;
        };
        let Ok(req) = http::Request::get(uri)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Empty::new())
        else {
            return false;
        };
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, self.client.request(req)).await,
            Ok(Ok(resp)) if resp.status().is_success()
        )
    }
}
