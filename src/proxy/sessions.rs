//! Binding MCP session ids to the user who first received them, so a session id leaked to
//! (or guessed by) another user is a 404 that never reaches any gateway.

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bindings unused for this long are forgotten (gateway sessions are long gone by then).
pub const SESSION_IDLE_TTL: Duration = Duration::from_secs(24 * 3600);

struct Binding {
    owner: Arc<str>,
    last_seen: Instant,
}

impl Binding {
    /// The gateway answered `slug` with this session again: fresh for its owner; another
    /// user's answer changes nothing but is worth a warning.
    fn seen_by(&mut self, slug: &str) {
        if &*self.owner == slug {
            self.last_seen = Instant::now();
        } else {
            tracing::warn!(
                user = slug,
                "gateway returned a session id already bound to another user; binding kept"
            );
        }
    }
}

/// Session id → owning user slug.
#[derive(Default)]
pub struct SessionBindings {
    map: DashMap<String, Binding>,
}

impl SessionBindings {
    /// True when the session is unknown (the gateway decides) or belongs to `slug`.
    pub fn may_use(&self, session: &str, slug: &str) -> bool {
        match self.map.get_mut(session) {
            None => true,
            Some(mut b) if &*b.owner == slug => {
                b.last_seen = Instant::now();
                true
            }
            Some(_) => false,
        }
    }

    /// Records that `slug` received `session` from its gateway; the first owner stays. True
    /// when the binding is new.
    pub fn bind(&self, session: &str, slug: &str) -> bool {
        // The common case (every request of a session) allocates no key.
        if let Some(mut b) = self.map.get_mut(session) {
            b.seen_by(slug);
            return false;
        }
        match self.map.entry(session.to_string()) {
            // Bound by a concurrent response meanwhile.
            Entry::Occupied(mut e) => {
                e.get_mut().seen_by(slug);
                false
            }
            Entry::Vacant(e) => {
                e.insert(Binding {
                    owner: Arc::from(slug),
                    last_seen: Instant::now(),
                });
                true
            }
        }
    }

    /// Forgets a session its owner ended; true when a binding was removed.
    pub fn unbind(&self, session: &str, slug: &str) -> bool {
        self.map
            .remove_if(session, |_, b| &*b.owner == slug)
            .is_some()
    }

    /// Drops bindings idle longer than `ttl`; returns how many are left.
    pub fn sweep(&self, ttl: Duration) -> usize {
        self.map.retain(|_, b| b.last_seen.elapsed() < ttl);
        self.map.len()
    }

    /// Number of bound sessions.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no session is bound.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_owner_wins_and_others_are_refused() {
        let s = SessionBindings::default();
        assert!(s.may_use("sess-1", "bob"), "unknown sessions pass");
        s.bind("sess-1", "alice");
        s.bind("sess-1", "bob");
        assert!(s.may_use("sess-1", "alice"));
        assert!(!s.may_use("sess-1", "bob"));
        s.unbind("sess-1", "bob");
        assert!(!s.may_use("sess-1", "bob"), "only the owner ends a binding");
        s.unbind("sess-1", "alice");
        assert!(s.is_empty());
    }

    #[test]
    fn sweep_drops_idle_bindings() {
        let s = SessionBindings::default();
        s.bind("a", "alice");
        assert_eq!(s.sweep(Duration::from_secs(3600)), 1);
        assert_eq!(s.sweep(Duration::ZERO), 0);
    }
}
