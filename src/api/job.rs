//! The state of the one catalog regeneration job (`api::admin` starts it and reports it); kept
//! apart from the handlers so the app state can hold it without importing them.

use parking_lot::Mutex;
use serde::Serialize;
use utoipa::ToSchema;

/// One user whose regeneration failed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegenerateFailure {
    pub user: String,
    pub message: String,
}

/// Where the regeneration job is.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RegenerateStatus {
    /// `idle`, `running`, `done` or `failed`.
    pub state: String,
    pub done: usize,
    pub total: usize,
    pub changed: usize,
    pub unchanged: usize,
    pub failures: Vec<RegenerateFailure>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the whole job failed, when it did.
    pub error: Option<String>,
}

/// The one regeneration job of this process.
#[derive(Default)]
pub struct RegenerateJob {
    pub(super) status: Mutex<RegenerateStatus>,
}

impl RegenerateJob {
    pub(super) fn snapshot(&self) -> RegenerateStatus {
        let s = self.status.lock().clone();
        if s.state.is_empty() {
            RegenerateStatus {
                state: "idle".into(),
                ..s
            }
        } else {
            s
        }
    }
}
