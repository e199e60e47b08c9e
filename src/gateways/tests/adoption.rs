//! What a restarted front door finds on the engine: running gateways are adopted, half-made
//! and unanswering ones removed, networks nobody uses removed.

use super::{until, Harness, INSTANCE};
use crate::gateways::metrics::StartOutcome;
use crate::gateways::names::{Naming, LABEL_CATALOG_HASH, TOKEN_ENV};
use crate::runtime::fake::FakeRuntime;
use crate::runtime::{ContainerSpec, ContainerState, NetworkSpec};
use crate::services::Services;
use crate::storage::UserFile;
use std::sync::atomic::Ordering;

fn naming() -> Naming {
    Naming {
        instance: INSTANCE.into(),
    }
}

/// A gateway of `slug` as a previous front door left it: its network, its container in
/// `state`, and (first) the user's owner claim, which adoption requires to be older.
fn leave(rt: &FakeRuntime, services: &Services, slug: &str, subnet: &str, state: ContainerState) {
    let owner = services.layout.user_file(slug, UserFile::Owner).unwrap();
    std::fs::create_dir_all(owner.parent().unwrap()).unwrap();
    std::fs::write(&owner, "x").unwrap();
    let n = naming();
    let name = n.object_name(slug);
    rt.plant_network(&NetworkSpec {
        name: name.clone(),
        subnet: subnet.into(),
        labels: n.labels(slug),
        internal: false,
    });
    let mut labels = n.labels(slug);
    labels.insert(LABEL_CATALOG_HASH.into(), "old-hash".into());
    rt.plant(
        &ContainerSpec {
            name: name.clone(),
            network: name,
            labels,
            env: vec![format!("{TOKEN_ENV}=left-token")],
            ..Default::default()
        },
        state,
    );
}

#[tokio::test(start_paused = true)]
async fn a_running_gateway_is_adopted_and_half_made_ones_are_removed() {
    let h = Harness::with(&[], |rt, services| {
        leave(
            rt,
            services,
            "alice",
            "10.213.0.0/28",
            ContainerState::Running,
        );
        leave(
            rt,
            services,
            "bob",
            "10.213.0.16/28",
            ContainerState::Created,
        );
        // A network whose container is gone.
        let n = naming();
        rt.plant_network(&NetworkSpec {
            name: n.object_name("carol"),
            subnet: "10.213.0.32/28".into(),
            labels: n.labels("carol"),
            internal: false,
        });
    })
    .await;
    h.wait_for("alice", "ready").await;
    let (running, _) = h.ensure("alice").await.unwrap();
    assert_eq!(running.catalog_hash, "old-hash");
    assert_eq!(
        running.authorization.as_ref().unwrap().to_str().unwrap(),
        "Bearer left-token"
    );
    assert_eq!(h.inner().metrics.finished(StartOutcome::Adopted), 1);
    assert_eq!(h.inner().metrics.starts.get(), 0, "adopted, not started");
    assert_eq!(h.agent.deliveries.load(Ordering::Acquire), 0);
    // Bob's half-made gateway and carol's orphan network are gone; alice's network stays.
    assert!(until(|| h.rt.network_names() == [h.name("alice")]).await);
    assert!(h.containers("bob").is_empty());
    assert_eq!(h.rt.network_names(), [h.name("alice")]);
    assert_eq!(h.state("bob"), "stopped");
    // Alice's subnet stays reserved: a new user's network does not take it.
    let (b, _) = h.ensure("bob").await.unwrap();
    assert_ne!(b.subnet.unwrap().to_string(), "10.213.0.0/28");
}

#[tokio::test(start_paused = true)]
async fn a_running_gateway_that_does_not_answer_is_removed_and_started_afresh() {
    let h = Harness::with(&[], |rt, services| {
        leave(
            rt,
            services,
            "alice",
            "10.213.0.0/28",
            ContainerState::Running,
        );
    })
    .await;
    h.agent.never_ready.store(true, Ordering::Release);
    // The adoption probes it for a while, as `starting`, then gives up and removes it.
    h.wait_for("alice", "starting").await;
    assert!(until(|| h.containers("alice").is_empty()).await);
    h.wait_for("alice", "stopped").await;
    assert!(h.rt.network_names().is_empty());
    assert_eq!(h.inner().subnets.reserved(), 0);
    h.agent.never_ready.store(false, Ordering::Release);
    let (running, _) = h.ensure("alice").await.unwrap();
    assert_ne!(running.catalog_hash, "old-hash");
    assert_eq!(h.inner().metrics.starts.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_predates_its_users_claim_is_not_adopted() {
    let h = Harness::with(&[], |rt, services| {
        leave(
            rt,
            services,
            "alice",
            "10.213.0.0/28",
            ContainerState::Running,
        );
        // The claim is newer than the container: another id's gateway under this slug.
        let owner = services.layout.user_file("alice", UserFile::Owner).unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&owner)
            .unwrap()
            .set_modified(later)
            .unwrap();
    })
    .await;
    assert!(until(|| h.containers("alice").is_empty()).await);
    h.wait_for("alice", "stopped").await;
    assert_eq!(h.inner().metrics.finished(StartOutcome::Adopted), 0);
}
