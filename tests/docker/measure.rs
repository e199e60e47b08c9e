//! Cold-start numbers (run with `--ignored --nocapture`): the front door's first response for
//! 1 and 20 users, against a bare create + start + health poll of the same image through the
//! same runtime (no network, files, hardening or proxy).

use crate::engine::engine;
use crate::mcp::Mcp;
use mcp_frontdoor::gateways::subnets::SubnetPool;
use mcp_frontdoor::runtime::docker::{DockerRuntime, DockerSettings, OwnContainer};
use mcp_frontdoor::runtime::{ContainerSpec, NetworkSpec, Runtime, RuntimeMetrics};
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

/// Bare: create, start, inspect, poll /health every 25 ms; with `own_net`, first a bridge
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
        ..Default::default()
    };
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let info = rt.inspect_container(&id).await.unwrap().unwrap();
    let addr = format!("{}:8811", info.addresses[&network]);
    while !healthy(&addr).await {
        tokio::time::sleep(Duration::from_millis(25)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn cold_start_numbers() {
    let Some(eng) = engine("measure") else { return };
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

    // Bare, one at a time.
    let mut one = Vec::new();
    for i in 0..5 {
        one.push(
            bare(
                rt.clone(),
                bare_name(i),
                eng.image.clone(),
                eng.instance.clone(),
                None,
            )
            .await,
        );
        rt.remove_container(&bare_name(i), Duration::ZERO)
            .await
            .unwrap();
    }
    eprintln!(
        "bare create+start→healthy, 1 container:     {}",
        summary(one)
    );
    // Bare on a network of its own (what isolation alone costs the engine).
    let pool = Arc::new(SubnetPool::new("10.214.0.0/16", 28).unwrap());
    let mut one = Vec::new();
    for i in 0..5 {
        let name = bare_name(50 + i);
        let image = eng.image.clone();
        let inst = eng.instance.clone();
        one.push(bare(rt.clone(), name.clone(), image, inst, Some(pool.clone())).await);
        rt.remove_container(&name, Duration::ZERO).await.unwrap();
        rt.remove_network(&name).await.unwrap();
    }
    eprintln!(
        "bare network+create+start→healthy, 1:       {}",
        summary(one)
    );
    // Bare, 20 at once.
    let t = Instant::now();
    let all = futures_util::future::join_all((0..20).map(|i| {
        bare(
            rt.clone(),
            bare_name(100 + i),
            eng.image.clone(),
            eng.instance.clone(),
            None,
        )
    }))
    .await;
    eprintln!(
        "bare create+start→healthy, 20 concurrently: {}; all healthy after {:.0} ms",
        summary(all),
        t.elapsed().as_secs_f64() * 1000.0
    );
    for i in 0..20 {
        let _ = rt
            .remove_container(&bare_name(100 + i), Duration::ZERO)
            .await;
    }

    // Front door: first response (MCP initialize through the proxy) of a cold user.
    let fd = eng.frontdoor(&["max_concurrent_starts: 20"], "").await;
    let mut one = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        Mcp::open(&fd, &format!("solo{i}")).await.unwrap();
        one.push(t.elapsed());
    }
    eprintln!(
        "front door cold start→first response, 1 user:  {}",
        summary(one)
    );
    let t = Instant::now();
    let all = futures_util::future::join_all((0..20).map(|i| {
        let fd = &fd;
        async move {
            let t = Instant::now();
            Mcp::open(fd, &format!("crowd{i}")).await.unwrap();
            t.elapsed()
        }
    }))
    .await;
    eprintln!(
        "front door cold start→first response, 20 users: {}; all answered after {:.0} ms",
        summary(all),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    Mcp::open(&fd, "solo0").await.unwrap();
    eprintln!(
        "front door warm (running gateway) first response: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}
