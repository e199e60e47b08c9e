//! The audit log: one JSON line per change, on disk before the change is acknowledged.
//!
//! An entry is built only from closed types (actor, action, target, outcome) and names that
//! passed validation, so there is no field a secret value could travel in. Lines form a hash
//! chain ([`chain`]), the file rotates by size ([`log`]), `audit verify` walks the chain
//! ([`verify`]), and each user's audited writes are rate limited ([`limit`]) so no tenant can
//! flood the log or push everyone else's history out of it.

pub mod chain;
pub mod limit;
mod lines;
mod log;
pub mod query;
mod retention;
pub mod verify;

use crate::time::rfc3339_utc;
pub use limit::WriteLimiter;
pub use log::{AuditError, AuditLog, RotationPolicy};
pub use query::{Filter, Page, QueryError};
pub use retention::spawn_retention;
pub use verify::{verify, verify_with_head, Anchor, VerifyError, VerifyReport};

use std::fmt;
use std::time::SystemTime;

use serde::Serialize;

use crate::catalog::check_secret_name;
use crate::storage::{validate_name, NameKind};

/// Who made the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// An authenticated user, by slug.
    User(String),
    /// The front door itself (regeneration, idle stops).
    System,
    /// A local CLI command (`secrets rotate`).
    Cli,
}

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Action {
    /// Base catalog created or replaced.
    #[serde(rename = "catalog.base.put")]
    BaseCatalogPut,
    /// Base catalog deleted.
    #[serde(rename = "catalog.base.delete")]
    BaseCatalogDelete,
    /// Team catalog created or replaced.
    #[serde(rename = "catalog.team.put")]
    TeamCatalogPut,
    /// Team catalog deleted.
    #[serde(rename = "catalog.team.delete")]
    TeamCatalogDelete,
    /// A user's custom catalog and/or overrides replaced.
    #[serde(rename = "catalog.user.put")]
    UserCatalogPut,
    /// Servers of a user enabled or disabled in bulk (one change of their overrides).
    #[serde(rename = "catalog.user.servers")]
    UserServers,
    /// A user's configuration (custom catalog + overrides) imported.
    #[serde(rename = "catalog.user.import")]
    UserConfigImport,
    /// Merged catalogs regenerated.
    #[serde(rename = "catalog.regenerate")]
    CatalogsRegenerate,
    /// Secret stored.
    #[serde(rename = "secret.put")]
    SecretPut,
    /// Secret deleted.
    #[serde(rename = "secret.delete")]
    SecretDelete,
    /// All secrets re-sealed under a new key.
    #[serde(rename = "secrets.rotate")]
    SecretsRotate,
    /// Gateway started.
    #[serde(rename = "gateway.start")]
    GatewayStart,
    /// Gateway stopped.
    #[serde(rename = "gateway.stop")]
    GatewayStop,
}

/// What the action was applied to. Built through constructors that keep only valid names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target(String, Subject);

/// The object a [`Target`] names, as a type (the event stream reads it; names are the
/// validated ones, or the placeholder for a name that failed validation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A base catalog, by name.
    Base(String),
    /// A team catalog, by team.
    Team(String),
    /// Something of one user (catalog, secrets, gateway), by slug.
    User(String),
    /// Every user at once.
    AllUsers,
}

/// Placeholder for a name that failed validation (the raw text is not logged).
const INVALID: &str = "<invalid-name>";

fn checked(kind: NameKind, name: &str) -> &str {
    if validate_name(kind, name).is_ok() {
        name
    } else {
        INVALID
    }
}

impl Target {
    /// `base:<name>`
    pub fn base_catalog(name: &str) -> Self {
        let name = checked(NameKind::BaseCatalog, name);
        Target(format!("base:{name}"), Subject::Base(name.to_string()))
    }
    /// `team:<team>`
    pub fn team_catalog(team: &str) -> Self {
        let team = checked(NameKind::Team, team);
        Target(format!("team:{team}"), Subject::Team(team.to_string()))
    }
    /// `user:<slug>/catalog`
    pub fn user_catalog(slug: &str) -> Self {
        let slug = checked(NameKind::UserSlug, slug);
        Target(
            format!("user:{slug}/catalog"),
            Subject::User(slug.to_string()),
        )
    }
    /// `user:<slug>/secret:<name>`
    pub fn secret(slug: &str, name: &str) -> Self {
        let slug = checked(NameKind::UserSlug, slug);
        Target(
            format!("user:{slug}/secret:{}", checked_secret(name)),
            Subject::User(slug.to_string()),
        )
    }
    /// `user:<slug>/secrets`: several secrets at once (the names go in the entry's `names`).
    pub fn secrets(slug: &str) -> Self {
        let slug = checked(NameKind::UserSlug, slug);
        Target(
            format!("user:{slug}/secrets"),
            Subject::User(slug.to_string()),
        )
    }
    /// `gateway:<slug>`
    pub fn gateway(slug: &str) -> Self {
        let slug = checked(NameKind::UserSlug, slug);
        Target(format!("gateway:{slug}"), Subject::User(slug.to_string()))
    }
    /// `all-users`
    pub fn all_users() -> Self {
        Target("all-users".into(), Subject::AllUsers)
    }

    /// The object, as a type.
    pub fn subject(&self) -> &Subject {
        &self.1
    }
}

fn checked_secret(name: &str) -> &str {
    if check_secret_name(name).is_ok() {
        name
    } else {
        INVALID
    }
}

/// At most this many names are listed in one line; `count` has the full number. A bulk
/// change is one line of bounded size, however many names the request carried.
pub const MAX_LISTED_NAMES: usize = 20;

/// How it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused by authorization.
    Denied,
    /// Failed; the code is a fixed string (`invalid`, `not_found`, `io`...), never free text.
    Failed(&'static str),
}

/// One audit record.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    /// When (set by [`AuditEntry::new`]).
    pub time: SystemTime,
    /// Who.
    pub actor: Actor,
    /// What.
    pub action: Action,
    /// On what.
    pub target: Target,
    /// With which result.
    pub outcome: Outcome,
    /// For a bulk change: the first [`MAX_LISTED_NAMES`] names, each validated.
    pub names: Vec<String>,
    /// For a bulk change: how many names it had in all.
    pub count: Option<usize>,
}

impl AuditEntry {
    /// An entry stamped with the current time.
    pub fn new(actor: Actor, action: Action, target: Target, outcome: Outcome) -> Self {
        AuditEntry {
            time: SystemTime::now(),
            actor,
            action,
            target,
            outcome,
            names: Vec::new(),
            count: None,
        }
    }

    /// Lists the secret names of a bulk change: at most [`MAX_LISTED_NAMES`] (a name that
    /// fails validation shows as a placeholder), and their total in `count`.
    pub fn with_secret_names<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut count = 0;
        for name in names {
            if count < MAX_LISTED_NAMES {
                self.names.push(checked_secret(name).to_string());
            }
            count += 1;
        }
        self.count = Some(count);
        self
    }

    /// The JSON line (without newline) that records this entry after the line hashing to `prev`.
    pub fn encode(&self, prev: &str) -> serde_json::Result<Vec<u8>> {
        let (outcome, error) = match self.outcome {
            Outcome::Success => ("success", None),
            Outcome::Denied => ("denied", None),
            Outcome::Failed(code) => ("failed", Some(code)),
        };
        let line = Line {
            prev,
            time: rfc3339_utc(self.time),
            actor: self.actor.to_string(),
            action: self.action,
            target: &self.target.0,
            names: &self.names,
            count: self.count,
            outcome,
            error,
        };
        serde_json::to_vec(&line)
    }
}

#[derive(Serialize)]
struct Line<'a> {
    /// The chain link: hash of the line before (see [`chain`]).
    prev: &'a str,
    time: String,
    actor: String,
    action: Action,
    target: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    names: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(slug) => write!(f, "user:{}", checked(NameKind::UserSlug, slug)),
            Actor::System => f.write_str("system"),
            Actor::Cli => f.write_str("cli"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn writes_parseable_lines_and_drops_invalid_names() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit/audit.log");
        let log = AuditLog::open(&path, RotationPolicy::default()).unwrap();
        log.append(&AuditEntry::new(
            Actor::User("alice".into()),
            Action::SecretPut,
            Target::secret("alice", "github.token"),
            Outcome::Success,
        ))
        .unwrap();
        log.append(&AuditEntry::new(
            Actor::User("Mallory Evil".into()),
            Action::SecretPut,
            Target::secret("alice", "ghp_leaked_value_in_name"),
            Outcome::Failed("invalid"),
        ))
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["actor"], "user:alice");
        assert_eq!(lines[0]["action"], "secret.put");
        assert_eq!(lines[0]["target"], "user:alice/secret:github.token");
        assert_eq!(lines[0]["outcome"], "success");
        assert!(lines[0].get("error").is_none());
        assert_eq!(lines[1]["error"], "invalid");
        assert_eq!(lines[0]["prev"], chain::GENESIS);
        let first = text.lines().next().unwrap();
        assert_eq!(lines[1]["prev"], chain::line_hash(first.as_bytes()));
        assert!(
            !text.contains("ghp_leaked") && !text.contains("Mallory"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn concurrent_appends_never_interleave() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("audit.log");
        let log = Arc::new(AuditLog::open(&path, RotationPolicy::default()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let e = AuditEntry::new(
                            Actor::System,
                            Action::GatewayStart,
                            Target::gateway(&format!("user-{i}")),
                            Outcome::Success,
                        );
                        log.append(&e).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 200);
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["action"], "gateway.start");
        }
        let report = verify(&path).unwrap();
        assert_eq!(report.lines, 200, "the chain holds under concurrency");
    }

    #[test]
    fn a_bulk_change_lists_a_bounded_number_of_checked_names() {
        let mut names: Vec<String> = (0..999).map(|i| format!("srv{i}.key")).collect();
        names[3] = "x.ghp_VALUE pasted\n{\"forged\":1}".into();
        let entry = AuditEntry::new(
            Actor::User("alice".into()),
            Action::SecretPut,
            Target::secrets("alice"),
            Outcome::Success,
        )
        .with_secret_names(names.iter().map(String::as_str));
        let line = String::from_utf8(entry.encode(chain::GENESIS).unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["target"], "user:alice/secrets");
        assert_eq!(v["count"], 999);
        assert_eq!(v["names"].as_array().unwrap().len(), MAX_LISTED_NAMES);
        assert_eq!(v["names"][0], "srv0.key");
        assert_eq!(v["names"][3], INVALID);
        assert!(
            !line.contains("ghp_VALUE") && !line.contains("forged"),
            "{line}"
        );
        assert!(line.len() < 1024, "one bounded line: {} bytes", line.len());
    }
}
