//! Per-user limit on audited writes: a token bucket per user slug. Every audited API action
//! (including refused ones, which are audited too) takes a token before anything happens, so
//! a user over the limit gets 429 and neither the data nor the log changes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::AuditConfig;

/// Buckets kept before full (idle) ones are swept out; keeps memory to the active users.
const SWEEP_ABOVE: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
struct Buckets {
    map: HashMap<String, Bucket>,
    /// Size at which the next sweep runs (doubles when a sweep frees little).
    sweep_at: usize,
}

/// The limiter shared by every API handler that audits.
#[derive(Debug)]
pub struct WriteLimiter {
    /// Tokens added per second.
    rate: f64,
    /// Bucket size.
    burst: f64,
    admin_exempt: bool,
    buckets: Mutex<Buckets>,
}

impl WriteLimiter {
    /// A limiter of `audit.user_rate` per minute with `audit.user_burst`.
    pub fn new(config: &AuditConfig) -> Self {
        WriteLimiter {
            rate: f64::from(config.user_rate.max(1)) / 60.0,
            burst: f64::from(config.user_burst.max(1)),
            admin_exempt: config.admin_exempt,
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                sweep_at: SWEEP_ABOVE,
            }),
        }
    }

    /// Takes one token for `slug`; `Err(wait)` when the bucket is empty, with how long until
    /// the next token.
    pub fn check(&self, slug: &str, admin: bool) -> Result<(), Duration> {
        if admin && self.admin_exempt {
            return Ok(());
        }
        self.check_at(slug, Instant::now())
    }

    fn check_at(&self, slug: &str, now: Instant) -> Result<(), Duration> {
        let mut b = self.buckets.lock();
        if b.map.len() >= b.sweep_at {
            self.sweep(&mut b, now);
        }
        let bucket = b.map.entry(slug.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    /// Drops buckets that have refilled: a new bucket starts full, so forgetting them
    /// changes nothing for their users.
    fn sweep(&self, b: &mut Buckets, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        b.map.retain(|_, v| {
            v.tokens + now.saturating_duration_since(v.at).as_secs_f64() * rate < burst
        });
        b.sweep_at = (b.map.len() * 2).max(SWEEP_ABOVE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, burst: u32, admin_exempt: bool) -> WriteLimiter {
        WriteLimiter::new(&AuditConfig {
            user_rate: rate,
            user_burst: burst,
            admin_exempt,
            ..AuditConfig::default()
        })
    }

    #[test]
    fn a_burst_then_the_rate_per_user() {
        let l = limiter(60, 3, true);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at("alice", t0).is_ok());
        }
        let wait = l.check_at("alice", t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(l.check_at("bob", t0).is_ok(), "buckets are per user");
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.check_at("alice", t1).is_ok(), "one token a second");
        assert!(l.check_at("alice", t1).is_err());
        // Refill stops at the burst.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(l.check_at("alice", t2).is_ok());
        }
        assert!(l.check_at("alice", t2).is_err());
    }

    #[test]
    fn admins_are_exempt_only_when_configured() {
        let exempt = limiter(1, 1, true);
        let limited = limiter(1, 1, false);
        for _ in 0..5 {
            assert!(exempt.check("root", true).is_ok());
        }
        assert!(limited.check("root", true).is_ok());
        assert!(limited.check("root", true).is_err());
        assert!(exempt.check("alice", false).is_ok());
        assert!(exempt.check("alice", false).is_err(), "users never are");
    }

    #[test]
    fn idle_buckets_are_swept_but_busy_ones_kept() {
        let l = limiter(60, 2, true);
        let t0 = Instant::now();
        l.check_at("busy", t0).unwrap();
        l.check_at("busy", t0).unwrap();
        for i in 0..SWEEP_ABOVE - 1 {
            l.check_at(&format!("u{i}"), t0).unwrap();
        }
        // 1.5 s later the single-use buckets are full again and go; "busy" is not and stays.
        let t1 = t0 + Duration::from_millis(1500);
        l.check_at("late", t1).unwrap();
        let mut kept: Vec<String> = l.buckets.lock().map.keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["busy", "late"]);
        assert!(l.check_at("busy", t1).is_ok(), "1.5 tokens left");
        assert!(
            l.check_at("busy", t1).is_err(),
            "its state survived the sweep"
        );
    }
}
