//! From a started container to a gateway that serves: its files handed to the init, then its
//! health probed until 2xx. A container that exits meanwhile fails the start at once (with its
//! last log lines, masked, for the operator) instead of at `spawn_timeout`.

use super::agent::GatewayAgent;
use super::deliver::DeliverError;
use super::failure::StartFailure;
use super::files::GatewayFile;
use super::metrics::StartOutcome;
use super::names::LABEL_USER;
use super::probe::probe_interval;
use crate::runtime::{ContainerState, Runtime};
use crate::secrets::SecretStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a starting container's state is checked while its health probe fails.
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// Pause before another delivery attempt while the init is not listening yet (it binds within
/// a millisecond or two of the start call's return).
const DELIVER_RETRY: Duration = Duration::from_millis(2);

/// What the readiness steps need.
pub(super) struct Readiness {
    pub rt: Arc<dyn Runtime>,
    pub agent: Arc<dyn GatewayAgent>,
    /// To mask the user's secrets in the log lines of a gateway that exited.
    pub secrets: Arc<SecretStore>,
}

impl Readiness {
    /// Hands the fresh container its catalog and secrets through the init (see `deliver.rs`),
    /// trying again while nothing listens yet.
    pub async fn deliver_files(
        &self,
        name: &str,
        base: Option<&http::uri::Authority>,
        token: &str,
        files: &[GatewayFile],
        cancel: &CancellationToken,
    ) -> Result<(), StartFailure> {
        let fail = |detail: String| StartFailure {
            outcome: StartOutcome::Exited,
            message: "the gateway's files could not be delivered; try again shortly".into(),
            detail,
        };
        let Some(base) = base else {
            // No address: the container is gone already.
            return Err(self
                .exited(name)
                .await?
                .unwrap_or_else(|| fail("the container has no address".into())));
        };
        let mut last_check = Instant::now();
        loop {
            if cancel.is_cancelled() {
                return Err(StartFailure::cancelled());
            }
            match self.agent.deliver(base, token, files).await {
                Ok(()) => return Ok(()),
                Err(DeliverError::Failed(detail)) => return Err(fail(detail)),
                Err(DeliverError::NotListening(e)) => {
                    tracing::trace!(container = name, error = %e, "init not listening yet");
                }
            }
            if last_check.elapsed() >= EXIT_CHECK_INTERVAL {
                last_check = Instant::now();
                if let Some(f) = self.exited(name).await? {
                    return Err(f);
                }
            }
            tokio::time::sleep(DELIVER_RETRY).await;
        }
    }

    /// Probes health at [`probe_interval`] until 2xx and returns the address.
    pub async fn wait_healthy(
        &self,
        name: &str,
        base: Option<http::uri::Authority>,
        token: &str,
        cancel: &CancellationToken,
    ) -> Result<http::uri::Authority, StartFailure> {
        let began = Instant::now();
        let mut last_check = Instant::now();
        loop {
            if cancel.is_cancelled() {
                return Err(StartFailure::cancelled());
            }
            if let Some(b) = &base {
                if self.agent.healthy(b, token).await {
                    return Ok(b.clone());
                }
            }
            if base.is_none() || last_check.elapsed() >= EXIT_CHECK_INTERVAL {
                last_check = Instant::now();
                if let Some(f) = self.exited(name).await? {
                    return Err(f);
                }
            }
            tokio::time::sleep(if base.is_some() {
                probe_interval(began.elapsed())
            } else {
                EXIT_CHECK_INTERVAL
            })
            .await;
        }
    }

    /// The failure to report when the container is no longer running, `None` while it runs.
    async fn exited(&self, name: &str) -> Result<Option<StartFailure>, StartFailure> {
        let Some(info) = self.rt.inspect_container(name).await? else {
            return Ok(Some(StartFailure {
                outcome: StartOutcome::Exited,
                message: "the gateway vanished while starting".into(),
                detail: "container not found".into(),
            }));
        };
        if info.state == ContainerState::Running {
            return Ok(None);
        }
        let tail = self.rt.logs(name, 20).await.unwrap_or_default();
        // Into the operator's log: masked like the logs API's answer.
        let slug = info.labels.get(LABEL_USER).map_or("", String::as_str);
        let tail = super::redact::redact_user(&self.secrets, slug, &tail).await;
        Ok(Some(StartFailure {
            outcome: StartOutcome::Exited,
            message: "the gateway exited while starting; an operator can read its log".into(),
            detail: format!(
                "state {:?}, exit code {:?}, oom {}; last log lines:\n{tail}",
                info.state, info.exit_code, info.oom_killed
            ),
        }))
    }
}
