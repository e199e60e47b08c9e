//! Reconciling the registry with the engine, at start-up and after every events reconnect:
//! running containers of this instance are adopted (idle clock from the state file),
//! half-made and exited ones removed, networks nobody uses removed, and ready gateways whose
//! container vanished while we were not listening marked crashed. Objects of other instances
//! are never touched; slots in the middle of a start or stop are left alone. Reading one
//! gateway back is [`super::adopter::Adopter`]'s.

use super::lifecycle::Inner;
use super::metrics::StartOutcome;
use super::names::LABEL_USER;
use super::slot::{now_ms, Effect, Event, Phase, Slot, StopReason};
use super::subnets::Subnet;
use crate::runtime::{ContainerInfo, ContainerState, RuntimeError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

impl Inner {
    /// One reconciliation pass.
    pub(super) async fn reconcile(self: &Arc<Self>) -> Result<(), RuntimeError> {
        let filter = self.naming.filter();
        let networks = self.rt.list_networks(&filter).await?;
        let subnet_of: HashMap<String, Subnet> = networks
            .iter()
            .filter_map(|n| Some((n.name.clone(), Subnet::parse(n.subnets.first()?)?)))
            .collect();
        // Networks another replica (or this one) is starting a gateway on: nothing of theirs
        // is a leftover yet (`claim.rs`).
        let now = now_ms();
        let starting: HashSet<String> = networks
            .iter()
            .filter(|n| super::names::start_window_open(&n.labels, now))
            .map(|n| n.name.clone())
            .collect();
        let containers = self.rt.list_containers(&filter).await?;
        let listed: HashSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
        // Saved activity of users without a container is of no further use.
        let users: HashSet<&str> = containers
            .iter()
            .filter_map(|c| c.labels.get(LABEL_USER).map(String::as_str))
            .collect();
        self.saved_activity
            .lock()
            .retain(|slug, _| users.contains(slug.as_str()));
        let mut keep_networks = HashSet::new();
        for c in &containers {
            // The helper this process is committing the init image from (`init.rs`); with
            // replicas, any: another replica may be making its image right now (one left by a
            // replica that died mid-way stays until `gateways stop-all`).
            let helper = c.labels.contains_key(super::names::LABEL_INIT_HELPER);
            if self.starter.init_image.is_own_helper(&c.labels) || (helper && self.peers.any()) {
                continue;
            }
            let Some(slug) = self.naming.owner(&c.name, &c.labels) else {
                tracing::info!(container = %c.name, "removing a managed container whose name does not match its labels");
                let _ = self.rt.remove_container(&c.id, Duration::ZERO).await;
                continue;
            };
            let slot = self.registry.slot(&slug);
            enum Act {
                Keep,
                Remove,
                Crashed,
                Adopt,
            }
            let act = slot.with_phase(|p| match p {
                Phase::Starting { .. } | Phase::Stopping { .. } => Act::Keep,
                Phase::Ready { running: r, .. } if r.container_id == c.id => {
                    if c.state == ContainerState::Running {
                        Act::Keep
                    } else {
                        Act::Crashed
                    }
                }
                // A second container for a user who has one: not ours to keep.
                Phase::Ready { .. } => Act::Remove,
                Phase::Stopped | Phase::Failed { .. } if c.state == ContainerState::Running => {
                    Act::Adopt
                }
                Phase::Stopped | Phase::Failed { .. } if starting.contains(&c.name) => Act::Keep,
                Phase::Stopped | Phase::Failed { .. } => Act::Remove,
            });
            match act {
                Act::Keep => {
                    keep_networks.insert(c.name.clone());
                }
                Act::Remove => {
                    tracing::info!(container = %c.name, state = ?c.state, "removing leftover gateway container");
                    let _ = self.rt.remove_container(&c.id, Duration::ZERO).await;
                }
                Act::Crashed => {
                    keep_networks.insert(c.name.clone());
                    self.begin_stop(&slot, StopReason::Crashed, false);
                }
                Act::Adopt => {
                    keep_networks.insert(c.name.clone());
                    let in_window = starting.contains(&c.name);
                    self.begin_adopt(&slot, c.clone(), subnet_of.get(&c.name).copied(), in_window);
                }
            }
        }
        // Ready gateways whose container is gone (events missed while disconnected).
        for slot in self.registry.all() {
            let gone = slot.with_phase(|p| {
                p.ready()
                    .is_some_and(|r| !listed.contains(r.container_id.as_str()))
            });
            if gone {
                tracing::warn!(user = %slot.slug, "gateway container disappeared");
                self.begin_stop(&slot, StopReason::Crashed, false);
            }
        }
        self.remove_orphan_servers().await;
        for n in networks {
            let in_flux = n
                .labels
                .get(LABEL_USER)
                .is_some_and(|slug| self.user_in_flux(slug));
            if keep_networks.contains(&n.name) || in_flux || starting.contains(&n.name) {
                if let Some(s) = subnet_of.get(&n.name) {
                    self.subnets.reserve(*s);
                }
            } else {
                tracing::info!(network = %n.name, "removing orphan gateway network");
                // By id: a start that begins meanwhile makes a new network of the same name.
                if let Err(e) =
                    super::servers::remove_network_with_servers(self.rt.as_ref(), &n.id).await
                {
                    tracing::warn!(network = %n.name, error = %e, "removing orphan network failed");
                }
            }
        }
        Ok(())
    }

    /// Whether `slug`'s gateway is starting, running or stopping: its objects are in use.
    fn user_in_flux(&self, slug: &str) -> bool {
        self.registry.get(slug).is_some_and(|s| {
            s.with_phase(|p| {
                matches!(
                    p,
                    Phase::Starting { .. } | Phase::Ready { .. } | Phase::Stopping { .. }
                )
            })
        })
    }

    /// Server containers (policed API, by label) of users whose gateway is not starting,
    /// running or stopping: what a crash or a killed front door left behind.
    async fn remove_orphan_servers(&self) {
        let filter = crate::dockerapi::scope::instance_servers_filter(&self.naming.instance);
        let Ok(servers) = self.rt.list_containers(&filter).await else {
            return;
        };
        for c in servers {
            let live = c
                .labels
                .get(LABEL_USER)
                .is_some_and(|slug| self.user_in_flux(slug));
            if !live {
                tracing::info!(container = %c.name, "removing orphan MCP server container");
                let _ = self.rt.remove_container(&c.id, Duration::ZERO).await;
            }
        }
    }

    /// Adopts a running container: the slot is `starting` while its health is checked, so
    /// requests wait on the adoption like on a start. One that is not healthy is removed,
    /// unless it is `in_window`: another replica's start still under way (`claim.rs`).
    fn begin_adopt(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        c: ContainerInfo,
        subnet: Option<Subnet>,
        in_window: bool,
    ) {
        let (tx, rx) = watch::channel(None);
        if !matches!(
            slot.apply(&self.metrics, Event::Adopt(rx)),
            Some(Effect::RunAdoption)
        ) {
            return;
        }
        let inner = self.clone();
        let slot = slot.clone();
        self.spawn(async move {
            let began = Instant::now();
            let adopted = inner.adopter.adopt(&c, subnet).await;
            match adopted {
                Ok(running) => {
                    let saved = inner.saved_activity.lock().remove(&slot.slug);
                    slot.set_last_active_ms(saved.unwrap_or_else(now_ms));
                    tracing::info!(user = %slot.slug, container = %c.name, address = %running.base, "adopted running gateway");
                    inner
                        .metrics
                        .start_finished(StartOutcome::Adopted, began.elapsed().as_secs_f64());
                    slot.apply(&inner.metrics, Event::Started(Arc::new(running)));
                    let _ = tx.send(Some(Ok(())));
                }
                Err(super::adopter::Rejected::NotHealthy) if in_window => {
                    tracing::info!(user = %slot.slug, container = %c.name, "gateway not healthy yet while another replica starts it; left to it");
                    slot.apply(&inner.metrics, Event::NotAdopted);
                    let _ = tx.send(Some(Ok(())));
                }
                Err(_) => {
                    tracing::info!(user = %slot.slug, container = %c.name, "gateway not adoptable; removing it");
                    inner
                        .remover
                        .leftovers(&slot.slug, &c.name, None, subnet)
                        .await;
                    slot.apply(&inner.metrics, Event::NotAdopted);
                    // Waiters loop and start a fresh one.
                    let _ = tx.send(Some(Ok(())));
                }
            }
        });
    }
}
