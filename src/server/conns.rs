//! The open connections of a listener: how many (in total and per address), which ones are
//! busy, idle or authenticated, and which one to close when a new one arrives at the cap.
//!
//! The policy, in one place:
//! - every connection has a deadline counted from accept for its first complete request head
//!   (TLS handshake included), and, once it has served a request, closes after `idle` with no
//!   request in flight (an h1 keep-alive connection between requests, an h2 connection with no
//!   open stream); a request in flight (an hours-long event stream too) is never timed here;
//! - above `max - reserve` open connections a new connection gets the short
//!   `reserve_first_request` deadline instead, so a flood of silent connections turns over
//!   quickly;
//! - at `max`, a new connection evicts the oldest connection that never authenticated and has
//!   no request in flight; when there is none (every open connection is a user's, or busy),
//!   the new one is accepted and closed at once. Authenticated users' connections are never
//!   closed to make room, and a health probe, a new connection like any other, gets in as long
//!   as some silent or anonymous connection can make room for it;
//! - an optional per-address cap refuses the connection over it (accepted and closed).

use super::edge_metrics::CloseReason;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use pin_project_lite::pin_project;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The bounds of one listener (from `server.*`; fixed ones for the metrics listener).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From accept to the end of the TLS handshake.
    pub handshake: Duration,
    /// From accept to the first complete request head.
    pub first_request: Duration,
    /// With no request in flight, after the first one.
    pub idle: Duration,
    /// Open connections at most.
    pub max: usize,
    /// Of `max`, the slots above which new connections get `reserve_first_request`.
    pub reserve: usize,
    /// The first-request deadline of a connection accepted above `max - reserve`.
    pub reserve_first_request: Duration,
    /// Open connections from one address at most; 0 = no limit.
    pub per_address: usize,
}

impl Limits {
    /// The public listener's bounds from the config.
    pub fn from_config(s: &crate::config::ServerConfig) -> Self {
        Self {
            handshake: s.tls_handshake_timeout.0,
            first_request: s.first_request_timeout.0,
            idle: s.idle_timeout.0,
            max: s.max_connections,
            reserve: s.reserved_connections,
            reserve_first_request: s.reserve_first_request_timeout.0,
            per_address: s.max_connections_per_address,
        }
    }

    /// The metrics listener (loopback, Prometheus and probes): small and fixed.
    pub fn metrics_listener() -> Self {
        Self {
            handshake: Duration::from_secs(10),
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max: 256,
            reserve: 0,
            reserve_first_request: Duration::from_secs(10),
            per_address: 0,
        }
    }
}

/// One open connection, shared by its task, its requests and the table.
pub struct ConnState {
    id: u64,
    accepted: Instant,
    first_request: Duration,
    idle: Duration,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    /// Milliseconds after `accepted` when the last request finished.
    idle_since_ms: AtomicU64,
    authenticated: AtomicBool,
    /// Cancelled when the table evicts this connection.
    pub(super) evict: CancellationToken,
}

impl ConnState {
    /// A request head arrived; it is in flight until the returned guard drops (with the
    /// response body).
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Release);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// A request on this connection carried a valid token: it is a user's connection now and
    /// is never evicted to make room.
    pub fn mark_authenticated(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
    }

    fn evictable(&self) -> bool {
        !self.authenticated.load(Ordering::Relaxed)
            && self.in_flight.load(Ordering::Acquire) == 0
            && !self.evict.is_cancelled()
    }

    /// Resolves when the connection has been without a request for its deadline: the first
    /// request's (from accept) or the idle one (from the end of the last request).
    ///
    /// Requests do not wake the connection: the timer is checked when it fires and set again
    /// for the deadline as it is then (a request in flight is looked at again after `idle`).
    /// So a request costs two atomic updates, not two wake-ups and a timer per request.
    pub async fn expired(&self) -> CloseReason {
        loop {
            let deadline = match self.deadline() {
                Ok(d) => d,
                Err(reason) => return reason,
            };
            tokio::time::sleep_until(deadline).await;
        }
    }

    /// The deadline as it stands now, or why it has passed.
    fn deadline(&self) -> Result<Instant, CloseReason> {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Ok(now + self.idle);
        }
        let (deadline, reason) = if self.requests.load(Ordering::Acquire) == 0 {
            (
                self.accepted + self.first_request,
                CloseReason::FirstRequestTimeout,
            )
        } else {
            let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
            (self.accepted + since + self.idle, CloseReason::IdleTimeout)
        };
        if deadline <= now {
            Err(reason)
        } else {
            Ok(deadline)
        }
    }
}

/// A request in flight on its connection (see [`ConnState::request_started`]).
pub struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let c = &self.0;
        let ms = c.accepted.elapsed().as_millis() as u64;
        c.idle_since_ms.store(ms, Ordering::Release);
        c.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Marks the request's connection as a user's (a no-op for requests without one).
pub fn mark_authenticated(ext: &http::Extensions) {
    if let Some(info) = ext.get::<super::ConnInfo>() {
        info.state.mark_authenticated();
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it ends or is dropped.
    pub struct Tracked<B> {
        #[pin]
        inner: B,
        guard: Option<InFlight>,
    }
}

impl<B> Tracked<B> {
    pub fn new(inner: B, guard: InFlight) -> Self {
        Self {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B: Body<Data = Bytes>> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let r = this.inner.poll_frame(cx);
        if matches!(r, Poll::Ready(None)) {
            this.guard.take();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Default)]
struct Table {
    /// By id, which is also the order of acceptance (oldest first).
    open: BTreeMap<u64, Arc<ConnState>>,
    per_address: HashMap<IpAddr, usize>,
}

/// The open connections of one listener.
pub struct Conns {
    limits: Limits,
    table: Mutex<Table>,
    next_id: AtomicU64,
    /// Slots alive (evicted connections count until their socket is closed).
    live: AtomicUsize,
    emptied: Notify,
}

/// A place in the table; gives it back when dropped (the connection's socket is closed).
pub struct Slot {
    conns: Arc<Conns>,
    peer: IpAddr,
    pub state: Arc<ConnState>,
    /// Accepted above `max - reserve` (it got the short first-request deadline).
    pub pressed: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.conns.table.lock();
        t.open.remove(&self.state.id);
        if let Some(n) = t.per_address.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                t.per_address.remove(&self.peer);
            }
        }
        drop(t);
        if self.conns.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.conns.emptied.notify_waiters();
        }
    }
}

impl Conns {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            emptied: Notify::new(),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Connections whose sockets are still open.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Takes a place for a connection from `peer`, evicting the oldest idle anonymous
    /// connection at the cap. `Err` says why it must be closed at once; `Ok` also says how
    /// many were evicted (0 or 1) for the metrics.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<(Slot, bool), CloseReason> {
        let l = &self.limits;
        let mut t = self.table.lock();
        if l.per_address > 0 && t.per_address.get(&peer).copied().unwrap_or(0) >= l.per_address {
            return Err(CloseReason::PerAddress);
        }
        let mut evicted = false;
        if t.open.len() >= l.max {
            // Oldest first: it had the longest to send its request. The evicted one leaves
            // the table now (its socket closes within a moment).
            let victim = t
                .open
                .iter()
                .find(|(_, c)| c.evictable())
                .map(|(id, c)| (*id, c.clone()));
            let Some((id, c)) = victim else {
                return Err(CloseReason::OverCapacity);
            };
            c.evict.cancel();
            t.open.remove(&id);
            evicted = true;
        }
        let pressed = t.open.len() >= l.max.saturating_sub(l.reserve);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            id,
            accepted: Instant::now(),
            first_request: if pressed {
                l.first_request.min(l.reserve_first_request)
            } else {
                l.first_request
            },
            idle: l.idle,
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(0),
            authenticated: AtomicBool::new(false),
            evict: CancellationToken::new(),
        });
        t.open.insert(id, state.clone());
        *t.per_address.entry(peer).or_insert(0) += 1;
        drop(t);
        self.live.fetch_add(1, Ordering::AcqRel);
        Ok((
            Slot {
                conns: self.clone(),
                peer,
                state,
                pressed,
            },
            evicted,
        ))
    }

    /// Resolves when every slot has been given back.
    pub async fn all_closed(&self) {
        loop {
            let n = self.emptied.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            n.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, reserve: usize, per_address: usize) -> Limits {
        Limits {
            handshake: Duration::from_secs(1),
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            max,
            reserve,
            reserve_first_request: Duration::from_secs(1),
            per_address,
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_anonymous_connection_makes_room() {
        let conns = Conns::new(limits(3, 1, 0));
        let (user, _) = conns.admit(A).unwrap();
        user.state.mark_authenticated();
        let (busy, _) = conns.admit(A).unwrap();
        let _req = busy.state.request_started();
        let (silent, _) = conns.admit(A).unwrap();
        assert!(silent.pressed, "the third of three is in the reserve");
        let (_new, evicted) = conns.admit(B).unwrap();
        assert!(evicted);
        assert!(silent.state.evict.is_cancelled(), "the silent one went");
        assert!(!user.state.evict.is_cancelled() && !busy.state.evict.is_cancelled());
        assert_eq!(conns.live(), 4, "the evicted socket counts until it closes");
        drop(silent);
        // Now: a user, a busy one and the newcomer (anonymous and idle: evictable).
        let (_n2, evicted) = conns.admit(B).unwrap();
        assert!(evicted);
        // Only the user and the busy one are left besides _n2: _n2 goes next, then nothing.
        let (_n3, _) = conns.admit(B).unwrap();
        _n3.state.mark_authenticated();
        _n2.state.mark_authenticated();
        assert_eq!(conns.admit(B).err(), Some(CloseReason::OverCapacity));
    }

    #[tokio::test]
    async fn the_per_address_cap_refuses_the_next_from_that_address_only() {
        let conns = Conns::new(limits(100, 0, 2));
        let a1 = conns.admit(A).unwrap();
        let _a2 = conns.admit(A).unwrap();
        assert_eq!(conns.admit(A).err(), Some(CloseReason::PerAddress));
        assert!(conns.admit(B).is_ok());
        drop(a1);
        assert!(
            conns.admit(A).is_ok(),
            "a closed connection frees its place"
        );
    }

    #[tokio::test]
    async fn deadlines_first_request_then_idle_never_while_in_flight() {
        let ms = Duration::from_millis;
        let conns = Conns::new(Limits {
            first_request: ms(200),
            idle: ms(300),
            ..limits(10, 0, 0)
        });
        let (slot, _) = conns.admit(A).unwrap();
        let s = slot.state.clone();
        let t0 = Instant::now();
        assert_eq!(s.expired().await, CloseReason::FirstRequestTimeout);
        assert!(t0.elapsed() >= ms(200) && t0.elapsed() < ms(1000));
        let req = s.request_started();
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.expired().await }
        });
        tokio::time::sleep(ms(700)).await;
        assert!(!waiting.is_finished(), "a request in flight is never timed");
        drop(req);
        let t1 = Instant::now();
        assert_eq!(waiting.await.unwrap(), CloseReason::IdleTimeout);
        assert!(t1.elapsed() >= ms(300) && t1.elapsed() < ms(1100));
    }
}
