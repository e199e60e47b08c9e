//! Every API change becomes one audit line, written (and fsync'd) before the response.
//!
//! A handler first takes a [`Permit`] (the caller's rate limit, checked before anything is
//! read or changed) and spends it on exactly one line: the only way to write an audit line
//! from the API is through a permit, so no audited route can skip the limit, and a caller
//! over it gets 429 + `Retry-After` with nothing changed and nothing written.

use super::body::blocking;
use super::caller::Caller;
use crate::app::AppState;
use crate::audit::{Action, Actor, AuditEntry, Outcome, Target};
use crate::error::Error;
use http::StatusCode;
use std::time::Duration;

fn outcome<T>(result: &Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(e) => match e.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Outcome::Denied,
            StatusCode::NOT_FOUND => Outcome::Failed("not_found"),
            StatusCode::PAYLOAD_TOO_LARGE => Outcome::Failed("too_large"),
            s if s.is_client_error() => Outcome::Failed("invalid"),
            _ => Outcome::Failed("error"),
        },
    }
}

/// Leave to write one audit line for the caller.
#[must_use = "a permit is spent on the audit line of the change it admitted"]
pub struct Permit {
    actor: String,
}

/// Takes one token from the caller's bucket; over the limit, a 429 whose `Retry-After` is
/// when the next token arrives (rounded up, so a client that waits succeeds).
pub fn admit(state: &AppState, caller: &Caller) -> Result<Permit, Error> {
    state
        .services
        .audit_limiter
        .check(caller.slug(), caller.0.admin)
        .map_err(|wait| Error::RateLimited {
            retry_after: Duration::from_secs(wait.as_secs_f64().ceil() as u64),
        })?;
    Ok(Permit {
        actor: caller.slug().to_string(),
    })
}

impl Permit {
    /// Appends the audit line for `result` and passes `result` on; a failed append fails
    /// the request, because an unaudited change must not look like a clean success.
    pub async fn record<T>(
        self,
        state: &AppState,
        action: Action,
        target: Target,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let entry = AuditEntry::new(Actor::User(self.actor), action, target, outcome(&result));
        append(state, &entry).await?;
        publish(state, &entry);
        result
    }

    /// [`Permit::record`] for a change of many secrets at once: one line with their names
    /// (bounded) and count, however many there were.
    pub async fn record_secrets<T>(
        self,
        state: &AppState,
        action: Action,
        target: Target,
        names: &[String],
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let mut entry = AuditEntry::new(Actor::User(self.actor), action, target, outcome(&result));
        // No names when the request failed before they were known (refused, unparsable).
        if !names.is_empty() {
            entry = entry.with_secret_names(names.iter().map(String::as_str));
        }
        append(state, &entry).await?;
        publish(state, &entry);
        result
    }
}

/// The change's event for the live stream (only a success publishes one), after its audit
/// line is on disk.
fn publish(state: &AppState, entry: &AuditEntry) {
    crate::events::publish_change(
        &state.services.events,
        entry.action,
        entry.target.subject(),
        entry.outcome,
        entry.count.unwrap_or(1),
    );
}

async fn append(state: &AppState, entry: &AuditEntry) -> Result<(), Error> {
    let (log, entry) = (state.services.audit.clone(), entry.clone());
    blocking(move || {
        log.append(&entry)
            .map_err(|e| Error::Internal(format!("audit log append failed: {e}")))
    })
    .await
}
