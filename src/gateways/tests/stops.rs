//! Stops: requests that arrive during one, crashes, eviction under `max_running`, stale
//! catalogs, idleness, and shutdown waiting for a stop under way.

use super::Harness;
use crate::gateways::slot::StopReason;
use crate::gateways::GatewayError;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_request_during_a_stop_waits_for_it_and_gets_a_fresh_gateway() {
    let h = Harness::new(&[]).await;
    let (first, lease) = h.ensure("alice").await.unwrap();
    drop(lease);
    h.rt.faults(|f| f.remove_delay = Duration::from_secs(2));
    let slot = h.slot("alice");
    let done = h
        .inner()
        .begin_stop(&slot, StopReason::Requested, false)
        .unwrap();
    assert_eq!(h.state("alice"), "stopping");
    let (second, _lease) = h.ensure("alice").await.unwrap();
    assert!(
        *done.borrow(),
        "the request got its gateway only after the stop"
    );
    assert_ne!(first.container_id, second.container_id);
    assert_eq!(h.containers("alice"), [h.name("alice")]);
    assert_eq!(h.state("alice"), "ready");
}

#[tokio::test(start_paused = true)]
async fn a_stop_is_refused_when_there_is_nothing_to_stop() {
    let h = Harness::new(&[]).await;
    let slot = h.slot("alice");
    assert!(h
        .inner()
        .begin_stop(&slot, StopReason::Requested, false)
        .is_none());
    assert_eq!(h.inner().metrics.stops.get(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_dies_is_cleaned_up_and_the_next_request_gets_a_new_one() {
    let h = Harness::new(&[]).await;
    let (first, lease) = h.ensure("alice").await.unwrap();
    drop(lease);
    h.rt.kill(&first.container_id);
    h.wait_for("alice", "stopped").await;
    assert_eq!(h.inner().metrics.crashes.get(), 1);
    assert!(h.containers("alice").is_empty());
    let (second, _) = h.ensure("alice").await.unwrap();
    assert_ne!(first.container_id, second.container_id);
}

#[tokio::test(start_paused = true)]
async fn a_dead_gateway_found_by_the_proxy_before_its_event_is_replaced() {
    let h = Harness::new(&[]).await;
    let (first, lease) = h.ensure("alice").await.unwrap();
    drop(lease);
    // The engine's die event is still on its way.
    h.rt.faults(|f| f.mute_events = true);
    h.rt.kill(&first.container_id);
    assert!(h.inner().check_gone("alice").await);
    let (second, _) = h.ensure("alice").await.unwrap();
    assert_ne!(first.container_id, second.container_id);
    // A healthy gateway is not replaced on a failed connect.
    assert!(!h.inner().check_gone("alice").await);
    assert_eq!(h.state("alice"), "ready");
}

#[tokio::test(start_paused = true)]
async fn at_capacity_the_least_recently_used_idle_gateway_makes_room() {
    let h = Harness::new(&["max_running: 1"]).await;
    let (_, lease) = h.ensure("alice").await.unwrap();
    drop(lease);
    let (_, bob_lease) = h.ensure("bob").await.unwrap();
    assert_eq!(h.state("alice"), "stopped");
    assert!(h.containers("alice").is_empty());
    assert_eq!(h.inner().metrics.evictions.get(), 1);
    // Bob is busy: nobody can be evicted for carol.
    let err = h.ensure("carol").await.unwrap_err();
    assert!(matches!(err, GatewayError::AtCapacity { .. }), "{err}");
    assert_eq!(h.state("bob"), "ready");
    assert_eq!(h.state("carol"), "stopped");
    drop(bob_lease);
    h.ensure("carol").await.unwrap();
    assert_eq!(h.state("bob"), "stopped");
}

#[tokio::test(start_paused = true)]
async fn a_stale_gateway_is_replaced_when_its_last_request_ends_not_before() {
    let h = Harness::new(&[]).await;
    let (first, lease) = h.ensure("alice").await.unwrap();
    let slot = h.slot("alice");
    h.inner().catalog_is(&slot, "another-hash");
    assert!(slot.with_phase(|p| p.is_stale()));
    // Busy: it keeps serving, stale, for a simulated minute.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.state("alice"), "ready");
    assert_eq!(h.containers("alice").len(), 1);
    assert_eq!(h.inner().metrics.starts.get(), 1);
    drop(lease);
    // Idle now: replaced by a fresh gateway with the current catalog.
    for _ in 0..600 {
        let fresh = slot.with_phase(|p| {
            p.ready()
                .is_some_and(|r| r.container_id != first.container_id)
        });
        if fresh {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (second, _) = h.ensure("alice").await.unwrap();
    assert_ne!(first.container_id, second.container_id);
    assert_ne!(second.catalog_hash, "another-hash");
    assert!(!slot.with_phase(|p| p.is_stale()));
    assert_eq!(h.inner().metrics.starts.get(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_idle_gateway_is_stopped_by_the_reaper_and_a_busy_one_is_not() {
    let h = Harness::new(&[]).await;
    let (_, alice) = h.ensure("alice").await.unwrap();
    let (_, bob) = h.ensure("bob").await.unwrap();
    drop(bob);
    // Both last active long ago; alice's request is still open.
    h.slot("alice").set_last_active_ms(0);
    h.slot("bob").set_last_active_ms(0);
    h.wait_for("bob", "stopped").await;
    assert_eq!(h.inner().metrics.idle_stops.get(), 1);
    assert_eq!(h.state("alice"), "ready");
    drop(alice);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_a_stop_under_way() {
    let h = Harness::new(&[]).await;
    let (_, lease) = h.ensure("alice").await.unwrap();
    drop(lease);
    h.rt.faults(|f| f.remove_delay = Duration::from_secs(5));
    let slot = h.slot("alice");
    h.inner()
        .begin_stop(&slot, StopReason::Requested, false)
        .unwrap();
    h.gw.shutdown().await;
    // Without waiting, the container would still be there (its removal takes 5 s).
    assert!(h.containers("alice").is_empty());
    assert!(!h.rt.network_names().contains(&h.name("alice")));
    assert_eq!(h.state("alice"), "stopped");
    assert_eq!(h.inner().metrics.stops.get(), 1);
}
