//! Cold start on Swarm against plain Docker (run with `--ignored --nocapture`): the time from
//! a user's first request to its answer (MCP initialize through the front door), for fresh
//! users one after another, alternating the runtimes, on the same engine and test gateway
//! image. One warm-up start per runtime (it makes the derived image) is not counted.

use super::guard::swarm_engine;
use super::SWARM;
use crate::engine::engine;
use crate::mcp::Mcp;
use mcp_frontdoor::gateways::GatewayControl;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(v: &[Duration]) -> Vec<u128> {
    v.iter().map(Duration::as_millis).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: prints cold-start times on Swarm and on plain Docker"]
async fn measure_swarm_cold_start_against_docker() {
    let Some(sw) = swarm_engine("meassw") else {
        return;
    };
    let Some(dk) = engine("measdk") else { return };
    let fd_sw = sw.frontdoor(&[SWARM], "").await;
    let fd_dk = dk.frontdoor(&[], "").await;
    let (mut t_sw, mut t_dk) = (Vec::new(), Vec::new());
    for run in 0..=RUNS {
        for (fd, times) in [(&fd_dk, &mut t_dk), (&fd_sw, &mut t_sw)] {
            let slug = format!("m{run}");
            let t = Instant::now();
            Mcp::open(fd, &slug).await.expect("cold start");
            let took = t.elapsed();
            if run > 0 {
                times.push(took);
            }
            fd.gateways.as_ref().unwrap().stop(&slug).await.unwrap();
        }
    }
    println!("docker cold start ms: {:?}", ms(&t_dk));
    println!("swarm  cold start ms: {:?}", ms(&t_sw));
    println!(
        "median of {RUNS}: docker {} ms, swarm {} ms",
        median(t_dk).as_millis(),
        median(t_sw).as_millis()
    );
}

/// The same for the real docker/mcp-gateway with the policed API and one stdio server
/// (`gateway_api.rs`): the time to the gateway's initialize answer (it answers once it has
/// run the server and listed its tools) and to the first tools/call the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: prints the real gateway's cold-start times on Swarm and on plain Docker"]
async fn measure_swarm_real_gateway_cold_start_against_docker() {
    use super::gateway_api::{real_frontdoor, real_images, REAL_NAME};
    let Some(sw) = swarm_engine("measrgsw") else {
        return;
    };
    let Some(dk) = engine("measrgdk") else { return };
    if !real_images("measrg") {
        return;
    }
    let fd_sw = real_frontdoor(&sw, true).await;
    let fd_dk = real_frontdoor(&dk, false).await;
    let mut times: [(Vec<Duration>, Vec<Duration>); 2] = Default::default();
    for run in 0..=RUNS {
        for (i, fd) in [&fd_dk, &fd_sw].into_iter().enumerate() {
            let slug = format!("r{run}");
            let t = Instant::now();
            let mcp = Mcp::open_gateway(fd, &slug, REAL_NAME)
                .await
                .expect("cold start");
            let init = t.elapsed();
            let out = mcp.call("echo", serde_json::json!({"text": "x"})).await;
            let call = t.elapsed();
            assert_eq!(out, "x");
            if run > 0 {
                times[i].0.push(init);
                times[i].1.push(call);
            }
            fd.gateways.as_ref().unwrap().stop(&slug).await.unwrap();
        }
    }
    let [(dk_init, dk_call), (sw_init, sw_call)] = times;
    println!(
        "docker initialize ms: {:?}, first call ms: {:?}",
        ms(&dk_init),
        ms(&dk_call)
    );
    println!(
        "swarm  initialize ms: {:?}, first call ms: {:?}",
        ms(&sw_init),
        ms(&sw_call)
    );
    println!(
        "median of {RUNS}: docker {} / {} ms, swarm {} / {} ms (initialize / first call)",
        median(dk_init).as_millis(),
        median(dk_call).as_millis(),
        median(sw_init).as_millis(),
        median(sw_call).as_millis()
    );
}
