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

/// Whether an engine of this version lets traffic between two users' bridge networks through
/// while another network is created: engines before 28 delete and re-insert their FORWARD
/// jump to the isolation chains as two steps on every create, and in between every
/// non-internal bridge accepts what leaves it (README, "Isolation between users"). Internal
/// networks accept nothing leaving them, so the gap does not open for them.
pub(super) fn isolation_gap(version: &str, internal_networks: bool) -> bool {
    let major = version
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    !internal_networks && major.is_some_and(|m| m < 28)
}

#[cfg(test)]
mod tests {
    use super::isolation_gap;

    #[test]
    fn engines_before_28_open_the_gap_for_non_internal_networks() {
        assert!(isolation_gap("20.10.24+dfsg1", false));
        assert!(isolation_gap("27.5.1", false));
        assert!(!isolation_gap("20.10.24+dfsg1", true));
        assert!(!isolation_gap("28.0.0", false));
        assert!(!isolation_gap("28.2.2", false));
        assert!(!isolation_gap("", false), "unknown: no claim either way");
        assert!(!isolation_gap("dev", false));
    }
}
