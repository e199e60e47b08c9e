//! Replicas (DESIGN.md §8): before a start makes anything, what the engine already has under
//! the user's name decides. The user's network is the lock: it is made first, carries the time
//! until which its maker may still be starting ([`LABEL_STARTING_UNTIL`]), and a second
//! network of the same name is refused (`network.rs`). So a replica that finds
//!
//! - a running gateway adopts it (token from its environment, health checked), as a front
//!   door restart would, and serves through it;
//! - a network whose start window is open, with no healthy gateway yet, waits and looks again;
//! - nothing, or only leftovers (an exited container, a network past its window, a running
//!   container that never became healthy in its window), starts one itself, removing those
//!   leftovers by id so nothing made since is touched.
//!
//! A start that still loses the race (the other network was made between the look and its own
//! create) comes back here and waits like the others. The whole is bounded by `spawn_timeout`
//! (`jobs.rs`).

use super::adopter::Rejected;
use super::failure::StartFailure;
use super::lifecycle::Inner;
use super::names::start_window_open;
use super::network::Leftovers;
use super::slot::{now_ms, Running};
use crate::runtime::ContainerState;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a waiting replica looks at the engine again.
const LOOK_AGAIN: Duration = Duration::from_millis(250);

/// What a start found on the engine.
pub(super) enum Claim {
    /// Another replica's gateway, adopted.
    Adopted(Running),
    /// Nobody else is starting one: start, after removing these.
    Free(Leftovers),
}

impl Inner {
    /// Waits for another replica's gateway of `slug` and adopts it, or says the start is ours.
    pub(super) async fn claim(
        self: &Arc<Self>,
        slug: &str,
        cancel: &CancellationToken,
    ) -> Result<Claim, StartFailure> {
        let name = self.naming.object_name(slug);
        let filter: Vec<(String, String)> = self.naming.labels(slug).into_iter().collect();
        loop {
            let network = self
                .rt
                .list_networks(&filter)
                .await?
                .into_iter()
                .find(|n| n.name == name);
            let window_open = network
                .as_ref()
                .is_some_and(|n| start_window_open(&n.labels, now_ms()));
            let container = self.rt.inspect_container(&name).await?;
            let leftovers = Leftovers {
                container: container.as_ref().map(|c| c.id.clone()),
                network: network.map(|n| n.id),
            };
            match container {
                Some(c) if c.state == ContainerState::Running => {
                    let ours = self.naming.owner(&c.name, &c.labels).as_deref() == Some(slug);
                    let adopted = match ours {
                        true => self.adopter.adopt(&c, None).await,
                        false => Err(Rejected::Unusable),
                    };
                    match adopted {
                        Ok(running) => {
                            tracing::info!(user = slug, container = %name, "adopted the gateway another replica started");
                            return Ok(Claim::Adopted(running));
                        }
                        // Perhaps still starting: wait while its window is open.
                        Err(Rejected::NotHealthy) if window_open => {}
                        Err(_) => return Ok(Claim::Free(leftovers)),
                    }
                }
                Some(c) if c.state == ContainerState::Exited => return Ok(Claim::Free(leftovers)),
                _ if window_open => {}
                _ => return Ok(Claim::Free(leftovers)),
            }
            tracing::debug!(
                user = slug,
                "another replica is starting this gateway; waiting for it"
            );
            tokio::select! {
                _ = cancel.cancelled() => return Err(StartFailure::cancelled()),
                // A little jitter, so two replicas that both lost a race do not meet again.
                _ = tokio::time::sleep(LOOK_AGAIN + Duration::from_millis(rand::random::<u64>() % 100)) => {}
            }
        }
    }
}
