//! User B cannot reach user A's gateway on Swarm: not from B's task (A's overlay address, A's
//! `docker_gwbridge` address, A's service name), and not through the front door with B's
//! token.
//!
//! "Connected" proves nothing here: this host's outbound proxy accepts connections to
//! addresses it cannot route (and answers HTTP 200 with an empty body). So reach is tested
//! from inside B's network namespace (`nsenter`, as root) with an HTTP request only a gateway
//! answers that way: `POST /mcp` without a token is a 401 from the gateway itself.

use super::guard::swarm_engine;
use super::SWARM;
use crate::engine::docker;
use crate::mcp::Mcp;
use serde_json::json;
use std::process::Command;

/// The HTTP status of `POST http://host:8811/mcp` sent from `pid`'s network namespace, or
/// `None` when this process cannot enter it.
fn status_from(pid: &str, host: &str) -> Option<String> {
    let out = Command::new("nsenter")
        .args(["-t", pid, "-n", "curl", "-s", "--noproxy", "*", "-m", "2"])
        .args(["-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .arg(format!("http://{host}:8811/mcp"))
        .output()
        .ok()?;
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // curl prints 000 when nothing answered; nsenter itself fails without privileges.
    (!out.stderr.starts_with(b"nsenter")).then_some(code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_user_b_cannot_reach_user_a() {
    let Some(eng) = swarm_engine("swiso") else {
        return;
    };
    let fd = eng.frontdoor(&[SWARM], "").await;
    let (a, b) = tokio::join!(Mcp::open(&fd, "alice"), Mcp::open(&fd, "bob"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.instance().await, b.instance().await, "two gateways");

    let (na, nb) = (eng.name("alice"), eng.name("bob"));
    let (ta, tb) = (eng.running_task("alice"), eng.running_task("bob"));
    let overlay_a = eng.address_on(&na, &ta);
    let overlay_b = eng.address_on(&nb, &tb);
    let bridge_a = eng.address_on("docker_gwbridge", &ta);
    assert!(!overlay_a.is_empty() && !overlay_b.is_empty() && !bridge_a.is_empty());

    let pid_b = eng.inspect(&tb, "{{.State.Pid}}");
    match status_from(&pid_b, &overlay_b) {
        Some(own) => {
            // The check works: B's gateway answers B at its own address.
            assert_eq!(own, "401", "B reaches its own gateway");
            for target in [&overlay_a, &bridge_a] {
                let cross = status_from(&pid_b, target).unwrap();
                assert_ne!(
                    cross, "401",
                    "bob's task reached alice's gateway at {target}"
                );
            }
        }
        None => {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI=true but nsenter cannot enter the task's network namespace"
            );
            eprintln!("SKIPPED the address checks: nsenter needs root");
        }
    }
    // Names resolve on a user's own network (B finds itself), A's does not on B's.
    let own = b
        .call(
            "connect_tcp",
            json!({"host": nb, "port": 8811, "timeout_ms": 1000}),
        )
        .await;
    assert_eq!(own, "connected");
    let by_name = b
        .call(
            "connect_tcp",
            json!({"host": na, "port": 8811, "timeout_ms": 1000}),
        )
        .await;
    assert!(
        by_name.starts_with("error"),
        "bob reached alice by name: {by_name}"
    );
    // B's token is B's gateway, whatever B sends.
    let again = Mcp::open(&fd, "bob").await.unwrap();
    assert_eq!(again.instance().await, b.instance().await);
    assert!(docker(&["inspect", &ta]).0, "alice's gateway still runs");
}
