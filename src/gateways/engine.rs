//! Whether the container engine answers: every engine call that can tell says so here, and
//! requests that need a start fail fast while it is known to be away (`/readyz` reads it too).

use crate::runtime::RuntimeError;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicBool, Ordering};

/// The engine's reachability, as the last call found it.
#[derive(Debug)]
pub(super) struct EngineHealth {
    reachable: AtomicBool,
    /// `mcp_frontdoor_engine_reachable`.
    gauge: Gauge,
}

impl EngineHealth {
    /// Unknown (so: not reachable) until the first call answers.
    pub fn new(gauge: Gauge) -> Self {
        Self {
            reachable: AtomicBool::new(false),
            gauge,
        }
    }

    /// True when the engine answered lately.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Acquire)
    }

    /// Records what an engine call said about reachability (other errors say nothing).
    pub fn note(&self, result: &Result<(), &RuntimeError>) {
        match result {
            Ok(()) => {
                self.reachable.store(true, Ordering::Release);
                self.gauge.set(1);
            }
            Err(e) if e.is_unreachable() => {
                self.gauge.set(0);
                if self.reachable.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "container engine unreachable");
                }
            }
            Err(_) => {}
        }
    }
}
