//! A restarted front door adopts its instance's running gateways (no duplicates, idle clock
//! continued), removes half-made containers and orphan networks, and never touches another
//! instance's objects.

use crate::engine::{docker, engine, status, wait_state};
use crate::mcp::Mcp;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_front_door_adopts_without_duplicates_or_orphans() {
    let Some(eng) = engine("adopt") else { return };
    let Some(other) = engine("other") else { return };
    let data = tempfile::tempdir().unwrap();
    let fd = eng
        .frontdoor_in(data.path(), &["idle_timeout: 1h"], "")
        .await;
    let first = Mcp::open(&fd, "ida").await.unwrap();
    let instance = first.instance().await;
    let id = eng.inspect(&eng.name("ida"), "{{.Id}}");
    let before = status(&fd, "ida").await;
    drop(first);
    let mut fd = fd;
    fd.shutdown.trigger(Duration::ZERO);
    fd.join().await.unwrap();
    drop(fd);
    let state = std::fs::read_to_string(data.path().join("gateways/state.json")).unwrap();
    assert!(state.contains("\"ida\""), "{state}");

    // Leftovers a crashed front door could leave: a created-but-never-started container and
    // an orphan network of this instance; and another instance's objects, not ours to touch.
    let inst_label = format!("mcp-frontdoor.instance={}", eng.instance);
    let half = eng.name("jon");
    let labels = [
        "--label",
        "mcp-frontdoor.managed=true",
        "--label",
        &inst_label,
        "--label",
        "mcp-frontdoor.user=jon",
    ];
    let mut create = vec!["create", "--name", &half];
    create.extend(labels);
    create.push(&eng.image);
    assert!(docker(&create).0, "docker create");
    let orphan = eng.name("kim");
    let mut net = vec!["network", "create", "--subnet", "10.213.250.0/28"];
    net.extend([
        "--label",
        "mcp-frontdoor.managed=true",
        "--label",
        &inst_label,
        "--label",
        "mcp-frontdoor.user=kim",
    ]);
    net.push(&orphan);
    assert!(docker(&net).0, "docker network create");
    let other_label = format!("mcp-frontdoor.instance={}", other.instance);
    let foreign = other.name("kim");
    assert!(
        docker(&[
            "create",
            "--name",
            &foreign,
            "--label",
            "mcp-frontdoor.managed=true",
            "--label",
            &other_label,
            "--label",
            "mcp-frontdoor.user=kim",
            &other.image,
        ])
        .0
    );

    let fd = eng
        .frontdoor_in(data.path(), &["idle_timeout: 1h"], "")
        .await;
    wait_state(&fd, "ida", "ready", Duration::from_secs(10)).await;
    let after = status(&fd, "ida").await;
    assert_eq!(after.container, before.container);
    assert!(
        after.idle_seconds.unwrap() >= before.idle_seconds.unwrap(),
        "the idle clock continues: {before:?} {after:?}"
    );
    let mcp = Mcp::open(&fd, "ida")
        .await
        .expect("served by the adopted gateway");
    assert_eq!(mcp.instance().await, instance, "same gateway process");
    assert_eq!(eng.inspect(&eng.name("ida"), "{{.Id}}"), id);
    eng.until("leftovers removed", Duration::from_secs(10), || {
        eng.containers(true) == [eng.name("ida")] && eng.networks() == [eng.name("ida")]
    })
    .await;
    assert_eq!(
        other.containers(true),
        [foreign],
        "another instance's container is untouched"
    );
    assert!(fd
        .metrics_text()
        .await
        .contains("mcp_frontdoor_gateway_start_duration_seconds_count{outcome=\"adopted\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_older_than_its_owner_claim_is_replaced_not_adopted() {
    // What an upgrade finds: gateways started by a release without owner markers, whose slug
    // may have been shared by two ids. Simulated by removing the marker of a running gateway.
    let Some(eng) = engine("adoptold") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let fd = eng
        .frontdoor_in(data.path(), &["idle_timeout: 1h"], "")
        .await;
    let first = Mcp::open(&fd, "una").await.unwrap();
    let instance = first.instance().await;
    let old_id = eng.inspect(&eng.name("una"), "{{.Id}}");
    drop(first);
    let mut fd = fd;
    fd.shutdown.trigger(Duration::ZERO);
    fd.join().await.unwrap();
    drop(fd);
    std::fs::remove_file(data.path().join("users/una/owner")).unwrap();

    let fd = eng
        .frontdoor_in(data.path(), &["idle_timeout: 1h"], "")
        .await;
    eng.until("the old gateway removed", Duration::from_secs(10), || {
        eng.containers(true).is_empty()
    })
    .await;
    let mcp = Mcp::open(&fd, "una").await.expect("a fresh gateway");
    assert_ne!(
        mcp.instance().await,
        instance,
        "not the old gateway process"
    );
    assert_ne!(eng.inspect(&eng.name("una"), "{{.Id}}"), old_id);
    assert!(
        data.path().join("users/una/owner").is_file(),
        "claimed again on first use"
    );
}
