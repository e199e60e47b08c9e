//! Reading the audit trail back: which lines a query selects, a page of them newest first
//! with a cursor that survives rotation, and the JSON-lines export oldest first.
//!
//! A cursor is the chain hash of the last line a page returned: lines never change once
//! written and each carries the hash of the one before, so the hash names one line wherever
//! rotation has moved it, and the next page starts right after it. When retention has
//! deleted that line the cursor is expired, and the caller starts again.

use std::borrow::Cow;
use std::io;
use std::ops::ControlFlow;

use serde::Deserialize;

use super::chain::line_hash;
use super::lines::walk;
use super::AuditLog;

/// Audit reads (`GET /api/v1/audit`) running at once, process-wide: each may read every
/// retained file, so the rest get 429 (`api::audit_query`).
pub const CONCURRENT_READS: usize = 2;

/// Which lines a query selects. Empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lines about this user (slug): what they did (`actor`), and what anyone did to their
    /// catalog, secrets or gateway (`target`).
    pub user: Option<String>,
    /// Action names (`secret.put`), or a family with a final `.*` (`catalog.*`).
    pub actions: Vec<String>,
    /// Lines at or after this time (the log's own format, see [`crate::time::rfc3339_utc`]).
    pub since: Option<String>,
    /// Lines before this time.
    pub until: Option<String>,
}

/// The fields a filter looks at; borrowed, so selecting costs no allocation per line.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    target: Cow<'a, str>,
}

impl Filter {
    /// Whether the line is selected. Lines that are not audit JSON (a torn write, lines from
    /// before the format) are never selected.
    pub fn selects(&self, line: &[u8]) -> bool {
        let Ok(f) = serde_json::from_slice::<Fields>(line) else {
            return false;
        };
        if self.since.as_deref().is_some_and(|s| *f.time < *s)
            || self.until.as_deref().is_some_and(|u| *f.time >= *u)
        {
            return false;
        }
        if !self.actions.is_empty() && !self.actions.iter().any(|a| action_matches(a, &f.action)) {
            return false;
        }
        match &self.user {
            None => true,
            Some(slug) => about_user(slug, &f.actor, &f.target),
        }
    }
}

fn action_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(family) => action
            .strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == action,
    }
}

/// `user:<slug>` acted, or the target is `user:<slug>/...` or `gateway:<slug>`. Exact
/// segments: `alice` never selects `alice2`'s lines.
fn about_user(slug: &str, actor: &str, target: &str) -> bool {
    let user_segment = |s: &str| {
        s.strip_prefix("user:")
            .and_then(|rest| rest.strip_prefix(slug))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let gateway = target
        .strip_prefix("gateway:")
        .is_some_and(|rest| rest == slug);
    actor.strip_prefix("user:") == Some(slug) || user_segment(target) || gateway
}

/// One page of lines, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    /// The selected lines as written (each a JSON object).
    pub items: Vec<serde_json::Value>,
    /// The chain hash of the last item when more lines are selected beyond it.
    pub next: Option<String>,
}

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The line a cursor names is no longer retained (or never was).
    #[error(
        "the cursor's line is no longer in the retained audit log; start again without a cursor"
    )]
    CursorExpired,
    /// The files could not be read.
    #[error("reading the audit log: {0}")]
    Io(#[from] io::Error),
}

impl AuditLog {
    /// Up to `limit` selected lines, newest first, after the line whose hash is `after`.
    pub fn page(
        &self,
        filter: &Filter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page, QueryError> {
        let files = self.open_files()?;
        let mut seeking = after;
        let mut items = Vec::new();
        let mut last_hash = None;
        let mut more = false;
        walk(&files, true, |line| {
            if let Some(cursor) = seeking {
                if line_hash(line) == cursor {
                    seeking = None;
                }
                return ControlFlow::Continue(());
            }
            if !filter.selects(line) {
                return ControlFlow::Continue(());
            }
            if items.len() == limit {
                more = true;
                return ControlFlow::Break(());
            }
            if let Ok(value) = serde_json::from_slice(line) {
                items.push(value);
                last_hash = Some(line_hash(line));
            }
            ControlFlow::Continue(())
        })?;
        if seeking.is_some() {
            return Err(QueryError::CursorExpired);
        }
        Ok(Page {
            items,
            next: if more { last_hash } else { None },
        })
    }

    /// Every selected line, oldest first, as written (with its newline), handed to `sink` in
    /// batches of about 64 KiB; an error from `sink` (the reader went away) ends the export.
    pub fn export(
        &self,
        filter: &Filter,
        mut sink: impl FnMut(Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        const BATCH: usize = 64 << 10;
        let files = self.open_files()?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut failed = None;
        walk(&files, false, |line| {
            if filter.selects(line) {
                batch.extend_from_slice(line);
                batch.push(b'\n');
                if batch.len() >= BATCH {
                    if let Err(e) = sink(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))) {
                        failed = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        if !batch.is_empty() {
            sink(batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Action, Actor, AuditEntry, Outcome, RotationPolicy, Target};
    use super::*;

    fn line(time: &str, actor: &str, action: &str, target: &str) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"prev": "0", "time": time, "actor": actor,
            "action": action, "target": target, "outcome": "success"}),
        )
        .unwrap()
    }

    #[test]
    fn a_user_filter_selects_their_actions_and_their_objects_only() {
        let f = Filter {
            user: Some("alice".into()),
            ..Filter::default()
        };
        let t = "2026-01-01T00:00:00.000Z";
        assert!(f.selects(&line(t, "user:alice", "secret.put", "user:alice/secrets")));
        assert!(f.selects(&line(
            t,
            "user:admin",
            "catalog.user.put",
            "user:alice/catalog"
        )));
        assert!(f.selects(&line(t, "system", "gateway.stop", "gateway:alice")));
        assert!(f.selects(&line(t, "user:alice", "catalog.base.put", "base:x")));
        for (actor, target) in [
            ("user:alice2", "user:alice2/catalog"),
            ("user:bob", "user:bob/secret:alice.key"),
            ("user:bob", "gateway:alice2"),
            ("user:bob", "base:alice"),
            ("system", "all-users"),
            ("user:xalice", "user:alicex/catalog"),
        ] {
            assert!(!f.selects(&line(t, actor, "x", target)), "{actor} {target}");
        }
        assert!(!f.selects(b"not json"));
        assert!(!f.selects(br#"{"time": 1}"#));
    }

    #[test]
    fn actions_and_times_select_exactly() {
        let f = Filter {
            actions: vec!["catalog.*".into(), "secret.put".into()],
            since: Some("2026-01-02T00:00:00.000Z".into()),
            until: Some("2026-01-03T00:00:00.000Z".into()),
            ..Filter::default()
        };
        let inside = "2026-01-02T12:00:00.000Z";
        assert!(f.selects(&line(inside, "cli", "catalog.base.put", "base:x")));
        assert!(f.selects(&line(inside, "cli", "secret.put", "user:a/secrets")));
        assert!(!f.selects(&line(inside, "cli", "secret.delete", "user:a/secrets")));
        assert!(!f.selects(&line(inside, "cli", "catalogs.x", "base:x")));
        assert!(!f.selects(&line(inside, "cli", "catalog", "base:x")));
        assert!(f.selects(&line("2026-01-02T00:00:00.000Z", "cli", "catalog.x", "t")));
        assert!(!f.selects(&line("2026-01-01T23:59:59.999Z", "cli", "catalog.x", "t")));
        assert!(!f.selects(&line("2026-01-03T00:00:00.000Z", "cli", "catalog.x", "t")));
    }

    fn log_with(n: usize, policy: RotationPolicy) -> (tempfile::TempDir, AuditLog) {
        let d = tempfile::tempdir().unwrap();
        let log = AuditLog::open(&d.path().join("audit.log"), policy).unwrap();
        for i in 0..n {
            let who = if i % 3 == 0 { "bob" } else { "alice" };
            log.append(&AuditEntry::new(
                Actor::User(who.into()),
                Action::GatewayStart,
                Target::gateway(&format!("{who}-{i}")),
                Outcome::Success,
            ))
            .unwrap();
        }
        (d, log)
    }

    fn targets(page: &Page) -> Vec<String> {
        page.items
            .iter()
            .map(|v| v["target"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn pages_walk_newest_first_across_rotations_and_new_lines() {
        let policy = RotationPolicy {
            max_file_size: 1024,
            max_files: 100,
        };
        let (_d, log) = log_with(60, policy);
        let alice = Filter {
            user: None,
            actions: vec!["gateway.start".into()],
            ..Filter::default()
        };
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = log.page(&alice, cursor.as_deref(), 7).unwrap();
            assert!(page.items.len() <= 7);
            seen.extend(targets(&page));
            pages += 1;
            if pages == 2 {
                // Lines written meanwhile (and the rotations they cause) are newer than the
                // cursor: the walk neither repeats nor skips a line.
                for i in 0..30 {
                    log.append(&AuditEntry::new(
                        Actor::System,
                        Action::GatewayStop,
                        Target::gateway(&format!("late-{i}")),
                        Outcome::Success,
                    ))
                    .unwrap();
                }
            }
            match page.next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        let want: Vec<String> = (0..60)
            .rev()
            .map(|i| format!("gateway:{}-{i}", if i % 3 == 0 { "bob" } else { "alice" }))
            .collect();
        assert_eq!(seen, want);
        assert_eq!(pages, 9);
    }

    #[test]
    fn a_cursor_into_deleted_lines_is_expired_and_a_forged_one_too() {
        let policy = RotationPolicy {
            max_file_size: 1024,
            max_files: 1,
        };
        let (_d, log) = log_with(5, policy);
        let first = log.page(&Filter::default(), None, 2).unwrap();
        let cursor = first.next.unwrap();
        for _ in 0..40 {
            log.append(&AuditEntry::new(
                Actor::System,
                Action::GatewayStop,
                Target::gateway("x"),
                Outcome::Success,
            ))
            .unwrap();
        }
        assert!(matches!(
            log.page(&Filter::default(), Some(&cursor), 2),
            Err(QueryError::CursorExpired)
        ));
        assert!(matches!(
            log.page(&Filter::default(), Some("../../etc/passwd"), 2),
            Err(QueryError::CursorExpired)
        ));
    }

    #[test]
    fn export_gives_the_selected_lines_as_written_oldest_first() {
        let (d, log) = log_with(10, RotationPolicy::default());
        let bob = Filter {
            user: Some("bob".into()),
            ..Filter::default()
        };
        let mut out = Vec::new();
        log.export(&bob, |chunk| {
            out.extend(chunk);
            Ok(())
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let on_disk = std::fs::read_to_string(d.path().join("audit.log")).unwrap();
        let want: Vec<&str> = on_disk.lines().filter(|l| l.contains("user:bob")).collect();
        assert_eq!(text.lines().collect::<Vec<_>>(), want);
        assert_eq!(want.len(), 4);
        assert!(text.ends_with('\n'));
        // A reader that went away stops the export with its error.
        let err = log
            .export(
                &Filter::default(),
                |_| Err(io::ErrorKind::BrokenPipe.into()),
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
