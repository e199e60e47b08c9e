//! Starts: one per user however many requests race for it, and every way one fails.

use super::Harness;
use crate::gateways::metrics::StartOutcome;
use crate::gateways::timing::FAILED_BACKOFF;
use crate::gateways::GatewayError;
use std::sync::atomic::Ordering;

#[tokio::test(start_paused = true)]
async fn concurrent_first_requests_start_one_gateway() {
    let h = Harness::new(&[]).await;
    let all = futures_util::future::join_all((0..16).map(|_| h.ensure("alice"))).await;
    let ids: Vec<String> = all
        .into_iter()
        .map(|r| r.unwrap().0.container_id.clone())
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    assert_eq!(h.containers("alice"), [h.name("alice")]);
    assert_eq!(h.inner().metrics.starts.get(), 1);
    assert_eq!(h.agent.deliveries.load(Ordering::Acquire), 1);
    assert_eq!(h.inner().metrics.finished(StartOutcome::Ready), 1);
    assert_eq!(h.state("alice"), "ready");
    // Every lease was dropped with its result.
    assert_eq!(h.slot("alice").leases(), 0);
}

#[tokio::test(start_paused = true)]
async fn each_user_gets_a_gateway_of_their_own() {
    let h = Harness::new(&[]).await;
    let (a, b) = tokio::join!(h.ensure("alice"), h.ensure("bob"));
    let (a, b) = (a.unwrap().0, b.unwrap().0);
    assert_ne!(a.container_id, b.container_id);
    assert_ne!(a.base, b.base);
    assert_ne!(a.subnet, b.subnet);
    assert_eq!(h.containers("alice").len(), 1);
    assert_eq!(h.containers("bob").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_dies_while_starting_fails_at_once_and_leaves_nothing() {
    let h = Harness::new(&[]).await;
    h.agent.never_ready.store(true, Ordering::Release);
    h.rt.faults(|f| f.die_on_start = true);
    let err = h.ensure("alice").await.unwrap_err();
    assert!(err.to_string().contains("exited while starting"), "{err}");
    h.wait_for("alice", "failed").await;
    assert_eq!(h.inner().metrics.finished(StartOutcome::Exited), 1);
    assert_eq!(h.inner().metrics.finished(StartOutcome::Timeout), 0);
    assert!(h.containers("alice").is_empty());
    assert!(!h.rt.network_names().contains(&h.name("alice")));
    assert_eq!(h.inner().subnets.reserved(), 0, "the subnet went back");
    // Within the back-off the failure is answered from memory: no new container.
    let creates = h.rt.calls("create_container");
    assert!(h.ensure("alice").await.is_err());
    assert_eq!(h.rt.calls("create_container"), creates);
    // After it, with the fault gone, a request starts a fresh one.
    h.rt.faults(|f| f.die_on_start = false);
    h.agent.never_ready.store(false, Ordering::Release);
    tokio::time::sleep(FAILED_BACKOFF).await;
    h.ensure("alice").await.unwrap();
    assert_eq!(h.state("alice"), "ready");
}

#[tokio::test(start_paused = true)]
async fn a_start_that_hangs_is_cut_off_at_spawn_timeout_and_cleaned_up() {
    let h = Harness::new(&[]).await;
    h.rt.faults(|f| f.hang_start = true);
    let err = h.ensure("alice").await.unwrap_err();
    assert!(err.to_string().contains("longer than usual"), "{err}");
    h.wait_for("alice", "failed").await;
    assert_eq!(h.inner().metrics.finished(StartOutcome::Timeout), 1);
    assert!(h.containers("alice").is_empty());
    assert!(!h.rt.network_names().contains(&h.name("alice")));
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_never_answers_its_health_check_times_out() {
    let h = Harness::new(&[]).await;
    h.agent.never_ready.store(true, Ordering::Release);
    let err = h.ensure("alice").await.unwrap_err();
    assert!(matches!(err, GatewayError::Unavailable { .. }));
    h.wait_for("alice", "failed").await;
    assert_eq!(h.inner().metrics.finished(StartOutcome::Timeout), 1);
    assert!(h.containers("alice").is_empty(), "the container went");
}

#[tokio::test(start_paused = true)]
async fn a_refused_create_or_start_fails_the_start_and_removes_what_was_made() {
    for fault in ["create", "start"] {
        let h = Harness::new(&[]).await;
        h.rt.faults(|f| match fault {
            "create" => f.fail_create = true,
            _ => f.fail_start = true,
        });
        let err = h.ensure("alice").await.unwrap_err();
        assert!(
            err.to_string().contains("could not be started"),
            "{fault}: {err}"
        );
        h.wait_for("alice", "failed").await;
        assert_eq!(h.inner().metrics.finished(StartOutcome::Engine), 1);
        assert!(h.containers("alice").is_empty(), "{fault}");
        assert!(!h.rt.network_names().contains(&h.name("alice")), "{fault}");
        assert_eq!(h.inner().subnets.reserved(), 0, "{fault}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_engine_fails_fast_and_no_start_is_tried() {
    let h = Harness::new(&[]).await;
    h.rt.faults(|f| f.unreachable = true);
    // Let the background notice, as a running front door would have.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let err = h.ensure("alice").await.unwrap_err();
    assert!(err.to_string().contains("not reachable"), "{err}");
    assert_eq!(h.inner().metrics.starts.get(), 0);
    assert_eq!(h.state("alice"), "stopped");
    // The engine comes back: the next request starts the gateway.
    h.rt.faults(|f| f.unreachable = false);
    h.ensure("alice").await.unwrap();
    assert_eq!(h.inner().metrics.starts.get(), 1);
}
