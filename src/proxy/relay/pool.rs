//! Idle keep-alive connections to gateways, one pool per serving worker.
//!
//! A connection is put back only by the exchange that used it, once its answer's body was read
//! to its framed end with nothing left over, and is taken again only by a request on the
//! same worker thread: its socket is registered with that worker's runtime, and nothing here
//! is shared between threads in the hot path (each worker's lock is only ever taken by that
//! worker). Pool 0 serves everything off the workers (the shared runtime, tests).

use crate::server::workers;
use http::uri::Authority;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Connections to every gateway, by serving worker.
pub struct Pools {
    by_worker: Box<[Mutex<Pool>]>,
    idle_timeout: Duration,
    max_idle_per_gateway: usize,
}

#[derive(Default)]
struct Pool {
    idle: HashMap<Authority, Vec<Idle>>,
    /// Whether this pool's sweeper runs (started with its first connection).
    swept: bool,
}

struct Idle {
    io: TcpStream,
    since: Instant,
}

impl Pools {
    /// Pools for `workers` serving workers (and pool 0 for everything off them).
    pub fn new(workers: usize, idle_timeout: Duration, max_idle_per_gateway: usize) -> Arc<Self> {
        Arc::new(Self {
            by_worker: (0..=workers).map(|_| Mutex::default()).collect(),
            idle_timeout,
            max_idle_per_gateway,
        })
    }

    fn here(&self) -> (usize, &Mutex<Pool>) {
        let i = workers::current();
        match self.by_worker.get(i) {
            Some(p) => (i, p),
            None => (0, &self.by_worker[0]),
        }
    }

    /// The most recently used live connection to `gateway`, if any. Connections idle for
    /// longer than the idle timeout, closed by the gateway or holding bytes nobody asked for
    /// are dropped on the way.
    pub fn take(&self, gateway: &Authority) -> Option<TcpStream> {
        let (_, pool) = self.here();
        let mut pool = pool.lock();
        let idle = pool.idle.get_mut(gateway)?;
        let now = Instant::now();
        while let Some(c) = idle.pop() {
            if now.duration_since(c.since) < self.idle_timeout && reusable(&c.io) {
                return Some(c.io);
            }
        }
        None
    }

    /// Puts a connection whose exchange ended cleanly back for the next request to `gateway`.
    pub fn put(self: &Arc<Self>, gateway: Authority, io: TcpStream) {
        let (i, pool) = self.here();
        let mut pool = pool.lock();
        let idle = pool.idle.entry(gateway).or_default();
        if idle.len() >= self.max_idle_per_gateway {
            return;
        }
        idle.push(Idle {
            io,
            since: Instant::now(),
        });
        if !pool.swept {
            pool.swept = true;
            drop(pool);
            // On the runtime the connection is registered with, so it ends with it.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(sweep(Arc::downgrade(self), i));
            }
        }
    }

    /// Drops the connections idle for longer than the timeout (and gateways left without any).
    fn sweep(&self, i: usize) {
        let Some(pool) = self.by_worker.get(i) else {
            return;
        };
        let mut pool = pool.lock();
        let now = Instant::now();
        pool.idle.retain(|_, idle| {
            idle.retain(|c| now.duration_since(c.since) < self.idle_timeout);
            !idle.is_empty()
        });
    }

    /// Idle connections in this thread's pool (for tests).
    #[cfg(test)]
    fn idle_here(&self, gateway: &Authority) -> usize {
        let (_, pool) = self.here();
        let pool = pool.lock();
        pool.idle.get(gateway).map_or(0, Vec::len)
    }
}

/// Closes the idle connections of a gateway nobody calls any more (a stopped gateway's
/// would otherwise be held half-closed until its user came back).
async fn sweep(pools: Weak<Pools>, i: usize) {
    let every = match pools.upgrade() {
        Some(p) => (p.idle_timeout / 2).max(Duration::from_millis(100)),
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        match pools.upgrade() {
            Some(p) => p.sweep(i),
            None => return,
        }
    }
}

/// Whether an idle connection can carry another request: nothing arrived on it since its
/// last answer ended. The reactor's readiness answers without a system call in the usual
/// case; when it says readable, a one-byte read tells a stale flag from an end, a reset or
/// stray bytes (any of which means it is not reusable).
fn reusable(io: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match io.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        Poll::Ready(Ok(())) => {
            let mut byte = [0u8; 1];
            matches!(io.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair(l: &TcpListener) -> (TcpStream, TcpStream) {
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test]
    async fn a_connection_comes_back_once_and_only_while_the_gateway_keeps_it() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw: Authority = l.local_addr().unwrap().to_string().parse().unwrap();
        let pools = Pools::new(0, Duration::from_secs(60), 2);
        assert!(pools.take(&gw).is_none());

        let (c, _s) = pair(&l).await;
        pools.put(gw.clone(), c);
        assert!(pools.take(&gw).is_some(), "a live connection is reused");
        assert!(pools.take(&gw).is_none(), "and handed out once");

        // The gateway closed it while idle.
        let (c, s) = pair(&l).await;
        pools.put(gw.clone(), c);
        drop(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pools.take(&gw).is_none(), "a closed connection is dropped");

        // The gateway sent bytes nobody asked for.
        let (c, mut s) = pair(&l).await;
        pools.put(gw.clone(), c);
        s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pools.take(&gw).is_none(), "stray bytes are not an answer");

        // Other gateways' connections are theirs.
        let (c, _s2) = pair(&l).await;
        pools.put(gw.clone(), c);
        let other: Authority = "127.0.0.1:1".parse().unwrap();
        assert!(pools.take(&other).is_none());
        assert_eq!(pools.idle_here(&gw), 1);
    }

    #[tokio::test]
    async fn idle_connections_are_capped_and_expire() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw: Authority = l.local_addr().unwrap().to_string().parse().unwrap();
        let pools = Pools::new(0, Duration::from_millis(200), 2);
        let mut held = Vec::new();
        for _ in 0..3 {
            let (c, s) = pair(&l).await;
            held.push(s);
            pools.put(gw.clone(), c);
        }
        assert_eq!(pools.idle_here(&gw), 2, "at most the cap is kept");
        // The sweeper closes them after the idle timeout even if nobody asks again.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(pools.idle_here(&gw), 0);
        assert!(pools.take(&gw).is_none());
    }
}
