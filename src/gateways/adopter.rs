//! Reading a running gateway back from the engine, as a type that holds only what that
//! needs: its token, address and catalog hash from the container, its policed Docker API
//! served again, and its health checked. Which containers to adopt is the reconcile's choice
//! ([`super::adopt`]).

use super::agent::GatewayAgent;
use super::names::{Naming, LABEL_CATALOG_HASH, LABEL_USER, TOKEN_ENV};
use super::prepare::Preparer;
use super::slot::Running;
use super::subnets::Subnet;
use crate::config::{DockerConfig, Reach};
use crate::dockerapi::GatewayApis;
use crate::runtime::{ContainerInfo, ContainerState, Runtime};
use crate::storage::DataLayout;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How long an adopted gateway gets to answer its health check.
const ADOPT_PROBE: Duration = Duration::from_secs(3);

/// What adopting a gateway needs.
pub(super) struct Adopter {
    pub rt: Arc<dyn Runtime>,
    pub docker: DockerConfig,
    /// Where the owner claims and merged catalogs are.
    pub layout: DataLayout,
    pub apis: Option<GatewayApis>,
    pub naming: Naming,
    pub agent: Arc<dyn GatewayAgent>,
    pub preparer: Preparer,
}

impl Adopter {
    /// Reads token, address and catalog hash back from the container and checks its health.
    pub async fn adopt(
        &self,
        c: &ContainerInfo,
        subnet: Option<Subnet>,
    ) -> Result<Running, Rejected> {
        let running = self.read_back(c, subnet).await.ok_or(Rejected::Unusable)?;
        let token = running.1;
        let deadline = Instant::now() + ADOPT_PROBE;
        while !self.agent.healthy(&running.0.base, &token).await {
            if Instant::now() > deadline {
                return Err(Rejected::NotHealthy);
            }
            tokio::time::sleep(super::probe::PROBE_INTERVAL).await;
        }
        Ok(running.0)
    }

    /// The gateway as the container tells it, and its token; `None` when it is not one to
    /// serve through (not running, no token or address, older than its owner claim).
    async fn read_back(
        &self,
        c: &ContainerInfo,
        subnet: Option<Subnet>,
    ) -> Option<(Running, String)> {
        let info = self.rt.inspect_container(&c.id).await.ok()??;
        if info.state != ContainerState::Running {
            return None;
        }
        // A gateway started before its user directory was claimed (by a front door of the old
        // slug scheme) may hold another id's catalog and secrets under this slug.
        let slug = c.labels.get(LABEL_USER)?;
        let started = info.started_at?;
        if !crate::owners::claimed_before(&self.layout, slug, started) {
            tracing::info!(user = %slug, container = %c.name, "gateway predates its owner claim; not adopted");
            return None;
        }
        let prefix = format!("{TOKEN_ENV}=");
        let token = info.env.iter().find_map(|e| e.strip_prefix(&prefix))?;
        let d = &self.docker;
        let mut joined = None;
        let addr = match d.reach {
            Reach::Loopback => format!("127.0.0.1:{}", info.loopback_port?),
            Reach::Bridge => {
                if let Some(own) = self.rt.own_container().await {
                    self.rt.connect_network(&c.name, &own).await.ok()?;
                    joined = Some(own);
                }
                format!("{}:{}", info.addresses.get(&c.name)?, d.port)
            }
        };
        let base: http::uri::Authority = addr.parse().ok()?;
        if self.apis.is_some() && !self.serve_api(slug, &c.name).await {
            return None;
        }
        let running = Running {
            container_id: info.id.clone(),
            container_name: c.name.clone(),
            network: c.name.clone(),
            subnet,
            base,
            authorization: super::bearer(token),
            catalog_hash: info
                .labels
                .get(LABEL_CATALOG_HASH)
                .cloned()
                .unwrap_or_default(),
            started_at: info.started_at.unwrap_or_else(SystemTime::now),
            joined,
            // Not known after a restart: the next start checks again.
            unavailable: Vec::new(),
        };
        Some((running, token.to_string()))
    }
}

impl Adopter {
    /// Serves the policed Docker API of `slug`'s gateway `name` again, in the same directory
    /// its mount shows, for the images of the catalog it was started with (the teams its
    /// merged.yaml records), unless another replica answers on it already. False when it
    /// could not be served.
    pub async fn serve_api(&self, slug: &str, name: &str) -> bool {
        let Some(apis) = &self.apis else {
            return true;
        };
        let merged = crate::storage::UserFile::Merged;
        let Ok(path) = self.layout.user_file(slug, merged) else {
            return false;
        };
        let teams = crate::catalog::regen::read_merged_header(&path)
            .ok()
            .flatten()
            .map(|(_, teams)| teams)
            .unwrap_or_default();
        let Some(images) = self.preparer.images(slug, teams).await else {
            return false;
        };
        let scope = crate::dockerapi::Scope::new(slug, &self.naming.instance, name, images);
        match apis.open_unless_served(scope) {
            Ok(true) => true,
            Ok(false) => {
                tracing::debug!(user = %slug, "another replica serves this gateway's Docker API");
                true
            }
            Err(e) => {
                tracing::warn!(user = %slug, error = %e, "serving the gateway's Docker API failed");
                false
            }
        }
    }
}

/// Why a container was not adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejected {
    /// Not one to serve through (see [`Adopter::read_back`]).
    Unusable,
    /// It did not answer its health check in time: perhaps still starting (another replica's).
    NotHealthy,
}
