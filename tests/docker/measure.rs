//! Cold-start numbers (run with `--ignored --nocapture`): the front door's first response for
//! 1 and 20 users, against a bare create + start + health poll of the same image with the same
//! hardening and limits through the same runtime, with and without a network of its own (no
//! catalog, files, init or proxy).

use crate::engine::engine;
use crate::mcp::Mcp;
use mcp_frontdoor::gateways::subnets::{Subnet, SubnetPool};
use mcp_frontdoor::runtime::docker::{DockerRuntime, DockerSettings, OwnContainer};
use mcp_frontdoor::runtime::{
    ContainerSpec, Limits, MemoryDir, NetworkSpec, Runtime, RuntimeMetrics,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn healthy(addr: &str) -> bool {
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_millis(500),
        tokio::net::TcpStream::connect(addr),
    )
    .await
    else {
        return false;
    };
    if s.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).await.is_ok() && buf.starts_with(b"HTTP/1.1 2")
}

/// Bare: create, start, inspect, poll /health every 5 ms; with `own_net`, first a bridge
/// network of its own (what isolation costs the engine).
async fn bare(
    rt: Arc<DockerRuntime>,
    name: String,
    image: String,
    instance: String,
    own_net: Option<Arc<SubnetPool>>,
) -> Duration {
    let t = Instant::now();
    let labels = HashMap::from([("mcp-frontdoor.instance".to_string(), instance)]);
    let network = match own_net {
        Some(pool) => {
            let used: Vec<String> = rt
                .list_networks(&Vec::new())
                .await
                .unwrap()
                .into_iter()
                .flat_map(|n| n.subnets)
                .collect();
            let subnet = pool.allocate(&used).unwrap();
            let spec = NetworkSpec {
                name: name.clone(),
                subnet: subnet.to_string(),
                labels: labels.clone(),
                internal: false,
            };
            rt.create_network(&spec).await.unwrap();
            name.clone()
        }
        None => "bridge".to_string(),
    };
    let spec = ContainerSpec {
        name: name.clone(),
        image,
        args: vec!["--port=8811".into()],
        env: vec!["MCP_GATEWAY_AUTH_TOKEN=x".into()],
        labels,
        network: network.clone(),
        port: 8811,
        // The same hardening, limits and tmpfs mounts as the front door's containers: their
        // cost is Docker's. The init, its volume and the file delivery are not: they count as
        // the front door's overhead.
        limits: Limits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(64),
        },
        read_only_root: true,
        tmpfs: vec!["/tmp".into()],
        memory_dirs: vec![MemoryDir {
            path: "/root/.docker/mcp".into(),
            uid: 65532,
            gid: 65532,
            mode: 0o700,
            size_bytes: 16 << 20,
        }],
        harden: true,
        ..Default::default()
    };
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let info = rt.inspect_container(&id).await.unwrap().unwrap();
    let addr = format!("{}:8811", info.addresses[&network]);
    // The front door's cadence in a gateway's first second, so neither side gains on polling.
    while !healthy(&addr).await {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    t.elapsed()
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "min {:.0} ms, median {:.0} ms, max {:.0} ms (n={})",
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1]),
        v.len()
    )
}

/// Front door: the first response (MCP initialize through the proxy) of a cold user, then its
/// gateway is stopped so the engine is as empty for the next round as for the bare runs.
async fn front_door_cold(fd: &crate::support::Frontdoor, slug: &str) -> Duration {
    let t = Instant::now();
    Mcp::open(fd, slug).await.unwrap();
    t.elapsed()
}

async fn stop_all(fd: &crate::support::Frontdoor, slugs: &[String]) {
    use mcp_frontdoor::gateways::GatewayControl;
    let g = fd.gateways.as_ref().unwrap();
    futures_util::future::join_all(slugs.iter().map(|s| g.stop(s))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn cold_start_numbers() {
    let Some(eng) = engine("measure") else { return };
    // RUST_LOG=mcp_frontdoor::gateways=debug shows each start's steps.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let rounds: usize = std::env::var("COLD_START_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(8);
    let rt = Arc::new(DockerRuntime::new(
        DockerSettings {
            host: None,
            api_timeout: Duration::from_secs(30),
            pull_timeout: Duration::from_secs(30),
            own_container: OwnContainer::None,
        },
        RuntimeMetrics::default(),
    ));
    let bare_name = |i: usize| format!("mcp-fd-{}-bare{i}", eng.instance);
    let pool = Arc::new(SubnetPool::new(Subnet::parse("10.214.0.0/16").unwrap(), 28).unwrap());
    let bare_run = |i: usize, net: bool| {
        let (rt, image, inst) = (rt.clone(), eng.image.clone(), eng.instance.clone());
        let pool = net.then(|| pool.clone());
        let name = bare_name(i);
        async move {
            let d = bare(rt.clone(), name.clone(), image, inst, pool).await;
            rt.remove_container(&name, Duration::ZERO).await.unwrap();
            rt.remove_network(&name).await.unwrap();
            d
        }
    };
    let fd = eng.frontdoor(&["max_concurrent_starts: 20"], "").await;
    // The init volume is filled once per front door process: not part of a cold start.
    let warmup = "warmup".to_string();
    front_door_cold(&fd, &warmup).await;
    stop_all(&fd, &[warmup]).await;

    // One user at a time; the three contenders alternate within each round.
    let (mut plain, mut net, mut door, mut paired) = (vec![], vec![], vec![], vec![]);
    for r in 0..rounds {
        plain.push(bare_run(r, false).await);
        let n = bare_run(r, true).await;
        let slug = format!("solo{r}");
        let f = front_door_cold(&fd, &slug).await;
        stop_all(&fd, &[slug]).await;
        net.push(n);
        door.push(f);
        paired.push(f.as_secs_f64() * 1000.0 - n.as_secs_f64() * 1000.0);
    }
    paired.sort_by(f64::total_cmp);
    eprintln!("cold start, 1 user at a time, {rounds} alternating rounds:");
    eprintln!(
        "  bare create+start→healthy:                 {}",
        summary(plain)
    );
    eprintln!(
        "  bare network+create+start→healthy:         {}",
        summary(net)
    );
    eprintln!(
        "  front door cold start→first MCP response:  {}",
        summary(door)
    );
    eprintln!(
        "  overhead (front door − bare with network), paired per round: median {:+.0} ms, min {:+.0}, max {:+.0}",
        paired[paired.len() / 2],
        paired[0],
        paired[paired.len() - 1]
    );

    // Twenty at once, two alternating rounds.
    for round in 0..2 {
        // Each duration runs from the common start, so the slowest is "all ready"; the
        // clean-up inside `bare_run` does not count.
        let all = futures_util::future::join_all((0..20).map(|i| bare_run(100 + i, true))).await;
        let bare_all = *all.iter().max().unwrap();
        let slugs: Vec<String> = (0..20).map(|i| format!("crowd{round}x{i}")).collect();
        let fd_all =
            futures_util::future::join_all(slugs.iter().map(|s| front_door_cold(&fd, s))).await;
        let door_all = *fd_all.iter().max().unwrap();
        stop_all(&fd, &slugs).await;
        eprintln!("cold start, 20 at once, round {}:", round + 1);
        eprintln!(
            "  bare network+create+start→healthy: {}; all healthy after {:.0} ms",
            summary(all),
            bare_all.as_secs_f64() * 1000.0
        );
        eprintln!(
            "  front door first MCP responses:    {}; all answered after {:.0} ms",
            summary(fd_all),
            door_all.as_secs_f64() * 1000.0
        );
        eprintln!(
            "  overhead (all answered − all healthy): {:+.0} ms",
            (door_all.as_secs_f64() - bare_all.as_secs_f64()) * 1000.0
        );
    }
    let slug = "solo0".to_string();
    Mcp::open(&fd, &slug).await.unwrap();
    let t = Instant::now();
    Mcp::open(&fd, &slug).await.unwrap();
    eprintln!(
        "front door warm (running gateway) first response: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}
