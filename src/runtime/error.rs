//! Runtime errors: which engine operation failed, and a kind the lifecycle can act on.

use std::fmt;

/// What went wrong, coarsely: enough to pick a reaction (wait, retry, give up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeErrorKind {
    /// The engine cannot be reached (no socket, connection refused, version handshake failed).
    Unreachable,
    /// The engine did not answer in time.
    Timeout,
    /// The object does not exist.
    NotFound,
    /// The name is taken (another start, or a leftover).
    Conflict,
    /// A subnet overlaps an existing network.
    SubnetTaken,
    /// What was asked is already so, or under way: a container connected to a network it is
    /// on, disconnected from one it is not on, a removal already in progress.
    AlreadyDone,
    /// The image is not present and could not be pulled.
    Image,
    /// Any other refusal by the engine.
    Api,
}

/// One failed engine operation.
#[derive(Debug, Clone, thiserror::Error)]
pub struct RuntimeError {
    /// The operation, e.g. `create_container` (also the metric label).
    pub op: &'static str,
    pub kind: RuntimeErrorKind,
    /// The engine's own words (for logs; never sent to a client as is).
    pub message: String,
}

impl RuntimeError {
    /// Builds an error.
    pub fn new(op: &'static str, kind: RuntimeErrorKind, message: impl Into<String>) -> Self {
        Self {
            op,
            kind,
            message: message.into(),
        }
    }

    /// True when the engine could not be reached or did not answer.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.kind,
            RuntimeErrorKind::Unreachable | RuntimeErrorKind::Timeout
        )
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            RuntimeErrorKind::Unreachable => "engine unreachable",
            RuntimeErrorKind::Timeout => "timed out",
            RuntimeErrorKind::NotFound => "not found",
            RuntimeErrorKind::Conflict => "name in use",
            RuntimeErrorKind::SubnetTaken => "subnet in use",
            RuntimeErrorKind::AlreadyDone => "already done",
            RuntimeErrorKind::Image => "image unavailable",
            RuntimeErrorKind::Api => "refused",
        };
        write!(f, "{} {kind}: {}", self.op, self.message)
    }
}
