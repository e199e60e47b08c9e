//! The data dir on disk: base and team catalogs, users' custom catalogs and overrides.
//!
//! Every write validates first (shape, then the catalog policy for that kind of layer) and
//! then replaces the file atomically, so concurrent writers end with the last write and every
//! reader in between parses a whole file. Admin files are held to the policy when they are
//! parsed; user layers when they are put together for a merge ([`CatalogStore::load_inputs`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::digest::Digested;
use super::error::CatalogError;
use super::filecache::FileCache;
use super::merge::{BaseLayer, MergeInputs, TeamLayer};
use super::metrics::CatalogMetrics;
use super::model::{Catalog, Format};
use super::overrides::Overrides;
use super::parse::{parse_yaml, to_yaml};
use super::policy::CatalogPolicy;
use super::validate::validate;
use crate::storage::files::{create_private_dir, list_dir, remove_file, write_atomic};
use crate::storage::{validate_name, NameKind};
use crate::storage::{DataLayout, UserFile};

/// Example base catalogs from the repository's `catalogs/`, embedded so an installed binary
/// can seed a fresh data dir: (name, catalog, meta).
const SEED: &[(&str, &str, &str)] = &[
    (
        "official",
        include_str!("../../catalogs/official.yaml"),
        include_str!("../../catalogs/official.meta.yaml"),
    ),
    (
        "organization",
        include_str!("../../catalogs/organization.yaml"),
        include_str!("../../catalogs/organization.meta.yaml"),
    ),
];

/// `<name>.meta.yaml`: the priority plus any other keys, kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Meta {
    #[serde(default)]
    priority: i64,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// A base catalog's name and priority, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseInfo {
    /// File stem under `catalogs/base/`.
    pub name: String,
    /// From `<name>.meta.yaml` (0 when absent).
    pub priority: i64,
}

/// Whose catalog a file is: admins' (base, team) or a user's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Admin,
    User,
}

/// Reads and writes catalogs in the data dir; shareable across threads.
#[derive(Debug)]
pub struct CatalogStore {
    layout: DataLayout,
    metrics: Arc<CatalogMetrics>,
    policy: Arc<CatalogPolicy>,
    catalogs: FileCache<Digested<Catalog>>,
    overrides: FileCache<Digested<Overrides>>,
    metas: FileCache<Meta>,
    /// Held by [`Self::create_base`] so two creates of one name cannot both succeed.
    creating: parking_lot::Mutex<()>,
}

impl CatalogStore {
    /// Opens the data dir, creating the layout (dirs 0700) and seeding the example base
    /// catalogs when `catalogs/base/` did not exist yet.
    pub fn open(layout: DataLayout, metrics: Arc<CatalogMetrics>) -> Result<Self, CatalogError> {
        let store = Self::open_existing(layout, metrics);
        let l = &store.layout;
        store.track(create_private_dir(l.root()))?;
        let fresh = store.track(create_private_dir(&l.base_dir()))?;
        for dir in [l.teams_dir(), l.users_dir(), l.audit_dir()] {
            store.track(create_private_dir(&dir))?;
        }
        if fresh {
            for (name, catalog, meta) in SEED {
                store.track(write_atomic(&l.base_catalog(name)?, catalog.as_bytes()))?;
                store.track(write_atomic(&l.base_meta(name)?, meta.as_bytes()))?;
            }
            tracing::info!(dir = %l.base_dir().display(), "seeded example base catalogs");
        }
        Ok(store)
    }

    /// Uses the data dir as it is, creating nothing (for read-only tools such as the CLI).
    pub fn open_existing(layout: DataLayout, metrics: Arc<CatalogMetrics>) -> Self {
        CatalogStore {
            layout,
            metrics,
            policy: Arc::default(),
            catalogs: FileCache::new(),
            overrides: FileCache::new(),
            metas: FileCache::new(),
            creating: parking_lot::Mutex::new(()),
        }
    }

    /// Holds every layer to `policy` (the default: no servers of users' own).
    pub fn with_policy(mut self, policy: Arc<CatalogPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// The catalog policy in force.
    pub fn policy(&self) -> &Arc<CatalogPolicy> {
        &self.policy
    }

    /// The data dir layout.
    pub fn layout(&self) -> &DataLayout {
        &self.layout
    }

    /// The metrics this store reports file errors to.
    pub fn metrics(&self) -> &Arc<CatalogMetrics> {
        &self.metrics
    }

    /// Counts file errors by operation on their way out.
    pub(crate) fn track<T, E: Into<CatalogError>>(
        &self,
        r: Result<T, E>,
    ) -> Result<T, CatalogError> {
        let r = r.map_err(Into::into);
        if let Err(CatalogError::Io { op, .. }) = &r {
            self.metrics.inc_file_error(*op);
        }
        r
    }

    /// Loads a catalog file. An admin file that names the front door's own objects is an
    /// unusable file (500, logged): editing it by hand must not arm it.
    fn load_catalog(
        &self,
        path: &std::path::Path,
        owner: Owner,
    ) -> Result<Option<Digested<Catalog>>, CatalogError> {
        self.track(self.catalogs.load(path, |b| {
            let c = Catalog::parse(b, Format::Yaml)?;
            validate(&c)?;
            if owner == Owner::Admin {
                self.policy.check_admin(&c)?;
            }
            Ok(Digested::new(c))
        }))
    }

    fn priority_of(&self, name: &str) -> Result<i64, CatalogError> {
        let path = self.layout.base_meta(name)?;
        let meta = self.track(self.metas.load(&path, parse_yaml::<Meta>))?;
        Ok(meta.map_or(0, |m| m.priority))
    }

    /// Shape rules, then the policy for `owner`'s layers.
    fn check_catalog(&self, c: &Catalog, owner: Owner) -> Result<(), CatalogError> {
        validate(c)?;
        match owner {
            Owner::Admin => self.policy.check_admin(c)?,
            Owner::User => self.policy.check_custom(c)?,
        }
        Ok(())
    }

    /// Writes a catalog that passed [`Self::check_catalog`].
    fn write_checked(&self, path: &std::path::Path, c: &Catalog) -> Result<(), CatalogError> {
        let yaml = c.to_yaml()?;
        let r = self.track(write_atomic(path, yaml.as_bytes()));
        self.catalogs.forget(path);
        r
    }

    /// All base catalogs, sorted by name.
    pub fn list_base(&self) -> Result<Vec<BaseInfo>, CatalogError> {
        let mut out = Vec::new();
        for (file, ft) in self.track(list_dir(&self.layout.base_dir()))? {
            let Some(name) = file.strip_suffix(".yaml") else {
                continue;
            };
            if !ft.is_file()
                || name.ends_with(".meta")
                || validate_name(NameKind::BaseCatalog, name).is_err()
            {
                continue;
            }
            let priority = self.priority_of(name)?;
            out.push(BaseInfo {
                name: name.to_owned(),
                priority,
            });
        }
        Ok(out)
    }

    /// One base catalog with its priority; `NotFound` if absent.
    pub fn get_base(&self, name: &str) -> Result<(BaseInfo, Arc<Catalog>), CatalogError> {
        let path = self.layout.base_catalog(name)?;
        let c = self
            .load_catalog(&path, Owner::Admin)?
            .ok_or_else(|| not_found(NameKind::BaseCatalog, name))?;
        let info = BaseInfo {
            name: name.to_owned(),
            priority: self.priority_of(name)?,
        };
        Ok((info, c.value().clone()))
    }

    /// Creates a base catalog that does not exist yet; `Ok(None)` (nothing written) when one
    /// of that name does. Returns the priority in force.
    pub fn create_base(
        &self,
        name: &str,
        catalog: &Catalog,
        priority: Option<i64>,
    ) -> Result<Option<i64>, CatalogError> {
        let _one_at_a_time = self.creating.lock();
        if self.layout.base_catalog(name)?.exists() {
            return Ok(None);
        }
        self.put_base(name, catalog, priority).map(Some)
    }

    /// Creates or replaces a base catalog. `priority: None` keeps the current priority (0 for
    /// a new catalog). Returns the priority in force.
    pub fn put_base(
        &self,
        name: &str,
        catalog: &Catalog,
        priority: Option<i64>,
    ) -> Result<i64, CatalogError> {
        let path = self.layout.base_catalog(name)?;
        let meta_path = self.layout.base_meta(name)?;
        let mut meta = self
            .track(self.metas.load(&meta_path, parse_yaml::<Meta>))?
            .unwrap_or_default();
        // Checked before the meta write, so a refused catalog changes nothing.
        self.check_catalog(catalog, Owner::Admin)?;
        // Meta first: a crash between the two writes leaves the old catalog at the new
        // priority rather than a new catalog at a stale one.
        if let Some(p) = priority {
            if p != meta.priority || !meta_path.exists() {
                meta.priority = p;
                let yaml = to_yaml(&meta)?;
                self.track(write_atomic(&meta_path, yaml.as_bytes()))?;
                self.metas.forget(&meta_path);
            }
        }
        self.write_checked(&path, catalog)?;
        Ok(meta.priority)
    }

    /// Deletes a base catalog and its meta file; `NotFound` if absent.
    pub fn delete_base(&self, name: &str) -> Result<(), CatalogError> {
        let path = self.layout.base_catalog(name)?;
        let meta = self.layout.base_meta(name)?;
        let existed = self.track(remove_file(&path))?;
        self.catalogs.forget(&path);
        self.track(remove_file(&meta))?;
        self.metas.forget(&meta);
        if existed {
            Ok(())
        } else {
            Err(not_found(NameKind::BaseCatalog, name))
        }
    }

    /// Names of all team catalogs, sorted.
    pub fn list_teams(&self) -> Result<Vec<String>, CatalogError> {
        Ok(self
            .track(list_dir(&self.layout.teams_dir()))?
            .into_iter()
            .filter(|(_, ft)| ft.is_file())
            .filter_map(|(f, _)| f.strip_suffix(".yaml").map(str::to_owned))
            .filter(|n| validate_name(NameKind::Team, n).is_ok())
            .collect())
    }

    /// One team catalog; `NotFound` if absent.
    pub fn get_team(&self, team: &str) -> Result<Arc<Catalog>, CatalogError> {
        let path = self.layout.team_catalog(team)?;
        let c = self
            .load_catalog(&path, Owner::Admin)?
            .ok_or_else(|| not_found(NameKind::Team, team))?;
        Ok(c.value().clone())
    }

    /// Creates or replaces a team catalog.
    pub fn put_team(&self, team: &str, catalog: &Catalog) -> Result<(), CatalogError> {
        let path = self.layout.team_catalog(team)?;
        self.check_catalog(catalog, Owner::Admin)?;
        self.write_checked(&path, catalog)
    }

    /// Deletes a team catalog; `NotFound` if absent.
    pub fn delete_team(&self, team: &str) -> Result<(), CatalogError> {
        let path = self.layout.team_catalog(team)?;
        let existed = self.track(remove_file(&path))?;
        self.catalogs.forget(&path);
        existed
            .then_some(())
            .ok_or_else(|| not_found(NameKind::Team, team))
    }

    /// Slugs of all users with a directory, sorted.
    pub fn list_users(&self) -> Result<Vec<String>, CatalogError> {
        Ok(self
            .track(list_dir(&self.layout.users_dir()))?
            .into_iter()
            .filter(|(n, ft)| ft.is_dir() && validate_name(NameKind::UserSlug, n).is_ok())
            .map(|(n, _)| n)
            .collect())
    }

    /// The user's custom catalog (`None` when they have none).
    pub fn get_custom(&self, slug: &str) -> Result<Option<Arc<Catalog>>, CatalogError> {
        let path = self.layout.user_file(slug, UserFile::Custom)?;
        Ok(self
            .load_catalog(&path, Owner::User)?
            .map(|c| c.value().clone()))
    }

    /// Replaces the user's custom catalog (creating their directory). Held to the user
    /// policy on its own; [`CatalogStore::put_user_catalogs`] also checks it with the rest.
    pub fn put_custom(&self, slug: &str, catalog: &Catalog) -> Result<(), CatalogError> {
        let path = self.layout.user_file(slug, UserFile::Custom)?;
        self.check_catalog(catalog, Owner::User)?;
        self.ensure_user_dir(slug)?;
        self.write_checked(&path, catalog)
    }

    /// Removes the user's custom catalog, if they have one.
    pub fn delete_custom(&self, slug: &str) -> Result<(), CatalogError> {
        let path = self.layout.user_file(slug, UserFile::Custom)?;
        let r = self.track(remove_file(&path)).map(drop);
        self.catalogs.forget(&path);
        r
    }

    /// The user's overrides (empty when they have none).
    pub fn get_overrides(&self, slug: &str) -> Result<Overrides, CatalogError> {
        Ok(self
            .load_overrides(slug)?
            .map(|o| (**o.value()).clone())
            .unwrap_or_default())
    }

    fn load_overrides(&self, slug: &str) -> Result<Option<Digested<Overrides>>, CatalogError> {
        let path = self.layout.user_file(slug, UserFile::Overrides)?;
        self.track(self.overrides.load(&path, |b| {
            Ok(Digested::new(Overrides::parse(b, Format::Yaml)?))
        }))
    }

    /// Replaces the user's overrides (creating their directory). Only the checks that need
    /// no other layer run here; [`CatalogStore::put_user_catalogs`] runs the rest.
    pub fn put_overrides(&self, slug: &str, overrides: &Overrides) -> Result<(), CatalogError> {
        let path = self.layout.user_file(slug, UserFile::Overrides)?;
        self.policy.check_overrides(overrides)?;
        self.ensure_user_dir(slug)?;
        let yaml = overrides.to_yaml()?;
        // Re-parse what is about to be stored: the file must load back as it was validated.
        Overrides::parse(yaml.as_bytes(), Format::Yaml)?;
        let r = self.track(write_atomic(&path, yaml.as_bytes()));
        self.overrides.forget(&path);
        r
    }

    /// Creates `users/<slug>/` (0700) if needed.
    pub fn ensure_user_dir(&self, slug: &str) -> Result<(), CatalogError> {
        let dir = self.layout.user_dir(slug)?;
        self.track(create_private_dir(&dir)).map(drop)
    }

    /// Loads everything the user's merge depends on and holds the user's stored layers to
    /// the policy, so a file placed on disk by other means fails the merge (naming the field)
    /// instead of reaching a gateway.
    pub fn load_inputs(&self, slug: &str, teams: &[String]) -> Result<MergeInputs, CatalogError> {
        let inputs = self.load_layers(slug, teams)?;
        self.check_stored(slug, &inputs)?;
        Ok(inputs)
    }

    /// Holds a user's stored layers (in `inputs`) to the policy.
    pub fn check_stored(&self, slug: &str, inputs: &MergeInputs) -> Result<(), CatalogError> {
        Ok(self.policy.check_user_layers(inputs, Some(slug))?)
    }

    /// Loads everything the user's merge depends on, without holding the user's layers to
    /// the policy (to show them, or to check them with a change). Teams without a catalog
    /// file, and team names that cannot be file names, are skipped: most groups in a token
    /// have no catalog.
    pub fn load_layers(&self, slug: &str, teams: &[String]) -> Result<MergeInputs, CatalogError> {
        let mut inputs = MergeInputs::empty();
        for info in self.list_base()? {
            let path = self.layout.base_catalog(&info.name)?;
            // Deleted between listing and loading: treat as gone.
            if let Some(catalog) = self.load_catalog(&path, Owner::Admin)? {
                inputs.base.push(BaseLayer {
                    name: info.name,
                    priority: info.priority,
                    catalog,
                });
            }
        }
        let mut teams: Vec<&String> = teams.iter().collect();
        teams.sort();
        teams.dedup();
        for team in teams {
            let Ok(path) = self.layout.team_catalog(team) else {
                tracing::debug!(team = %team, "team name cannot name a catalog file; skipped");
                continue;
            };
            if let Some(catalog) = self.load_catalog(&path, Owner::Admin)? {
                inputs.teams.push(TeamLayer {
                    team: team.clone(),
                    catalog,
                });
            }
        }
        let custom = self.layout.user_file(slug, UserFile::Custom)?;
        inputs.custom = self.load_catalog(&custom, Owner::User)?;
        if let Some(o) = self.load_overrides(slug)? {
            inputs.overrides = o;
        }
        Ok(inputs)
    }
}

fn not_found(kind: NameKind, name: &str) -> CatalogError {
    CatalogError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
