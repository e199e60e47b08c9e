//! Reading the audit trail: `GET /audit` (a page, newest first) and `GET /audit/export`
//! (JSON lines, oldest first). An admin reads every line; a user reads the lines about
//! themself only (what they did, and what anyone did to their catalog, secrets or gateway).
//!
//! A query reads the retained files, up to `max_file_size × max_files` bytes, so at most
//! [`CONCURRENT_READS`](crate::audit::query::CONCURRENT_READS) run at once and the rest get
//! 429: a tenant cannot keep the disk busy by asking again and again.

use super::body::blocking;
use super::caller::Caller;
use super::page::{decode_cursor, encode_cursor, page_limit};
use crate::audit::chain::is_hash;
use crate::audit::{Filter, QueryError};
use crate::error::Error;
use crate::state::AppState;
use crate::time::{parse_rfc3339, rfc3339_utc};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::{IntoParams, ToSchema};

/// At most this many action names in one query.
const MAX_ACTIONS: usize = 20;

/// The filters both routes take.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Lines about this user (id, slug or `me`): their actions and changes to their objects.
    /// A user may only name themself (and gets only their own lines without it).
    pub user: Option<String>,
    /// Comma-separated action names (`secret.put`) or families (`catalog.*`).
    pub action: Option<String>,
    /// Lines at or after this instant (RFC 3339, or a date: its midnight UTC).
    pub since: Option<String>,
    /// Lines before this instant.
    pub until: Option<String>,
}

/// `GET /audit` adds the page.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditPageQuery {
    /// Lines per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page; absent for the first (newest) page.
    pub cursor: Option<String>,
}

/// One page of audit lines, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Audit lines as written: `prev`, `time`, `actor`, `action`, `target`, `outcome`, and
    /// where present `names`, `count`, `error` (see README, Audit log).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
    /// Pass as `?cursor=` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The lines the caller may read that the query selects.
fn filter_for(caller: &Caller, q: &AuditFilter) -> Result<Filter, Error> {
    let user =
        match (&q.user, caller.0.admin) {
            (None, true) => None,
            (None, false) => Some(caller.slug().to_string()),
            (Some(u), _) if caller.is_self(u) => Some(caller.slug().to_string()),
            (Some(u), true) => Some(caller.target_slug(u)),
            (Some(_), false) => return Err(Error::Forbidden(
                "you may only read the audit lines about yourself (leave out `user`, or use `me`)"
                    .into(),
            )),
        };
    let actions = match q.action.as_deref() {
        None | Some("") => Vec::new(),
        Some(list) => list
            .split(',')
            .map(check_action)
            .collect::<Result<_, _>>()?,
    };
    if actions.len() > MAX_ACTIONS {
        return Err(Error::BadRequest(format!(
            "action: at most {MAX_ACTIONS} names"
        )));
    }
    let bound = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|text| {
                parse_rfc3339(text).map(rfc3339_utc).ok_or_else(|| {
                    Error::BadRequest(format!(
                        "{name}: not an RFC 3339 time (2026-11-29T15:04:05Z) or a date (2026-11-29)"
                    ))
                })
            })
            .transpose()
    };
    Ok(Filter {
        user,
        actions,
        since: bound("since", &q.since)?,
        until: bound("until", &q.until)?,
    })
}

/// An action name or `family.*`: lower-case words joined by dots, as the log writes them.
fn check_action(a: &str) -> Result<String, Error> {
    let a = a.trim();
    let name = a.strip_suffix(".*").unwrap_or(a);
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .split('.')
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    if ok {
        Ok(a.to_string())
    } else {
        Err(Error::BadRequest(
            "action: comma-separated names such as `secret.put` or families such as `catalog.*`"
                .into(),
        ))
    }
}

/// Leave to read the files, or 429 while
/// [`CONCURRENT_READS`](crate::audit::query::CONCURRENT_READS) reads run.
fn read_permit(reads: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit, Error> {
    reads
        .clone()
        .try_acquire_owned()
        .map_err(|_| Error::RateLimited {
            retry_after: Duration::from_secs(1),
        })
}

/// The audit trail, newest first, a page at a time. Admins read every line (or one user's
/// with `user`); a user reads the lines about themself.
#[utoipa::path(get, path = "/audit", tag = "audit", operation_id = "query_audit",
    params(AuditFilter, AuditPageQuery),
    responses((status = 200, body = AuditPage), (status = 400), (status = 401), (status = 403), (status = 429)),
    security(("bearer" = [])))]
pub async fn query(
    State(s): State<AppState>,
    caller: Caller,
    Query(filter): Query<AuditFilter>,
    Query(page): Query<AuditPageQuery>,
) -> Result<Json<AuditPage>, Error> {
    let filter = filter_for(&caller, &filter)?;
    let limit = page_limit(page.limit)?;
    let after = page.cursor.as_deref().map(decode_cursor).transpose()?;
    if after.as_deref().is_some_and(|h| !is_hash(h)) {
        return Err(Error::BadRequest(
            "cursor: not one this API gave out; pass a page's next_cursor unchanged".into(),
        ));
    }
    let permit = read_permit(&s.services.audit_reads)?;
    let log = s.services.audit.clone();
    let page = blocking(move || {
        let _permit = permit;
        log.page(&filter, after.as_deref(), limit)
            .map_err(|e| match e {
                QueryError::CursorExpired => Error::BadRequest(e.to_string()),
                QueryError::Io(e) => Error::Internal(format!("reading the audit log: {e}")),
            })
    })
    .await?;
    Ok(Json(AuditPage {
        items: page.items,
        next_cursor: page.next.as_deref().map(encode_cursor),
    }))
}

/// Every selected audit line, oldest first, as written (`application/x-ndjson`, streamed):
/// the lines keep `prev`, so an export can be checked against the chain.
#[utoipa::path(get, path = "/audit/export", tag = "audit", operation_id = "export_audit",
    params(AuditFilter),
    responses((status = 200, description = "JSON lines, oldest first", content_type = "application/x-ndjson", body = String),
        (status = 400), (status = 401), (status = 403), (status = 429)),
    security(("bearer" = [])))]
pub async fn export(
    State(s): State<AppState>,
    caller: Caller,
    Query(filter): Query<AuditFilter>,
) -> Result<Response, Error> {
    let filter = filter_for(&caller, &filter)?;
    let permit = read_permit(&s.services.audit_reads)?;
    let log = s.services.audit.clone();
    // A few batches in flight: a slow reader holds the reading thread, not the log in memory.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let sent = log.export(&filter, |batch| {
            tx.blocking_send(Ok(Bytes::from(batch)))
                .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
        });
        if let Err(e) = sent {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!(error = %e, "audit export failed");
                // Ends the body with an error, so the client sees a cut export, not a short one.
                let _ = tx.blocking_send(Err(e));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_are_checked() {
        for ok in [
            "secret.put",
            "catalog.*",
            "catalog.base.put",
            "gateway.start",
        ] {
            assert_eq!(check_action(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "*",
            ".*",
            "Secret.put",
            "a..b",
            "a.b*",
            "a/b",
            "a.b.*.*",
            "é",
        ] {
            assert!(check_action(bad).is_err(), "{bad:?}");
        }
    }
}
