//! Every API change becomes one audit line, written (and fsync'd) before the response.

use super::body::blocking;
use crate::app::AppState;
use crate::audit::{Action, Actor, AuditEntry, Outcome, Target};
use crate::error::Error;
use http::StatusCode;

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

/// Appends the audit line for `result` and passes `result` on; a failed append fails the
/// request, because an unaudited change must not look like a clean success.
pub async fn record<T>(
    state: &AppState,
    actor: &str,
    action: Action,
    target: Target,
    result: Result<T, Error>,
) -> Result<T, Error> {
    let entry = AuditEntry::new(
        Actor::User(actor.to_string()),
        action,
        target,
        outcome(&result),
    );
    let log = state.services.audit.clone();
    blocking(move || {
        log.append(&entry)
            .map_err(|e| Error::Internal(format!("audit log append failed: {e}")))
    })
    .await?;
    result
}
