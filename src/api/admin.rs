//! Regenerating every user's merged catalog, as a background job with a status.

use super::audit::admit;
use super::body::blocking;
use super::caller::Caller;
use super::job::{RegenerateFailure, RegenerateStatus};
use crate::audit::{Action, Target};
use crate::catalog::regenerate_all;
use crate::error::Error;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

fn now() -> String {
    crate::time::rfc3339_utc(std::time::SystemTime::now())
}

/// Start regenerating every user's merged catalog (a running job is not started twice).
#[utoipa::path(post, path = "/admin/catalogs/regenerate", operation_id = "start_regenerate", tag = "admin",
    responses((status = 202, body = RegenerateStatus), (status = 401), (status = 403), (status = 429)),
    security(("bearer" = [])))]
pub async fn start(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<(StatusCode, Json<RegenerateStatus>), Error> {
    let permit = admit(&s, &caller)?;
    let result = caller.require_admin();
    permit
        .record(&s, Action::CatalogsRegenerate, Target::all_users(), result)
        .await?;
    let job = s.regenerate.clone();
    {
        let mut st = job.status.lock();
        if st.state == "running" {
            return Ok((StatusCode::ACCEPTED, Json(st.clone())));
        }
        *st = RegenerateStatus {
            state: "running".into(),
            started_at: Some(now()),
            ..Default::default()
        };
    }
    let services = s.services.clone();
    let job2 = job.clone();
    crate::server::workers::spawn_background(async move {
        let progress_job = job2.clone();
        let result = blocking(move || {
            Ok(regenerate_all(
                &services.catalogs,
                &services.cache,
                |done, total| {
                    let mut st = progress_job.status.lock();
                    st.done = done;
                    st.total = total;
                },
            )?)
        })
        .await;
        let mut st = job2.status.lock();
        st.finished_at = Some(now());
        match result {
            Ok(report) => {
                st.state = "done".into();
                st.total = report.users;
                st.changed = report.changed;
                st.unchanged = report.unchanged;
                st.failures = report
                    .failures
                    .into_iter()
                    .map(|(user, message)| RegenerateFailure { user, message })
                    .collect();
            }
            Err(e) => {
                st.state = "failed".into();
                st.error = Some(e.to_string());
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(job.snapshot())))
}

/// Status of the last regeneration job.
#[utoipa::path(get, path = "/admin/catalogs/regenerate/status", operation_id = "regenerate_status", tag = "admin",
    responses((status = 200, body = RegenerateStatus), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub async fn status(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<RegenerateStatus>, Error> {
    caller.require_admin()?;
    Ok(Json(s.regenerate.snapshot()))
}
