//! What a gateway is started with: the user's merged catalog (written as `merged.yaml`) and
//! rendered secrets, read off the async threads. Shared by the start and by adoption (which
//! needs the images the catalog names).

use super::failure::StartFailure;
use super::files::Prepared;
use super::metrics::StartOutcome;
use crate::catalog::{CatalogCache, CatalogStore, ServerType};
use crate::secrets::SecretStore;
use std::sync::Arc;

/// The catalog store, merge cache and secrets a preparation reads.
#[derive(Clone)]
pub(super) struct Preparer {
    pub catalogs: Arc<CatalogStore>,
    pub cache: Arc<CatalogCache>,
    pub secrets: Arc<SecretStore>,
}

impl Preparer {
    /// The images a user's catalog names (what their gateway's policed API lets it run).
    pub async fn images(
        &self,
        slug: &str,
        teams: Vec<String>,
    ) -> Option<crate::dockerapi::images::AllowedImages> {
        let prepared = self.prepare(slug, teams).await.ok()?;
        Some(crate::dockerapi::images::AllowedImages::new(
            prepared.images.iter().map(|(_, i)| i.as_str()),
        ))
    }

    /// Merges the user's catalog (writing `merged.yaml`) and renders their secrets file.
    pub async fn prepare(&self, slug: &str, teams: Vec<String>) -> Result<Prepared, StartFailure> {
        let (store, cache, secrets) = (
            self.catalogs.clone(),
            self.cache.clone(),
            self.secrets.clone(),
        );
        let slug = slug.to_string();
        let fail = |detail: String| StartFailure {
            outcome: StartOutcome::Prepare,
            message: "the gateway's catalog or secrets could not be prepared".into(),
            detail,
        };
        // The user's own layers breaking the catalog policy is theirs to fix, so the
        // refusal (fields, never file paths) is the message they get.
        let refused = |e: crate::catalog::CatalogError| StartFailure {
            outcome: StartOutcome::Prepare,
            message: format!("the gateway cannot start: {e}"),
            detail: e.to_string(),
        };
        tokio::task::spawn_blocking(move || {
            let regen = crate::catalog::regenerate_user(&store, &cache, &slug, &teams).map_err(
                |e| match e {
                    e @ crate::catalog::CatalogError::Policy(_) => refused(e),
                    e => fail(e.to_string()),
                },
            )?;
            let catalog_yaml = regen.catalog.to_yaml().map_err(|e| fail(e.to_string()))?;
            let servers = regen.catalog.server_names().map(String::from).collect();
            let images = regen
                .catalog
                .registry
                .iter()
                .filter(|(_, s)| matches!(s.server_type(), ServerType::Server | ServerType::Poci))
                .filter_map(|(n, s)| Some((n.clone(), s.image()?.to_string())))
                .collect();
            let secrets = secrets
                .render_gateway_secrets(&slug)
                .map_err(|e| fail(e.to_string()))?;
            Ok(Prepared {
                hash: regen.hash.as_str().to_string(),
                catalog_yaml,
                servers,
                images,
                secrets,
            })
        })
        .await
        .map_err(|e| fail(e.to_string()))?
    }
}
