//! The registry of per-user slots and the state machine each one runs:
//! `stopped → starting → ready → stopping → stopped`, `failed(reason)`.
//!
//! A slot's phase is behind a short `parking_lot` lock that is never held across an await.
//! Transitions that take time (start, stop) publish a `watch` receiver in the phase, so every
//! request that arrives meanwhile waits on the same work instead of starting its own.

use super::metrics::{GatewayMetrics, StateLabel};
use super::state_events::StateEvents;
use super::subnets::Subnet;
use super::GatewayError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::{watch, Notify};

/// The outcome of a start as waiters see it.
pub type StartResult = Option<Result<(), GatewayError>>;

/// A gateway that is (or was) running.
#[derive(Debug)]
pub struct Running {
    pub container_id: String,
    pub container_name: String,
    pub network: String,
    /// The subnet this process reserved for its network (none when adopted without one).
    pub subnet: Option<Subnet>,
    pub base: http::uri::Authority,
    /// `Bearer <token>` for every proxied request (sensitive: never in debug output).
    pub authorization: Option<http::HeaderValue>,
    pub catalog_hash: String,
    pub started_at: SystemTime,
    /// The front door container joined to the network, to leave it at stop.
    pub joined: Option<String>,
    /// The catalog changed since spawn; replace at the next idle moment.
    pub stale: AtomicBool,
    /// Servers of the catalog left out of this gateway, and why.
    pub unavailable: Vec<super::availability::Unavailable>,
}

/// Where a slot is in its life.
#[derive(Debug)]
pub enum Phase {
    Stopped,
    Starting {
        done: watch::Receiver<StartResult>,
    },
    Ready(Arc<Running>),
    Stopping {
        done: watch::Receiver<bool>,
        running: Arc<Running>,
    },
    Failed {
        error: GatewayError,
        at: Instant,
    },
}

impl Phase {
    /// The metric label (`None` for stopped).
    pub fn label(&self) -> Option<StateLabel> {
        match self {
            Phase::Stopped => None,
            Phase::Starting { .. } => Some(StateLabel::Starting),
            Phase::Ready(_) => Some(StateLabel::Ready),
            Phase::Stopping { .. } => Some(StateLabel::Stopping),
            Phase::Failed { .. } => Some(StateLabel::Failed),
        }
    }

    /// The API's name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Starting { .. } => "starting",
            Phase::Ready(_) => "ready",
            Phase::Stopping { .. } => "stopping",
            Phase::Failed { .. } => "failed",
        }
    }

    /// True for starting and ready (what counts against `max_running`).
    pub fn occupies(&self) -> bool {
        matches!(self, Phase::Starting { .. } | Phase::Ready(_))
    }
}

/// One user's gateway slot.
#[derive(Debug)]
pub struct Slot {
    pub slug: String,
    phase: Mutex<Phase>,
    /// Requests and streams in flight (held [`Lease`]s).
    leases: AtomicU64,
    /// Last request start or end, milliseconds since the epoch.
    last_active_ms: AtomicU64,
    /// Teams of the last principal seen: a restart merges the catalog for them.
    pub teams: Mutex<Vec<String>>,
    /// When the catalog hash was last compared on a request (ms since the epoch).
    pub last_catalog_check_ms: AtomicU64,
    /// Woken when the last lease of a stale gateway ends.
    idle_wake: Arc<Notify>,
    /// Where state changes are published (the event stream).
    events: StateEvents,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Slot {
    fn new(slug: &str, idle_wake: Arc<Notify>, events: StateEvents) -> Self {
        Self {
            slug: slug.to_string(),
            phase: Mutex::new(Phase::Stopped),
            leases: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(now_ms()),
            teams: Mutex::new(Vec::new()),
            last_catalog_check_ms: AtomicU64::new(0),
            idle_wake,
            events,
        }
    }

    /// Runs `f` on the phase under its lock.
    pub fn with_phase<R>(&self, f: impl FnOnce(&Phase) -> R) -> R {
        f(&self.phase.lock())
    }

    /// Runs `f` on the phase under its lock; `f` may replace it. Keeps the state gauge right.
    pub fn update<R>(&self, metrics: &GatewayMetrics, f: impl FnOnce(&mut Phase) -> R) -> R {
        let mut phase = self.phase.lock();
        let (before, name) = (phase.label(), phase.name());
        let r = f(&mut phase);
        metrics.transition(before, phase.label());
        self.events.changed(&self.slug, name, &phase);
        r
    }

    /// Replaces the phase when `pred` holds; returns whether it did.
    pub fn transition_if(
        &self,
        metrics: &GatewayMetrics,
        pred: impl FnOnce(&Phase) -> bool,
        next: impl FnOnce() -> Phase,
    ) -> bool {
        self.update(metrics, |p| {
            let go = pred(p);
            if go {
                *p = next();
            }
            go
        })
    }

    /// Takes a lease on the ready gateway, atomically with checking that it is ready, so the
    /// reaper never stops a gateway between the check and the lease.
    pub fn lease_if_ready(self: &Arc<Self>) -> Option<(Arc<Running>, Lease)> {
        let phase = self.phase.lock();
        match &*phase {
            Phase::Ready(r) => Some((r.clone(), Lease::new(self.clone()))),
            _ => None,
        }
    }

    /// Open requests and streams.
    pub fn leases(&self) -> u64 {
        self.leases.load(Ordering::Acquire)
    }

    /// Last activity (ms since the epoch).
    pub fn last_active_ms(&self) -> u64 {
        self.last_active_ms.load(Ordering::Acquire)
    }

    /// Continues an adopted gateway's clock.
    pub fn set_last_active_ms(&self, ms: u64) {
        self.last_active_ms.store(ms, Ordering::Release);
    }

    fn touch(&self) {
        self.last_active_ms.fetch_max(now_ms(), Ordering::AcqRel);
    }

    /// Idle for at least `ms`: no lease and no activity for that long.
    pub fn idle_for(&self, ms: u64) -> bool {
        self.leases() == 0 && now_ms().saturating_sub(self.last_active_ms()) >= ms
    }
}

/// Held by the proxy until the response body ends: an open request or stream.
pub struct Lease {
    slot: Arc<Slot>,
}

impl Lease {
    fn new(slot: Arc<Slot>) -> Self {
        slot.leases.fetch_add(1, Ordering::AcqRel);
        slot.touch();
        Self { slot }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slot.touch();
        if self.slot.leases.fetch_sub(1, Ordering::AcqRel) == 1 {
            let stale = self.slot.with_phase(|p| match p {
                Phase::Ready(r) => r.stale.load(Ordering::Acquire),
                _ => false,
            });
            if stale {
                self.slot.idle_wake.notify_one();
            }
        }
    }
}

/// Every user's slot.
#[derive(Debug, Default)]
pub struct Registry {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    /// Wakes the reaper (a stale gateway went idle).
    pub idle_wake: Arc<Notify>,
    /// Serializes start decisions, so `max_running` is checked against a consistent count.
    pub capacity: Mutex<()>,
    /// Handed to every slot: its state changes become `gateway.state` events.
    pub events: StateEvents,
}

impl Registry {
    /// A registry whose slots publish their state changes to `bus`.
    pub fn with_events(bus: Arc<crate::events::EventBus>) -> Self {
        Self {
            events: StateEvents::to(bus),
            ..Self::default()
        }
    }

    /// The slot of `slug`, created stopped on first use.
    pub fn slot(&self, slug: &str) -> Arc<Slot> {
        self.slots
            .lock()
            .entry(slug.to_string())
            .or_insert_with(|| {
                Arc::new(Slot::new(slug, self.idle_wake.clone(), self.events.clone()))
            })
            .clone()
    }

    /// The slot of `slug` if there is one.
    pub fn get(&self, slug: &str) -> Option<Arc<Slot>> {
        self.slots.lock().get(slug).cloned()
    }

    /// A snapshot of every slot.
    pub fn all(&self) -> Vec<Arc<Slot>> {
        self.slots.lock().values().cloned().collect()
    }

    /// Forgets stopped slots nobody holds (keeps the map bounded by active users).
    pub fn prune(&self) {
        self.slots.lock().retain(|_, s| {
            Arc::strong_count(s) > 1 || !s.with_phase(|p| matches!(p, Phase::Stopped))
        });
    }

    /// How many gateways count against `max_running`, not counting `except`.
    pub fn occupied_except(&self, except: &Slot) -> usize {
        self.all()
            .iter()
            .filter(|s| !std::ptr::eq(s.as_ref(), except))
            .filter(|s| s.with_phase(Phase::occupies))
            .count()
    }

    /// The least recently used ready gateway without open requests, other than `except`.
    pub fn lru_idle_except(&self, except: &Slot) -> Option<Arc<Slot>> {
        self.all()
            .into_iter()
            .filter(|s| !std::ptr::eq(s.as_ref(), except))
            .filter(|s| s.leases() == 0 && s.with_phase(|p| matches!(p, Phase::Ready(_))))
            .min_by_key(|s| s.last_active_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Arc<Running> {
        Arc::new(Running {
            container_id: "c".into(),
            container_name: "n".into(),
            network: "n".into(),
            subnet: None,
            base: "127.0.0.1:1".parse().unwrap(),
            authorization: None,
            catalog_hash: "h".into(),
            started_at: SystemTime::now(),
            joined: None,
            stale: AtomicBool::new(false),
            unavailable: Vec::new(),
        })
    }

    #[test]
    fn leases_count_and_lru_picks_the_oldest_idle() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let (a, b, c) = (reg.slot("a"), reg.slot("b"), reg.slot("c"));
        for s in [&a, &b, &c] {
            assert!(s.transition_if(&m, |_| true, || Phase::Ready(running())));
        }
        a.set_last_active_ms(10);
        b.set_last_active_ms(5);
        c.set_last_active_ms(1);
        let (_, lease) = c.lease_if_ready().unwrap();
        assert_eq!(c.leases(), 1);
        // c is the oldest but busy; b is next.
        assert_eq!(reg.lru_idle_except(&a).unwrap().slug, "b");
        assert_eq!(reg.lru_idle_except(&b).unwrap().slug, "a");
        assert_eq!(reg.occupied_except(&a), 2);
        drop(lease);
        assert_eq!(c.leases(), 0);
        assert!(c.last_active_ms() > 1, "lease end is activity");
    }

    #[test]
    fn prune_keeps_held_and_active_slots() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let held = reg.slot("held");
        reg.slot("gone");
        reg.slot("ready")
            .transition_if(&m, |_| true, || Phase::Ready(running()));
        reg.prune();
        let mut left: Vec<String> = reg.all().iter().map(|s| s.slug.clone()).collect();
        left.sort();
        assert_eq!(left, ["held", "ready"]);
        drop(held);
    }
}
