//! Who may declare what (DESIGN.md §3, "tenant containment"). A catalog entry is a recipe
//! for a container some Docker API will run, so a catalog is code: admins' base and team
//! catalogs may use every field except the front door's own objects ([`protected`]); a user's
//! custom catalog ([`custom`]) and overrides ([`patch`]) are a tenant's input and pass only
//! what `catalogs.user_policy` allows.
//!
//! The checks run wherever a layer is written (REST API, store) and again wherever layers are
//! put together for a merge (gateway start, the regenerate job, `catalog merge`), so a file
//! placed on disk by other means fails that user's merge with the field named instead of
//! reaching a gateway.

pub mod custom;
pub mod patch;
pub mod pattern;
pub mod protected;

use serde::Serialize;

use super::issues::{Issues, PolicyError};
use super::merge::MergeInputs;
use super::model::Catalog;
use super::overrides::{Override, Overrides};
use crate::config::RawConfig;

pub use pattern::Pattern;
pub use protected::{Protected, OBJECT_PREFIX};

/// What users may put in their own layers (`catalogs.user_policy`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPolicy {
    /// Users may add servers of their own (`custom.yaml`).
    pub custom_servers: bool,
    /// Images those servers may run.
    pub images: Vec<Pattern>,
    /// Those images must carry a `@sha256:` digest.
    pub require_digest: bool,
    /// URLs a remote server of their own may connect to (canonical form, see [`pattern`]).
    pub remote_urls: Vec<Pattern>,
}

/// The whole policy: the user rules plus the objects no catalog may name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogPolicy {
    /// Rules for user layers.
    pub user: UserPolicy,
    /// The front door's own objects and data.
    pub protected: Protected,
}

fn finish(issues: Issues, stored_for: Option<&str>) -> Result<(), PolicyError> {
    let issues = issues.into_vec();
    if issues.is_empty() {
        Ok(())
    } else {
        Err(PolicyError {
            stored_for: stored_for.map(str::to_string),
            issues,
        })
    }
}

/// The effective policy, as `GET /users/{user}/catalogs` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyView {
    /// Servers of one's own are allowed.
    pub custom_servers: bool,
    /// Images they may run.
    pub images: Vec<String>,
    /// Images must be pinned by digest.
    pub require_digest: bool,
    /// URLs remote servers of one's own may use.
    pub remote_urls: Vec<String>,
    /// Fields a server of one's own may carry.
    pub custom_fields: Vec<&'static str>,
    /// Fields an override may set on an offered server (besides `false` to disable it).
    pub override_fields: Vec<&'static str>,
    /// Volume sources, images and hosts no catalog may name.
    pub protected: Vec<String>,
}

impl CatalogPolicy {
    /// The policy a config asks for: `catalogs.user_policy`, plus the protected objects
    /// (built-ins, `catalogs.protected_sources`, `data_dir`, a unix `gateways.docker.host`).
    pub fn from_config(raw: &RawConfig) -> Self {
        let c = &raw.catalogs;
        let pats = |v: &[String]| v.iter().map(Pattern::new).collect();
        let mut extra: Vec<String> = c.protected_sources.clone();
        if let Ok(abs) = std::path::absolute(&raw.data_dir) {
            extra.push(abs.to_string_lossy().into_owned());
        }
        if let Some(sock) = raw
            .gateways
            .docker
            .host
            .as_ref()
            .and_then(|h| h.unix_socket())
        {
            extra.push(sock.to_string_lossy().into_owned());
        }
        CatalogPolicy {
            user: UserPolicy {
                custom_servers: c.user_policy.custom_servers,
                images: pats(&c.user_policy.images),
                require_digest: c.user_policy.require_digest,
                remote_urls: pats(&c.user_policy.remote_urls),
            },
            protected: Protected::new(extra),
        }
    }

    /// An admin's base or team catalog: only the front door's own objects are off limits.
    pub fn check_admin(&self, c: &Catalog) -> Result<(), PolicyError> {
        let mut issues = Issues::default();
        self.protected.check_catalog(c, "", &mut issues);
        finish(issues, None)
    }

    /// A user's custom catalog on its own; paths `custom.registry.<server>.<field>`.
    pub fn check_custom(&self, c: &Catalog) -> Result<(), PolicyError> {
        let mut issues = Issues::default();
        self.custom_issues(c, &mut issues);
        finish(issues, None)
    }

    /// A user's overrides without the servers they land on; paths `overrides.<server>.<field>`.
    pub fn check_overrides(&self, o: &Overrides) -> Result<(), PolicyError> {
        let mut issues = Issues::default();
        patch::check_static(o, "overrides", &mut issues);
        finish(issues, None)
    }

    fn custom_issues(&self, c: &Catalog, issues: &mut Issues) {
        custom::check_catalog(&self.user, c, "custom", issues);
        self.protected.check_catalog(c, "custom", issues);
    }

    /// A user's layers together with the admin layers they land on: everything a merge of
    /// `inputs` would apply. `stored_for` names the user when the layers came from disk.
    pub fn check_user_layers(
        &self,
        inputs: &MergeInputs,
        stored_for: Option<&str>,
    ) -> Result<(), PolicyError> {
        let mut issues = Issues::default();
        let custom = inputs.custom.as_ref().map(|c| &**c.value());
        if let Some(c) = custom {
            self.custom_issues(c, &mut issues);
        }
        let overrides = inputs.overrides.value();
        patch::check_static(overrides, "overrides", &mut issues);
        for (name, ov) in &overrides.0 {
            let Override::Patch(p) = ov else { continue };
            // A patch on the user's own server is held to the custom rules already.
            if custom.is_some_and(|c| c.registry.contains_key(name)) {
                continue;
            }
            if let Some(below) = inputs.admin_server(name) {
                patch::check_env(&format!("overrides.{name}"), below, p, &mut issues);
            }
        }
        finish(issues, stored_for)
    }

    /// What a user may set, for the API.
    pub fn view(&self) -> PolicyView {
        let strs = |v: &[Pattern]| v.iter().map(|p| p.as_str().to_string()).collect();
        PolicyView {
            custom_servers: self.user.custom_servers,
            images: strs(&self.user.images),
            require_digest: self.user.require_digest,
            remote_urls: strs(&self.user.remote_urls),
            custom_fields: custom::CUSTOM_FIELDS.to_vec(),
            override_fields: patch::PATCH_FIELDS.to_vec(),
            protected: self.protected.describe(),
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
