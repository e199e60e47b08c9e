//! Per-core serving of the public listener: N threads, each with its own current-thread
//! runtime, its own listening socket and its own pool of gateway connections
//! (`proxy::UpstreamClient` picks the pool of the thread it runs on). A request, its client
//! connection and the gateway connection it is forwarded on stay on one thread, as in nginx's
//! worker processes; on the shared multi-thread runtime every request woke the gateway
//! connection's task, usually on the other thread (docs/BENCHMARKS.md, the profile).
//!
//! The sockets: with `SO_REUSEPORT` on the bound listener (set by `Listeners::bind`) every
//! worker binds its own socket to the same address and the kernel spreads new connections
//! over them by their address hash; a listener bound without it (tests bind their own) is
//! shared by the workers instead (one accept queue, whoever wakes first accepts).
//!
//! What stays global: the connection table (cap, per-address cap, eviction) is one
//! [`Conns`] shared by all workers, the counters are atomics, and shutdown drains every
//! worker within the same grace period. Work that must outlive the request that began it
//! (gateway starts and stops, image pulls, admin jobs) goes to the runtime that started the
//! workers through [`spawn_background`], so no worker's runtime owns it.

use super::conns::Conns;
use super::{serve_with, App, ListenerSpec};
use crate::shutdown::Shutdown;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

thread_local! {
    /// 1..=N on a serving worker's thread, 0 elsewhere.
    static WORKER: Cell<usize> = const { Cell::new(0) };
    /// On a worker's thread: the runtime that started the workers.
    static BACKGROUND: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// The serving worker this thread is (1..=N), or 0 off the workers.
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// Spawns `fut` where it outlives the request that began it: on a worker, on the runtime
/// that started the workers; elsewhere, like `tokio::spawn`.
pub fn spawn_background<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match BACKGROUND.with(|b| b.borrow().clone()) {
        Some(h) => h.spawn(fut),
        None => tokio::spawn(fut),
    }
}

/// The listening backlog of every socket (tokio's default for `TcpListener::bind`).
pub const BACKLOG: i32 = 1024;

/// Binds `addr` with `SO_REUSEPORT`, so workers can bind the same address beside it.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // As tokio's `TcpListener::bind`: a restart binds while old connections sit in TIME_WAIT.
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    Ok(s.into())
}

/// One socket per worker for `listener`'s address: itself plus `n - 1` more.
fn sockets(listener: TcpListener, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let reuseport = socket2::SockRef::from(&listener)
        .reuse_port()
        .unwrap_or(false);
    let addr = listener.local_addr()?;
    let first = listener.into_std()?;
    let mut all = Vec::with_capacity(n);
    for _ in 1..n {
        all.push(if reuseport {
            bind_reuseport(addr)?
        } else {
            first.try_clone()?
        });
    }
    all.insert(0, first);
    Ok(all)
}

/// How long a worker's runtime may take to finish blocking work once it has stopped serving.
const WORKER_STOP: Duration = Duration::from_secs(2);

/// Serves `listener` on `n` worker threads until `shutdown` completes (accepting stops,
/// requests finish within the grace period, the rest are cut), like [`super::serve`].
pub async fn serve<A: App>(
    listener: TcpListener,
    n: usize,
    spec: ListenerSpec,
    app: A,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let conns = Conns::new(spec.limits);
    let background = Handle::current();
    let mut done = Vec::with_capacity(n);
    for (i, socket) in sockets(listener, n)?.into_iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (spec, app, shutdown, conns, background) = (
            spec.clone(),
            app.clone(),
            shutdown.clone(),
            conns.clone(),
            background.clone(),
        );
        std::thread::Builder::new()
            .name(format!("fd-worker-{}", i + 1))
            .spawn(move || {
                let _done = tx; // dropped when the thread ends, however it ends
                WORKER.with(|w| w.set(i + 1));
                BACKGROUND.with(|b| *b.borrow_mut() = Some(background));
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(worker = i + 1, error = %e, "cannot start a serving worker");
                        return;
                    }
                };
                rt.block_on(async move {
                    match TcpListener::from_std(socket) {
                        Ok(l) => serve_with(l, spec, app, shutdown, conns).await,
                        Err(e) => tracing::error!(worker = i + 1, error = %e, "worker listener"),
                    }
                });
                rt.shutdown_timeout(WORKER_STOP);
            })?;
        done.push(rx);
    }
    for rx in done {
        let _ = rx.await;
    }
    Ok(())
}

/// The number of workers for `server.workers`: `auto` is one per CPU.
pub fn count(configured: crate::config::Workers) -> usize {
    match configured {
        crate::config::Workers::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
        crate::config::Workers::Count(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::conns::Limits;
    use crate::server::edge_metrics::EdgeMetrics;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;

    #[test]
    fn off_the_workers_the_thread_is_no_worker_and_background_is_local() {
        assert_eq!(current(), 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async { spawn_background(async { current() + 7 }).await });
        assert_eq!(got.unwrap(), 7);
    }

    #[tokio::test]
    async fn reuseport_sockets_share_an_address_and_a_plain_listener_is_cloned() {
        let l =
            TcpListener::from_std(bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let all = sockets(l, 3).unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|s| s.local_addr().unwrap() == addr));
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = plain.local_addr().unwrap();
        let all = sockets(plain, 2).unwrap();
        assert!(all.iter().all(|s| s.local_addr().unwrap() == addr));
    }

    /// One GET on a new connection; the body.
    async fn get(addr: SocketAddr, path: &str) -> String {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get(path)
            .header("host", "x")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn connections_spread_over_the_workers_background_work_leaves_them_and_shutdown_drains() {
        let l =
            TcpListener::from_std(bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new()
            .route(
                "/who",
                axum::routing::get(|| async {
                    // Where the handler runs, and where background work started here runs.
                    let bg = spawn_background(async { current() }).await.unwrap();
                    format!("{} {bg}", current())
                }),
            )
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "done"
                }),
            );
        let spec = ListenerSpec {
            name: "public",
            tls: None,
            limits: Limits::metrics_listener(),
            metrics: EdgeMetrics::default(),
        };
        let shutdown = Shutdown::new();
        let served = tokio::spawn(serve(l, 3, spec, app, shutdown.clone()));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let who = get(addr, "/who").await;
            let (worker, bg) = who.split_once(' ').unwrap();
            assert_eq!(bg, "0", "background work runs off the workers");
            seen.insert(worker.parse::<usize>().unwrap());
        }
        assert!(
            seen.iter().all(|w| (1..=3).contains(w)) && seen.len() >= 2,
            "new connections are spread over the workers' sockets: {seen:?}"
        );
        // Shutdown: the request in flight finishes, then every worker stops.
        let slow = tokio::spawn(get(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        shutdown.trigger(Duration::from_secs(5));
        assert_eq!(slow.await.unwrap(), "done");
        tokio::time::timeout(Duration::from_secs(5), served)
            .await
            .expect("the workers stopped")
            .unwrap()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no socket accepts after shutdown"
        );
    }
}
