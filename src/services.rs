//! The stateful services behind the API and the lifecycle: catalog store and merge cache,
//! sealed secrets, audit log. Opened once at start-up; a wrong master key stops start-up
//! here, before anything is written.

use crate::audit::{AuditLog, RotationPolicy, WriteLimiter};
use crate::catalog::{CatalogCache, CatalogMetrics, CatalogPolicy, CatalogStore, DataLayout};
use crate::config::Config;
use crate::owners::Owners;
use crate::secrets::{verify_keyring, KeyRing, SecretStore};
use anyhow::Context;
use std::sync::Arc;

/// The audit log this front door writes: `audit/audit.log`, or with `replicas.id`
/// `audit/<id>/audit.log`, each replica its own hash chain (one writer per file).
pub fn audit_log_path(raw: &crate::config::RawConfig) -> std::path::PathBuf {
    let layout = DataLayout::new(&raw.data_dir);
    match &raw.replicas.id {
        Some(id) => layout.audit_dir().join(id).join("audit.log"),
        None => layout.audit_log(),
    }
}

/// Shared handles to everything on disk.
#[derive(Clone)]
pub struct Services {
    pub layout: DataLayout,
    pub catalogs: Arc<CatalogStore>,
    pub cache: Arc<CatalogCache>,
    pub secrets: Arc<SecretStore>,
    pub audit: Arc<AuditLog>,
    /// Per-user limit on audited API writes (`audit.user_rate`).
    pub audit_limiter: Arc<WriteLimiter>,
    /// Audit reads (`GET /api/v1/audit`) running at once: each may read every retained file.
    pub audit_reads: Arc<tokio::sync::Semaphore>,
    pub catalog_metrics: Arc<CatalogMetrics>,
    /// Which user id each user directory belongs to (claimed before it is served).
    pub owners: Arc<Owners>,
    /// Live events (`GET /api/v1/events`).
    pub events: Arc<crate::events::EventBus>,
}

impl Services {
    /// Creates (and seeds) the data dir on first start, loads the key ring and checks that it
    /// opens the secrets already stored.
    pub fn open(config: &Config) -> anyhow::Result<Self> {
        let catalog_metrics = Arc::new(CatalogMetrics::default());
        let layout = DataLayout::new(&config.data_dir);
        let catalogs = CatalogStore::open(layout.clone(), catalog_metrics.clone())
            .with_context(|| format!("opening data_dir {}", config.data_dir.display()))?
            .with_policy(Arc::new(CatalogPolicy::from_config(config)));
        let keyring = KeyRing::load(
            config.secrets.master_key_env.as_deref(),
            config.secrets.master_key_file.as_deref(),
        )
        .context("loading the secrets master key (secrets.master_key_env / master_key_file)")?;
        verify_keyring(&config.data_dir, &keyring)
            .context("the master key does not open the stored secrets; nothing was changed")?;
        let audit = AuditLog::open(&audit_log_path(config), RotationPolicy::from(&config.audit))
            .context("opening the audit log")?;
        let secrets = Arc::new(SecretStore::new(layout.clone(), Arc::new(keyring)));
        Ok(Self {
            cache: Arc::new(CatalogCache::new(catalog_metrics.clone())),
            owners: Arc::new(Owners::new(layout.clone(), secrets.clone())),
            secrets,
            catalogs: Arc::new(catalogs),
            audit: Arc::new(audit),
            audit_limiter: Arc::new(WriteLimiter::new(&config.audit)),
            audit_reads: Arc::new(tokio::sync::Semaphore::new(
                crate::audit::query::CONCURRENT_READS,
            )),
            layout,
            catalog_metrics,
            events: Arc::new(crate::events::EventBus::from_config(&config.events)),
        })
    }
}
