//! The registry of per-user slots and the one state machine each runs. Every change of a
//! slot's phase is [`Slot::apply`]: an [`Event`] in, the new phase and an [`Effect`] (work the
//! caller must now do) out, the state gauge kept right in the same place. An event that does
//! not apply in the current phase changes nothing and returns `None`; the guards live in the
//! table, not at the call sites.
//!
//! ```text
//!   Stopped, Failed ─Start─▶ Starting{via: Start} ──────┬─Started─────▶ Ready{stale: false}
//!   Stopped, Failed ─Adopt─▶ Starting{via: Adoption} ───┼─StartFailed─▶ Failed{at}
//!                                                       └─NotAdopted──▶ Stopped (adoption only)
//!   Ready{stale: false} ─CatalogIs(another hash)─▶ Ready{stale: true}
//!   Ready ─Stop(reason)─▶ Stopping{running} ─Stopped(that same running)─▶ Stopped
//!         guards: Idle needs no lease and no activity for the idle time; Evicted, no lease
//!   Failed ─Expire (when older than FAILED_KEPT)─▶ Stopped
//!   Ready ─TornDown (shutdown with stop_on_shutdown removed everything)─▶ Stopped
//! ```
//!
//! Not in the table, because they are the callers' choices: a request waits on a start or a
//! stop under way and answers a failure younger than `FAILED_BACKOFF` from memory
//! (`lifecycle.rs`); a stale gateway is stopped (reason `Replaced`, then a start) when it has
//! no lease or the policy is `immediate` (`background.rs`).
//!
//! A slot's phase is behind a short `parking_lot` lock that is never held across an await.
//! Phases that take time (starting, stopping) hold a `watch` receiver, so every request that
//! arrives meanwhile waits on the same work instead of starting its own.

use super::availability::Unavailable;
use super::metrics::{GatewayMetrics, StateLabel};
use super::state_events::StateEvents;
use super::subnets::Subnet;
use super::timing::FAILED_KEPT;
use super::GatewayError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

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
    /// Servers of the catalog left out of this gateway, and why.
    pub unavailable: Vec<Unavailable>,
}

/// How a slot came to be starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A fresh container is being made.
    Start,
    /// A running container found on the engine is being checked before it is served.
    Adoption,
}

/// Why a gateway is being stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Unused for this long; refused while a lease is held or activity is more recent.
    Idle(Duration),
    /// Makes room under `max_running`; refused while a lease is held.
    Evicted,
    /// Replaced because its catalog changed (a start follows).
    Replaced,
    /// The container died by itself; only leftovers are removed.
    Crashed,
    /// Asked for through the API (or the catalog policy refuses its catalog now).
    Requested,
}

/// Where a slot is in its life.
#[derive(Debug)]
pub enum Phase {
    Stopped,
    Starting {
        done: watch::Receiver<StartResult>,
        via: Via,
    },
    Ready {
        running: Arc<Running>,
        /// The catalog changed since spawn; replaced at the next idle moment.
        stale: bool,
    },
    Stopping {
        done: watch::Receiver<bool>,
        running: Arc<Running>,
    },
    Failed {
        error: GatewayError,
        at: Instant,
    },
}

/// What happens to a slot. See the diagram at the top of this module.
#[derive(Debug)]
pub enum Event {
    /// A request (or the API) needs the gateway; the caller made room under `max_running`.
    Start(watch::Receiver<StartResult>),
    /// A running container of the user was found on the engine.
    Adopt(watch::Receiver<StartResult>),
    /// The start or adoption has a healthy gateway.
    Started(Arc<Running>),
    /// The start failed and what it made is removed.
    StartFailed(GatewayError),
    /// The found container could not be adopted and is removed.
    NotAdopted,
    /// The user's catalog hash is now this one.
    CatalogIs(String),
    /// Stop the ready gateway.
    Stop {
        reason: StopReason,
        done: watch::Receiver<bool>,
    },
    /// The stop of this gateway finished.
    Stopped(Arc<Running>),
    /// Forget a failure reported for long enough.
    Expire,
    /// Shutdown removed every object of the instance.
    TornDown,
}

/// Work the caller must do after a transition.
#[derive(Debug)]
pub enum Effect {
    /// Run the start task.
    RunStart,
    /// Run the adoption task.
    RunAdoption,
    /// Run the stop task for this gateway.
    RunStop(Arc<Running>),
    /// The gateway just became stale: replace it when due.
    Replace,
    /// Nothing more to do.
    Done,
}

impl Phase {
    /// The metric label (`None` for stopped).
    pub fn label(&self) -> Option<StateLabel> {
        match self {
            Phase::Stopped => None,
            Phase::Starting { .. } => Some(StateLabel::Starting),
            Phase::Ready { .. } => Some(StateLabel::Ready),
            Phase::Stopping { .. } => Some(StateLabel::Stopping),
            Phase::Failed { .. } => Some(StateLabel::Failed),
        }
    }

    /// The API's name of the state.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Starting { .. } => "starting",
            Phase::Ready { .. } => "ready",
            Phase::Stopping { .. } => "stopping",
            Phase::Failed { .. } => "failed",
        }
    }

    /// True for starting and ready (what counts against `max_running`).
    pub fn occupies(&self) -> bool {
        matches!(self, Phase::Starting { .. } | Phase::Ready { .. })
    }

    /// Whether a start (or adoption) may begin from here.
    pub fn startable(&self) -> bool {
        matches!(self, Phase::Stopped | Phase::Failed { .. })
    }

    /// The running gateway of a ready slot.
    pub fn ready(&self) -> Option<&Arc<Running>> {
        match self {
            Phase::Ready { running, .. } => Some(running),
            _ => None,
        }
    }

    /// The gateway a ready or stopping slot has.
    pub fn running(&self) -> Option<&Arc<Running>> {
        match self {
            Phase::Ready { running, .. } | Phase::Stopping { running, .. } => Some(running),
            _ => None,
        }
    }

    /// Ready with a catalog that changed since spawn.
    pub fn is_stale(&self) -> bool {
        matches!(self, Phase::Ready { stale: true, .. })
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

    /// Runs `f` on the phase under its lock (reading only: changes go through [`Self::apply`]).
    pub fn with_phase<R>(&self, f: impl FnOnce(&Phase) -> R) -> R {
        f(&self.phase.lock())
    }

    /// The transition function: applies `event` to the phase when it applies there, keeps the
    /// state gauge right, and returns what the caller must do next (`None`: nothing changed).
    pub fn apply(&self, metrics: &GatewayMetrics, event: Event) -> Option<Effect> {
        let mut phase = self.phase.lock();
        let (before, name) = (phase.label(), phase.name());
        let (next, effect) = self.next(&phase, event)?;
        if let Some(next) = next {
            *phase = next;
        }
        metrics.transition(before, phase.label());
        // Under the lock, so one user's events are in the order of their transitions.
        let failed = match &*phase {
            Phase::Failed { error, .. } => Some(error),
            _ => None,
        };
        self.events.changed(&self.slug, name, phase.name(), failed);
        Some(effect)
    }

    /// The table: the phase after `event` (`None` inside: the phase stays) and the effect, or
    /// `None` when the event does not apply in `phase`.
    fn next(&self, phase: &Phase, event: Event) -> Option<(Option<Phase>, Effect)> {
        use Effect as E;
        let to = |p: Phase, e: Effect| Some((Some(p), e));
        match (phase, event) {
            (Phase::Stopped | Phase::Failed { .. }, Event::Start(done)) => to(
                Phase::Starting {
                    done,
                    via: Via::Start,
                },
                E::RunStart,
            ),
            (Phase::Stopped | Phase::Failed { .. }, Event::Adopt(done)) => to(
                Phase::Starting {
                    done,
                    via: Via::Adoption,
                },
                E::RunAdoption,
            ),
            (Phase::Starting { .. }, Event::Started(running)) => to(
                Phase::Ready {
                    running,
                    stale: false,
                },
                E::Done,
            ),
            (Phase::Starting { .. }, Event::StartFailed(error)) => to(
                Phase::Failed {
                    error,
                    at: Instant::now(),
                },
                E::Done,
            ),
            (
                Phase::Starting {
                    via: Via::Adoption, ..
                },
                Event::NotAdopted,
            ) => to(Phase::Stopped, E::Done),
            (
                Phase::Ready {
                    running,
                    stale: false,
                },
                Event::CatalogIs(hash),
            ) if running.catalog_hash != hash => to(
                Phase::Ready {
                    running: running.clone(),
                    stale: true,
                },
                E::Replace,
            ),
            (Phase::Ready { running, .. }, Event::Stop { reason, done }) => {
                let allowed = match reason {
                    StopReason::Idle(after) => self.idle_for(after.as_millis() as u64),
                    StopReason::Evicted => self.leases() == 0,
                    StopReason::Replaced | StopReason::Crashed | StopReason::Requested => true,
                };
                allowed.then(|| {
                    let stopping = Phase::Stopping {
                        done,
                        running: running.clone(),
                    };
                    (Some(stopping), E::RunStop(running.clone()))
                })
            }
            (Phase::Stopping { running, .. }, Event::Stopped(stopped))
                if Arc::ptr_eq(running, &stopped) =>
            {
                to(Phase::Stopped, E::Done)
            }
            (Phase::Failed { at, .. }, Event::Expire) if at.elapsed() > FAILED_KEPT => {
                to(Phase::Stopped, E::Done)
            }
            (Phase::Ready { .. }, Event::TornDown) => to(Phase::Stopped, E::Done),
            _ => None,
        }
    }

    /// Takes a lease on the ready gateway, atomically with checking that it is ready, so the
    /// reaper never stops a gateway between the check and the lease.
    pub fn lease_if_ready(self: &Arc<Self>) -> Option<(Arc<Running>, Lease)> {
        let phase = self.phase.lock();
        match &*phase {
            Phase::Ready { running, .. } => Some((running.clone(), Lease::new(self.clone()))),
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

    /// Activity seen elsewhere (a peer replica) at `ms`; never moves the clock back.
    pub fn note_activity_ms(&self, ms: u64) {
        self.last_active_ms.fetch_max(ms, Ordering::AcqRel);
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
#[derive(Debug)]
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
        // The last lease of a stale gateway: the reaper replaces it now.
        if self.slot.leases.fetch_sub(1, Ordering::AcqRel) == 1
            && self.slot.with_phase(Phase::is_stale)
        {
            self.slot.idle_wake.notify_one();
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

    /// Ready gateways without open requests, other than `except`, least recently used first.
    pub fn idle_by_age_except(&self, except: &Slot) -> Vec<Arc<Slot>> {
        let mut idle: Vec<_> = self
            .all()
            .into_iter()
            .filter(|s| !std::ptr::eq(s.as_ref(), except))
            .filter(|s| s.leases() == 0 && s.with_phase(|p| p.ready().is_some()))
            .collect();
        idle.sort_by_key(|s| s.last_active_ms());
        idle
    }
}

#[cfg(test)]
impl Running {
    /// A running gateway with no engine behind it, for the table's tests.
    pub fn fake(hash: &str) -> Arc<Self> {
        Arc::new(Running {
            container_id: "c".into(),
            container_name: "n".into(),
            network: "n".into(),
            subnet: None,
            base: "127.0.0.1:1".parse().unwrap(),
            authorization: None,
            catalog_hash: hash.into(),
            started_at: SystemTime::now(),
            joined: None,
            unavailable: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(hash: &str) -> Arc<Running> {
        Running::fake(hash)
    }

    fn start(m: &GatewayMetrics, s: &Slot) {
        assert!(matches!(
            s.apply(m, Event::Start(watch::channel(None).1)),
            Some(Effect::RunStart)
        ));
    }

    fn ready(m: &GatewayMetrics, s: &Slot, r: Arc<Running>) {
        start(m, s);
        assert!(s.apply(m, Event::Started(r)).is_some());
    }

    fn stop(m: &GatewayMetrics, s: &Slot, reason: StopReason) -> Option<Effect> {
        s.apply(
            m,
            Event::Stop {
                reason,
                done: watch::channel(false).1,
            },
        )
    }

    fn name(s: &Slot) -> &'static str {
        s.with_phase(Phase::name)
    }

    #[test]
    fn leases_count_and_lru_picks_the_oldest_idle() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let (a, b, c) = (reg.slot("a"), reg.slot("b"), reg.slot("c"));
        for s in [&a, &b, &c] {
            ready(&m, s, running("h"));
        }
        a.set_last_active_ms(10);
        b.set_last_active_ms(5);
        c.set_last_active_ms(1);
        let (_, lease) = c.lease_if_ready().unwrap();
        assert_eq!(c.leases(), 1);
        // c is the oldest but busy; b is next.
        assert_eq!(reg.idle_by_age_except(&a)[0].slug, "b");
        assert_eq!(reg.idle_by_age_except(&b)[0].slug, "a");
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
        ready(&m, &reg.slot("ready"), running("h"));
        reg.prune();
        let mut left: Vec<String> = reg.all().iter().map(|s| s.slug.clone()).collect();
        left.sort();
        assert_eq!(left, ["held", "ready"]);
        drop(held);
    }

    #[test]
    fn events_that_do_not_apply_change_nothing() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let s = reg.slot("u");
        // Nothing runs: no stop, no result of a start, no staleness.
        assert!(stop(&m, &s, StopReason::Requested).is_none());
        assert!(s.apply(&m, Event::Started(running("h"))).is_none());
        assert!(s.apply(&m, Event::CatalogIs("x".into())).is_none());
        assert!(s.apply(&m, Event::NotAdopted).is_none());
        assert_eq!(name(&s), "stopped");
        start(&m, &s);
        // A second start while one runs is refused: one start per slot.
        assert!(s.apply(&m, Event::Start(watch::channel(None).1)).is_none());
        // A fresh start is not an adoption: giving up on an adoption does not end it.
        assert!(s.apply(&m, Event::NotAdopted).is_none());
        assert!(stop(&m, &s, StopReason::Requested).is_none());
        let r = running("h");
        assert!(s.apply(&m, Event::Started(r.clone())).is_some());
        assert_eq!(name(&s), "ready");
        // The same hash is not a change.
        assert!(s.apply(&m, Event::CatalogIs("h".into())).is_none());
        assert!(matches!(
            stop(&m, &s, StopReason::Requested),
            Some(Effect::RunStop(x)) if Arc::ptr_eq(&x, &r)
        ));
        // Another gateway's stop finishing does not end this one's.
        assert!(s.apply(&m, Event::Stopped(running("h"))).is_none());
        assert_eq!(name(&s), "stopping");
        assert!(s.apply(&m, Event::Stopped(r)).is_some());
        assert_eq!(name(&s), "stopped");
    }

    #[test]
    fn idle_and_eviction_stops_are_refused_while_a_lease_is_held() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let s = reg.slot("u");
        ready(&m, &s, running("h"));
        s.set_last_active_ms(0);
        let (_, lease) = s.lease_if_ready().unwrap();
        assert!(stop(&m, &s, StopReason::Evicted).is_none());
        assert!(stop(&m, &s, StopReason::Idle(Duration::ZERO)).is_none());
        drop(lease);
        // The lease's end was activity a moment ago: not idle for a minute yet.
        assert!(stop(&m, &s, StopReason::Idle(Duration::from_secs(60))).is_none());
        assert!(stop(&m, &s, StopReason::Idle(Duration::ZERO)).is_some());
    }

    #[test]
    fn a_catalog_change_makes_a_ready_gateway_stale_once() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let s = reg.slot("u");
        ready(&m, &s, running("h"));
        assert!(matches!(
            s.apply(&m, Event::CatalogIs("new".into())),
            Some(Effect::Replace)
        ));
        assert!(s.with_phase(Phase::is_stale));
        assert_eq!(name(&s), "ready");
        // Already stale: the replacement is under way or waiting; no second one.
        assert!(s.apply(&m, Event::CatalogIs("newer".into())).is_none());
    }

    #[test]
    fn adoption_is_a_start_that_may_end_in_stopped() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let s = reg.slot("u");
        assert!(matches!(
            s.apply(&m, Event::Adopt(watch::channel(None).1)),
            Some(Effect::RunAdoption)
        ));
        assert!(s.with_phase(|p| matches!(
            p,
            Phase::Starting {
                via: Via::Adoption,
                ..
            }
        )));
        assert!(s.with_phase(Phase::occupies));
        assert!(s.apply(&m, Event::NotAdopted).is_some());
        assert_eq!(name(&s), "stopped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_kept_for_a_while_then_forgotten() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let s = reg.slot("u");
        start(&m, &s);
        let e = GatewayError::NotConfigured;
        assert!(s.apply(&m, Event::StartFailed(e)).is_some());
        assert_eq!(name(&s), "failed");
        assert!(s.apply(&m, Event::Expire).is_none());
        tokio::time::advance(FAILED_KEPT + Duration::from_secs(1)).await;
        assert!(s.apply(&m, Event::Expire).is_some());
        assert_eq!(name(&s), "stopped");
        // A failed slot may be started again before it expires, too.
        start(&m, &s);
        assert!(s
            .apply(&m, Event::StartFailed(GatewayError::NotConfigured))
            .is_some());
        start(&m, &s);
    }

    #[test]
    fn the_state_gauge_follows_every_transition() {
        let m = GatewayMetrics::default();
        let reg = Registry::default();
        let s = reg.slot("u");
        ready(&m, &s, running("h"));
        assert_eq!(m.count(StateLabel::Ready), 1);
        assert_eq!(m.count(StateLabel::Starting), 0);
        assert!(s.apply(&m, Event::TornDown).is_some());
        assert_eq!(m.count(StateLabel::Ready), 0);
    }

    #[test]
    fn every_state_change_publishes_once_and_nothing_else_does() {
        use crate::events::{EventBody, EventBus, Resume};
        let bus = Arc::new(EventBus::new(64, 4));
        let mut live = bus.subscribe(Resume::Live).live;
        let m = GatewayMetrics::default();
        let reg = Registry::with_events(bus);
        let s = reg.slot("u");
        let r = running("h");
        ready(&m, &s, r.clone());
        // Not a change of state: stale, refused events, the same hash.
        s.apply(&m, Event::CatalogIs("new".into()));
        s.apply(&m, Event::CatalogIs("h".into()));
        assert!(s.apply(&m, Event::Start(watch::channel(None).1)).is_none());
        assert!(stop(&m, &s, StopReason::Requested).is_some());
        assert!(s.apply(&m, Event::Stopped(r)).is_some());
        let mut seen = Vec::new();
        while let Ok(ev) = live.try_recv() {
            match &ev.body {
                EventBody::GatewayState {
                    state, previous, ..
                } => seen.push(format!("{previous}->{state}")),
                other => panic!("{other:?}"),
            }
            assert_eq!(ev.user.as_deref(), Some("u"));
        }
        assert_eq!(
            seen,
            [
                "stopped->starting",
                "starting->ready",
                "ready->stopping",
                "stopping->stopped"
            ]
        );
    }

    #[test]
    fn a_failure_is_published_with_its_code_never_its_message() {
        use crate::events::{EventBody, EventBus, Resume};
        let bus = Arc::new(EventBus::new(64, 4));
        let mut live = bus.subscribe(Resume::Live).live;
        let m = GatewayMetrics::default();
        let reg = Registry::with_events(bus);
        let s = reg.slot("u");
        start(&m, &s);
        let error = GatewayError::Unavailable {
            message: "image registry.example/secret-name missing".into(),
            retry_after: Duration::from_secs(5),
        };
        assert!(s.apply(&m, Event::StartFailed(error)).is_some());
        let _starting = live.try_recv().unwrap();
        let failed = live.try_recv().unwrap();
        match &failed.body {
            EventBody::GatewayState { state, reason, .. } => {
                assert_eq!(*state, "failed");
                assert_eq!(*reason, Some("gateway_unavailable"));
            }
            other => panic!("{other:?}"),
        }
        assert!(live.try_recv().is_err(), "one event per change");
    }
}
