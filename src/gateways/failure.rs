//! Why a start failed: the words the client gets, the detail the operator's log gets, and the
//! outcome label of the start-duration metric.

use super::metrics::StartOutcome;
use super::timing::RETRY_UNAVAILABLE;
use super::GatewayError;
use crate::runtime::RuntimeError;

/// The detail of a start that lost the name to another replica.
const LOST_RACE: &str = "another front door replica is starting this gateway";

/// A failed start.
#[derive(Debug)]
pub(super) struct StartFailure {
    pub outcome: StartOutcome,
    pub message: String,
    pub detail: String,
}

impl StartFailure {
    /// The engine refused a call or could not be reached.
    pub fn engine(e: RuntimeError) -> Self {
        let message = if e.is_unreachable() {
            "the gateway runtime (Docker) is not reachable; try again shortly".to_string()
        } else {
            "the gateway could not be started; try again shortly".to_string()
        };
        Self {
            outcome: StartOutcome::Engine,
            message,
            detail: e.to_string(),
        }
    }

    /// `spawn_timeout` passed while a step waited.
    pub fn cancelled() -> Self {
        Self {
            outcome: StartOutcome::Timeout,
            message: "the gateway start was cut off".into(),
            detail: "spawn_timeout passed".into(),
        }
    }

    /// Another replica made the user's network first: its gateway is waited for and adopted
    /// (`claim.rs`) instead.
    pub fn lost_race() -> Self {
        Self {
            outcome: StartOutcome::Engine,
            message: "the gateway could not be started; try again shortly".into(),
            detail: LOST_RACE.into(),
        }
    }

    /// True for [`Self::lost_race`].
    pub fn is_lost_race(&self) -> bool {
        self.detail == LOST_RACE
    }

    /// What every waiter of the start gets.
    pub fn to_error(&self) -> GatewayError {
        GatewayError::Unavailable {
            message: self.message.clone(),
            retry_after: RETRY_UNAVAILABLE,
        }
    }
}

impl From<RuntimeError> for StartFailure {
    fn from(e: RuntimeError) -> Self {
        Self::engine(e)
    }
}
