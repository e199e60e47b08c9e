//! `max_running` with replicas (DESIGN.md §8): the engine is the truth, so before a start the
//! gateways of this instance that other replicas run (or are starting) are counted from it and
//! added to this replica's own. A user's network is made first in every start and carries its
//! start window (`claim.rs`), so a start of another replica counts from its first engine call.
//!
//! The race left: replicas that count at the same moment, before any of them made its
//! network, each admit their start. So the instance may run up to
//! `max_running + (replicas - 1) × max_concurrent_starts` gateways for a moment; the next
//! starts see them all. Only this replica's own idle gateways can be evicted to make room, and
//! with peers only those no peer streams through (asked before the start, [`Inner::peer_busy`]).

use super::lifecycle::Inner;
use super::names::start_window_open;
use super::slot::now_ms;
use crate::runtime::ContainerState;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl Inner {
    /// Counts the users whose gateway runs (or is being started) on the engine but not in
    /// this replica's registry, into `peer_running`; `except` (the user about to start) is
    /// not counted: another replica's start of it is joined, not competed with. An engine that does not answer leaves
    /// the last count (the start that follows fails on it anyway).
    pub(super) async fn count_peer_gateways(&self, except: &str) {
        let filter = self.naming.filter();
        let (Ok(networks), Ok(containers)) = (
            self.rt.list_networks(&filter).await,
            self.rt.list_containers(&filter).await,
        ) else {
            return;
        };
        let now = now_ms();
        let running: HashSet<&str> = containers
            .iter()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| c.name.as_str())
            .collect();
        let peers = networks
            .iter()
            .filter(|n| running.contains(n.name.as_str()) || start_window_open(&n.labels, now))
            .filter_map(|n| self.naming.owner(&n.name, &n.labels))
            .filter(|slug| slug != except)
            .filter(|slug| {
                !self
                    .registry
                    .get(slug)
                    .is_some_and(|s| s.with_phase(|p| p.occupies()))
            })
            .count();
        self.peer_running.store(peers, Ordering::Release);
    }
}

impl Inner {
    /// At capacity with peers: asks them about this replica's idle gateways, least recently
    /// used first, until one no peer streams through; the ones they stream through are kept
    /// from eviction (`peer_busy`, read by `begin_start`).
    pub(super) async fn note_peer_busy(&self, slot: &super::slot::Slot) {
        self.peer_busy.lock().clear();
        let peers = self.peer_running.load(Ordering::Acquire);
        if !self.peers.any() || self.registry.occupied_except(slot) + peers < self.cfg.max_running {
            return;
        }
        for candidate in self.registry.idle_by_age_except(slot) {
            let verdict = self
                .peers
                .ask(&candidate.slug, std::time::Duration::ZERO)
                .await;
            if verdict == crate::replicas::Verdict::Idle {
                return;
            }
            self.metrics.peer_kept.inc();
            self.peer_busy.lock().insert(candidate.slug.clone());
        }
    }
}
