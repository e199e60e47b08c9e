//! The lifecycle's background work: the engine events stream (crashes; reconnects and
//! reconciles when the engine comes back), catalog changes (stale gateways are replaced), the
//! idle reaper, and the activity state file.

use super::engine::isolation_gap;
use super::lifecycle::Inner;
use super::names::LABEL_USER;
use super::reaper::{Due, Reaper};
use super::slot::{now_ms, Effect, Event, Phase, Slot, StopReason};
use super::state_file::ActivityState;
use crate::catalog::CatalogChanged;
use crate::config::RestartPolicy;
use crate::runtime::{EventKind, RuntimeEvent};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// A request compares the user's catalog hash with the running gateway's at most this often.
const CATALOG_CHECK_INTERVAL_MS: u64 = 5_000;
/// Longest pause between attempts to reach the engine's events stream.
const MAX_RECONNECT: Duration = Duration::from_secs(2);
/// The activity state file is written at most this often.
const SAVE_INTERVAL_MS: u64 = 2_000;

impl Inner {
    /// Starts events, catalog and reaper tasks; they end when `stop` is cancelled.
    pub(super) fn spawn_background(self: &Arc<Self>) {
        self.spawn(self.clone().watch_events());
        self.spawn(self.clone().watch_catalogs());
        self.spawn(self.clone().reap());
    }

    /// Says loudly at start when the engine's own isolation between users' networks has a gap
    /// (see [`isolation_gap`]): the host guard closes it, and the operator must know to install it.
    async fn warn_of_isolation_gap(&self) {
        if let Ok(Some(version)) = self.rt.version().await {
            if isolation_gap(&version, self.cfg.docker.internal_networks) {
                tracing::warn!(
                    engine = %version,
                    pool = %self.cfg.docker.subnet_pool,
                    "this Docker Engine (before 28) briefly lets one user's gateway reach another's \
                     while any network is created; install the host guard \
                     (scripts/bridge-guard.sh install <subnet_pool>) or set \
                     gateways.docker.internal_networks: true; README: Isolation between users"
                );
            }
        }
    }

    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// Follows the engine's events; every (re)connect is followed by a reconciliation, which
    /// also adopts running gateways at start-up.
    async fn watch_events(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(100);
        let mut warned = false;
        let mut version_checked = false;
        loop {
            if self.stop.is_cancelled() {
                return;
            }
            let ping = self.rt.ping().await;
            self.note_engine(&ping.as_ref().map(drop));
            if ping.is_ok() && !version_checked {
                version_checked = true;
                self.warn_of_isolation_gap().await;
            }
            let stream = match ping {
                Ok(()) => self.rt.events(&self.naming.filter()).await,
                Err(e) => Err(e),
            };
            match stream {
                Ok(mut stream) => {
                    warned = false;
                    backoff = Duration::from_millis(100);
                    // Pump events while reconciling, so none between the two is lost.
                    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
                    let pump = tokio::spawn(async move {
                        while let Some(ev) = stream.next().await {
                            let end = ev.is_err();
                            if tx.send(ev).await.is_err() || end {
                                return;
                            }
                        }
                    });
                    if let Err(e) = self.reconcile().await {
                        tracing::warn!(error = %e, "reconciling gateways with the engine failed");
                    }
                    loop {
                        tokio::select! {
                            _ = self.stop.cancelled() => { pump.abort(); return; }
                            ev = rx.recv() => match ev {
                                Some(Ok(ev)) => self.on_event(ev),
                                Some(Err(e)) => {
                                    tracing::warn!(error = %e, "engine events stream broke; reconnecting");
                                    break;
                                }
                                None => break,
                            }
                        }
                    }
                    pump.abort();
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "engine not reachable; retrying in the background");
                        warned = true;
                    }
                }
            }
            if !self.pause(backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_RECONNECT);
        }
    }

    /// A managed container died (or was removed) without us stopping it.
    fn on_event(self: &Arc<Self>, ev: RuntimeEvent) {
        if ev.kind == EventKind::Start {
            return;
        }
        let Some(slot) = ev.labels.get(LABEL_USER).and_then(|u| self.registry.get(u)) else {
            return;
        };
        let ours =
            slot.with_phase(|p| p.ready().is_some_and(|r| r.container_id == ev.container_id));
        if ours {
            tracing::warn!(
                user = %slot.slug, event = ?ev.kind,
                exit_code = ev.labels.get("exitCode").map(String::as_str).unwrap_or("?"),
                "gateway died; the next request starts a new one"
            );
            self.begin_stop(&slot, StopReason::Crashed, false);
        }
    }

    /// Marks gateways stale when their user's catalog hash changes.
    async fn watch_catalogs(self: Arc<Self>) {
        let mut rx = self.cache.subscribe();
        loop {
            let ev = tokio::select! {
                _ = self.stop.cancelled() => return,
                ev = rx.recv() => ev,
            };
            match ev {
                Ok(CatalogChanged { slug, hash }) => {
                    if let Some(slot) = self.registry.get(&slug) {
                        self.catalog_is(&slot, hash.as_str());
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "catalog change events missed; rechecking on the next requests"
                    );
                    for s in self.registry.all() {
                        s.last_catalog_check_ms.store(0, Ordering::Release);
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    /// The user's current catalog hash is `hash`: a ready gateway spawned with another one is
    /// stale, and replaced now (`immediate`, or idle already) or when its last request ends.
    pub(super) fn catalog_is(self: &Arc<Self>, slot: &Arc<Slot>, hash: &str) {
        if let Some(Effect::Replace) = slot.apply(&self.metrics, Event::CatalogIs(hash.into())) {
            tracing::info!(user = %slot.slug, policy = ?self.cfg.restart_on_catalog_change, "catalog changed; gateway is stale");
            self.replace_if_due(slot);
        }
    }

    fn replace_if_due(self: &Arc<Self>, slot: &Arc<Slot>) {
        let immediate = self.cfg.restart_on_catalog_change == RestartPolicy::Immediate;
        // With peers, an idle moment is everyone's: they are asked first (and again at each
        // sweep while it stays stale).
        if !immediate && self.peers.any() {
            if slot.leases() == 0 {
                let (inner, slot) = (self.clone(), slot.clone());
                self.spawn(async move { inner.replace_when_peers_idle(&slot).await });
            }
            return;
        }
        if immediate || slot.leases() == 0 {
            self.begin_stop(slot, StopReason::Replaced, true);
        }
    }

    /// A stale gateway with no open stream here, replaced once no peer has one either
    /// (`restart_on_catalog_change: idle` with `replicas.peers`).
    async fn replace_when_peers_idle(self: Arc<Self>, slot: &Arc<Slot>) {
        if slot.leases() > 0 {
            return;
        }
        // An idle time of zero: only open streams keep it.
        match self.peers.ask(&slot.slug, Duration::ZERO).await {
            crate::replicas::Verdict::Idle => {
                if slot.leases() == 0 {
                    self.begin_stop(slot, StopReason::Replaced, true);
                }
            }
            crate::replicas::Verdict::Keep { why, .. } => {
                self.metrics.peer_kept.inc();
                tracing::debug!(user = %slot.slug, %why, "catalog replacement put off: a peer replica streams through the gateway");
            }
        }
    }

    /// On a request: compares the catalog hash now and then, off the request path (the merge
    /// also catches team changes in the caller's token).
    pub(super) fn check_catalog_soon(self: &Arc<Self>, slot: &Arc<Slot>) {
        let now = now_ms();
        let last = slot.last_catalog_check_ms.load(Ordering::Acquire);
        if now.saturating_sub(last) < CATALOG_CHECK_INTERVAL_MS
            || slot
                .last_catalog_check_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            || slot.with_phase(Phase::is_stale)
        {
            return;
        }
        let inner = self.clone();
        let slot = slot.clone();
        self.spawn(async move {
            let (store, cache) = (inner.catalogs.clone(), inner.cache.clone());
            let slug = slot.slug.clone();
            let teams = slot.teams.lock().clone();
            let hash = tokio::task::spawn_blocking(move || {
                crate::catalog::regenerate_user(&store, &cache, &slug, &teams)
                    .map(|r| r.hash.as_str().to_string())
            })
            .await;
            match hash {
                Ok(Ok(h)) => inner.catalog_is(&slot, &h),
                // Layers the catalog policy refuses (put on disk by other means, or from
                // before the policy) must not keep running, sessions or not; the next
                // request's start fails with the refusal.
                Ok(Err(e @ crate::catalog::CatalogError::Policy(_))) => {
                    tracing::warn!(user = %slot.slug, error = %e, "catalog refused by the policy; stopping the gateway");
                    inner.begin_stop(&slot, StopReason::Requested, false);
                }
                Ok(Err(e)) => tracing::warn!(user = %slot.slug, error = %e, "catalog check failed"),
                Err(_) => {}
            }
        });
    }

    /// Stops idle gateways, replaces stale idle ones, forgets unused slots, saves activity.
    async fn reap(self: Arc<Self>) {
        let idle = self.cfg.idle_timeout.0;
        let reaper = || Reaper {
            registry: &self.registry,
            metrics: &self.metrics,
            idle,
        };
        let tick = reaper().tick();
        let mut last_save = 0;
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(tick) => {}
                _ = self.registry.idle_wake.notified() => {}
            }
            let mut idle_slots = Vec::new();
            for due in reaper().sweep() {
                match due {
                    Due::Stop(slot) => idle_slots.push(slot),
                    Due::Replace(slot) => self.replace_if_due(&slot),
                }
            }
            let agreed = futures_util::future::join_all(
                idle_slots.iter().map(|s| self.peers_agree_idle(s, idle)),
            )
            .await;
            for (slot, agreed) in idle_slots.iter().zip(agreed) {
                if agreed {
                    self.begin_stop(slot, StopReason::Idle(idle), false);
                }
            }
            self.registry.prune();
            self.count_server_containers().await;
            self.serve_orphaned_apis().await;
            if now_ms().saturating_sub(last_save) >= SAVE_INTERVAL_MS {
                last_save = now_ms();
                let inner = self.clone();
                let _ = tokio::task::spawn_blocking(move || inner.save_state(false)).await;
            }
        }
    }

    /// Whether the other replicas agree that `slot`'s gateway is idle (`crate::replicas`);
    /// true without peers. A peer's more recent activity becomes this slot's, so the gateway
    /// is not asked about again before the idle time passed from there.
    async fn peers_agree_idle(&self, slot: &Slot, idle: Duration) -> bool {
        if !self.peers.any() {
            return true;
        }
        match self.peers.ask(&slot.slug, idle).await {
            crate::replicas::Verdict::Idle => true,
            crate::replicas::Verdict::Keep {
                last_active_ms,
                why,
            } => {
                self.metrics.peer_kept.inc();
                match last_active_ms {
                    Some(t) => {
                        slot.note_activity_ms(t);
                        tracing::debug!(user = %slot.slug, %why, "idle stop put off: a peer replica uses the gateway");
                    }
                    // No peer said it uses it: one could not be asked (asked again next sweep;
                    // a peer that stays unreachable keeps its gateways running).
                    None => {
                        tracing::warn!(user = %slot.slug, %why, "idle stop put off: a peer replica could not be asked")
                    }
                }
                false
            }
        }
    }

    /// The policed Docker APIs of ready gateways this replica does not serve (another one
    /// started or adopted them first) and nobody answers on any more (that replica died or
    /// stopped): served from here, so the gateway keeps its API (README: Replicas).
    async fn serve_orphaned_apis(&self) {
        let Some(apis) = &self.apis else {
            return;
        };
        for slot in self.registry.all() {
            let Some(name) = slot.with_phase(|p| p.ready().map(|r| r.container_name.clone()))
            else {
                continue;
            };
            if apis.serves(&slot.slug) || apis.answered(&slot.slug) {
                continue;
            }
            tracing::info!(user = %slot.slug, "nobody serves this gateway's Docker API any more; serving it");
            self.adopter.serve_api(&slot.slug, &name).await;
        }
    }

    /// Sets the server-container gauge: one listing of docker/mcp-gateway's containers,
    /// counted when they sit on a network of one of this instance's running gateways.
    async fn count_server_containers(&self) {
        let networks: std::collections::HashSet<String> = self
            .registry
            .all()
            .iter()
            .filter_map(|slot| slot.with_phase(|p| p.ready().map(|r| r.network.clone())))
            .collect();
        if networks.is_empty() {
            self.metrics.server_containers.set(0);
            return;
        }
        let label = super::servers::SERVER_LABEL;
        let filter = vec![(label.0.to_string(), label.1.to_string())];
        if let Ok(all) = self.rt.list_containers(&filter).await {
            let n = all
                .iter()
                .filter(|c| c.addresses.keys().any(|n| networks.contains(n)))
                .count();
            self.metrics.server_containers.set(n as i64);
        }
    }

    /// Writes `state.json` when the activity of running gateways changed (or `force`).
    /// Entries loaded at start-up that are not adopted yet are kept.
    pub(super) fn save_state(&self, force: bool) {
        let mut last_active_ms: HashMap<String, u64> = self.saved_activity.lock().clone();
        for s in self.registry.all() {
            if s.with_phase(|p| p.running().is_some()) {
                last_active_ms.insert(s.slug.clone(), s.last_active_ms());
            }
        }
        let state = ActivityState {
            version: 1,
            last_active_ms,
        };
        let mut saved = self.last_saved.lock();
        if !force && *saved == state.last_active_ms {
            return;
        }
        match self.state_file.save(&state) {
            Ok(()) => *saved = state.last_active_ms,
            Err(e) => tracing::warn!(error = %e, "writing the gateway state file failed"),
        }
    }
}
