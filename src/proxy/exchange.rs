//! The one exit of every request the public listener serves (proxied or the front door's own,
//! answered or refused): counted in the request metrics when its answer's head is known, and
//! logged as one `request` line when its answer is over (for a proxied body: finished, or the
//! client gone).

use crate::metrics::{Metrics, RouteClass};
use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A request before its answer: what the log line says about it.
pub struct RequestLine {
    pub method: http::Method,
    pub route: RouteClass,
    pub started: Instant,
    /// The caller's slug once authenticated.
    pub user: Option<Arc<str>>,
}

impl RequestLine {
    pub fn new(method: http::Method, route: RouteClass) -> Self {
        Self {
            method,
            route,
            started: Instant::now(),
            user: None,
        }
    }

    /// The answer's head is known: counted now (the latency is time to the head; a stream's
    /// body may last hours), logged when the returned exchange is dropped.
    pub fn answered(self, status: u16, metrics: Arc<Metrics>) -> Exchange {
        metrics.record_request(self.route, status, self.started.elapsed());
        Exchange {
            line: self,
            status,
            metrics,
            body: None,
            error: None,
            stream: false,
        }
    }
}

/// The bytes of a proxied exchange (the front door's own answers count none).
struct Traffic {
    /// `None` for a request without a body.
    bytes_in: Option<Arc<AtomicU64>>,
    bytes_out: u64,
    finished: bool,
    /// The gateway lease: keeps the user's gateway "active" while the body is open.
    _lease: Option<Box<dyn Any + Send + Sync>>,
}

/// One answered request; logged once when dropped.
pub struct Exchange {
    line: RequestLine,
    status: u16,
    metrics: Arc<Metrics>,
    body: Option<Traffic>,
    /// Why the front door answered itself (never upstream text, see `error.rs`).
    error: Option<String>,
    /// Counted in `open_streams` while alive.
    stream: bool,
}

impl Exchange {
    /// A refusal or failure: its reason goes on the log line.
    pub fn failed(mut self, error: &dyn std::fmt::Display) -> Self {
        self.error = Some(error.to_string());
        self
    }

    /// A body streamed from a gateway: its bytes are counted and the lease held until it ends.
    pub fn proxied(
        mut self,
        bytes_in: Option<Arc<AtomicU64>>,
        lease: Option<Box<dyn Any + Send + Sync>>,
    ) -> Self {
        self.body = Some(Traffic {
            bytes_in,
            bytes_out: 0,
            finished: false,
            _lease: lease,
        });
        self
    }

    /// Marks an event stream open (the gauge goes down again on drop).
    pub fn open_stream(&mut self) {
        self.stream = true;
        self.metrics.open_streams.inc();
    }

    /// The caller's slug ("-" before authentication).
    pub fn user(&self) -> &str {
        self.line.user.as_deref().unwrap_or("-")
    }

    pub(super) fn sent(&mut self, n: usize) {
        if let Some(t) = &mut self.body {
            t.bytes_out += n as u64;
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some(t) = &mut self.body {
            t.finished = true;
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if self.stream {
            self.metrics.open_streams.dec();
        }
        let l = &self.line;
        let duration_ms = l.started.elapsed().as_millis() as u64;
        let (method, route, user, status) = (&l.method, l.route, self.user(), self.status);
        match (&self.body, &self.error) {
            (Some(t), _) => tracing::info!(
                %method, ?route, user, status, duration_ms,
                bytes_in = t.bytes_in.as_ref().map_or(0, |b| b.load(Ordering::Relaxed)),
                bytes_out = t.bytes_out,
                completed = t.finished,
                "request"
            ),
            (None, Some(error)) => tracing::info!(
                %method, ?route, user, status, duration_ms, %error, "request"
            ),
            (None, None) => tracing::info!(%method, ?route, user, status, duration_ms, "request"),
        }
    }
}
