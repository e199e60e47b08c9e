//! The event bus: one sequence, a bounded history for `Last-Event-ID` resume, a broadcast
//! channel to the open streams, and the per-user cap on streams.
//!
//! Sequence numbers start at this boot's time in milliseconds × 1000, so they keep rising
//! across restarts (while the clock does) and an id from an earlier run is below this run's
//! first one: such a client gets `reset` instead of a silent gap. They stay below 2^53, so
//! JavaScript reads them exactly.

use super::model::{Event, EventBody, Shared};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Publishes events and hands out subscriptions; shared by the lifecycle and the API.
#[derive(Debug)]
pub struct EventBus {
    log: Mutex<Log>,
    tx: broadcast::Sender<Shared>,
    /// The first sequence number of this run.
    first_seq: u64,
    capacity: usize,
    max_streams: usize,
    streams: Mutex<HashMap<String, usize>>,
    /// Cancelled at shutdown: every stream ends.
    closed: CancellationToken,
}

#[derive(Debug)]
struct Log {
    next: u64,
    history: VecDeque<Shared>,
}

/// Where a reconnecting client wants to continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// No `Last-Event-ID`: live events only.
    Live,
    /// After this id.
    After(u64),
    /// A `Last-Event-ID` that is not a number.
    Invalid,
}

impl Resume {
    /// Reads a `Last-Event-ID` header value.
    pub fn from_header(value: Option<&[u8]>) -> Self {
        match value {
            None => Resume::Live,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map_or(Resume::Invalid, Resume::After),
        }
    }
}

/// A new stream's start: what to send first, then the live receiver.
pub struct Subscription {
    /// Why the client must reload its state (sent as `event: reset` before anything else).
    pub reset: Option<&'static str>,
    /// Missed events to send before live ones (not yet filtered by visibility).
    pub replay: Vec<Shared>,
    pub live: broadcast::Receiver<Shared>,
    /// The newest id issued when the stream started (a reset carries it, so a reconnect
    /// after the reload resumes there).
    pub last_issued: Option<u64>,
    /// Cancelled when the front door shuts down.
    pub closed: CancellationToken,
}

/// A user holds as many event streams as they may.
#[derive(Debug)]
pub struct TooManyStreams(pub usize);

/// One open stream of a user; dropping it frees the place.
#[derive(Debug)]
pub struct StreamGuard {
    bus: Arc<EventBus>,
    slug: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = self.bus.streams.lock();
        if let Some(n) = streams.get_mut(&self.slug) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                streams.remove(&self.slug);
            }
        }
    }
}

impl EventBus {
    /// A bus keeping `history` events (at least 1) and allowing `max_streams` per user.
    pub fn new(history: usize, max_streams: usize) -> Self {
        let boot_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self::starting_at(boot_ms.saturating_mul(1000), history, max_streams)
    }

    /// A bus whose first event has sequence number `first_seq`.
    pub fn starting_at(first_seq: u64, history: usize, max_streams: usize) -> Self {
        let capacity = history.max(1);
        Self {
            log: Mutex::new(Log {
                next: first_seq,
                history: VecDeque::with_capacity(capacity.min(4096)),
            }),
            // A stream further behind than the history could not be resumed anyway.
            tx: broadcast::channel(capacity).0,
            first_seq,
            capacity,
            max_streams,
            streams: Mutex::new(HashMap::new()),
            closed: CancellationToken::new(),
        }
    }

    /// From the `events:` config section.
    pub fn from_config(cfg: &crate::config::EventsConfig) -> Self {
        Self::new(cfg.history, cfg.max_streams_per_user)
    }

    /// Publishes an event of `kind` for `user` (`None`: admins only). Never blocks on a
    /// stream: the channel drops what a slow one did not read (it then gets `reset`).
    pub fn publish(&self, kind: &'static str, user: Option<&str>, body: EventBody) -> u64 {
        let mut log = self.log.lock();
        let seq = log.next;
        log.next += 1;
        let event = Arc::new(Event {
            seq,
            time: crate::time::rfc3339_utc(SystemTime::now()),
            kind,
            user: user.map(str::to_string),
            body,
        });
        if log.history.len() == self.capacity {
            log.history.pop_front();
        }
        log.history.push_back(event.clone());
        // Sent under the lock, so the channel's order is the sequence's order and a
        // subscriber taken under the same lock sees each event exactly once.
        let _ = self.tx.send(event);
        seq
    }

    /// Starts a stream resuming at `resume`.
    pub fn subscribe(&self, resume: Resume) -> Subscription {
        let log = self.log.lock();
        let live = self.tx.subscribe();
        let last_issued = (log.next > self.first_seq).then(|| log.next - 1);
        let oldest_kept = log.history.front().map_or(log.next, |e| e.seq);
        let (reset, replay) = match resume {
            Resume::Live => (None, Vec::new()),
            Resume::Invalid => (Some("invalid_id"), Vec::new()),
            Resume::After(id) if id < self.first_seq || Some(id) > last_issued => {
                (Some("unknown_id"), Vec::new())
            }
            Resume::After(id) if id.saturating_add(1) < oldest_kept => {
                (Some("too_old"), Vec::new())
            }
            Resume::After(id) => (
                None,
                log.history.iter().filter(|e| e.seq > id).cloned().collect(),
            ),
        };
        Subscription {
            reset,
            replay,
            live,
            last_issued,
            closed: self.closed.clone(),
        }
    }

    /// Takes one of `slug`'s stream places.
    pub fn open_stream(self: &Arc<Self>, slug: &str) -> Result<StreamGuard, TooManyStreams> {
        let mut streams = self.streams.lock();
        let n = streams.entry(slug.to_string()).or_insert(0);
        if *n >= self.max_streams {
            return Err(TooManyStreams(self.max_streams));
        }
        *n += 1;
        Ok(StreamGuard {
            bus: self.clone(),
            slug: slug.to_string(),
        })
    }

    /// Ends every stream (front door shutdown: streams never end by themselves).
    pub fn close(&self) {
        self.closed.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(n: usize) -> EventBody {
        EventBody::Secrets {
            action: "put",
            count: n,
        }
    }

    #[test]
    fn resume_replays_exactly_the_missed_events() {
        let bus = EventBus::starting_at(100, 8, 4);
        for i in 0..5 {
            bus.publish("secrets.changed", Some("a"), secrets(i));
        }
        let sub = bus.subscribe(Resume::After(101));
        assert_eq!(sub.reset, None);
        let seqs: Vec<u64> = sub.replay.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [102, 103, 104]);
        assert!(bus.subscribe(Resume::After(104)).replay.is_empty());
    }

    #[test]
    fn foreign_old_and_garbage_ids_reset() {
        let bus = EventBus::starting_at(100, 3, 4);
        for i in 0..6 {
            bus.publish("secrets.changed", Some("a"), secrets(i));
        }
        // History holds 103..=105; 102 is the newest id that can still resume.
        assert_eq!(bus.subscribe(Resume::After(102)).reset, None);
        assert_eq!(bus.subscribe(Resume::After(101)).reset, Some("too_old"));
        assert_eq!(bus.subscribe(Resume::After(99)).reset, Some("unknown_id"));
        assert_eq!(bus.subscribe(Resume::After(106)).reset, Some("unknown_id"));
        assert_eq!(bus.subscribe(Resume::Invalid).reset, Some("invalid_id"));
        assert_eq!(Resume::from_header(Some(b"abc")), Resume::Invalid);
        assert_eq!(Resume::from_header(Some(b"7")), Resume::After(7));
    }

    #[test]
    fn a_slow_receiver_lags_instead_of_growing_memory() {
        let bus = EventBus::starting_at(0, 2, 4);
        let mut sub = bus.subscribe(Resume::Live);
        for i in 0..5 {
            bus.publish("secrets.changed", Some("a"), secrets(i));
        }
        assert!(matches!(
            sub.live.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }

    #[test]
    fn streams_are_capped_per_user_and_freed_on_drop() {
        let bus = Arc::new(EventBus::starting_at(0, 2, 2));
        let a1 = bus.open_stream("a").unwrap();
        let _a2 = bus.open_stream("a").unwrap();
        assert!(bus.open_stream("a").is_err());
        let _b = bus.open_stream("b").unwrap();
        drop(a1);
        assert!(bus.open_stream("a").is_ok());
    }
}
