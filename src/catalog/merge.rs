//! The merge: a pure function from a user's catalog layers to the catalog their gateway gets.
//!
//! Layers are applied in this order, and a later layer replaces a whole server entry of an
//! earlier one (per server, not per field):
//! 1. base catalogs by ascending `(priority, name)`: higher priority wins; at equal priority
//!    the name sorting last wins;
//! 2. the team catalogs the user's token lists, by ascending team name;
//! 3. the user's `custom.yaml`;
//! 4. `overrides.yaml`: `false` removes a server, a map patches it (RFC 7396, see
//!    [`super::overrides`]).
//!
//! Top-level unknown keys are layered the same way (later wins per key). The output lists
//! servers sorted by name so `merged.yaml` diffs cleanly.

use std::fmt;

use indexmap::IndexMap;
use sha2::{Digest as _, Sha256};

use super::digest::{put_str, to_hex, Digested};
use super::model::{Catalog, Server};
use super::overrides::{merge_patch, Override, Overrides};

/// Bumped whenever the merge rules or the hash encoding change, so every gateway is
/// regenerated after an upgrade that changes what it would be given.
pub const MERGE_FORMAT_VERSION: &str = "mcp-frontdoor/merge/v1";

/// `name` of every merged catalog.
pub const MERGED_CATALOG_NAME: &str = "mcp-frontdoor";

/// One admin base catalog and its priority.
#[derive(Clone, Debug)]
pub struct BaseLayer {
    /// File stem under `catalogs/base/`.
    pub name: String,
    /// From `<name>.meta.yaml`; higher wins.
    pub priority: i64,
    /// The catalog and its digest.
    pub catalog: Digested<Catalog>,
}

/// One team catalog.
#[derive(Clone, Debug)]
pub struct TeamLayer {
    /// Team name (file stem under `catalogs/teams/`).
    pub team: String,
    /// The catalog and its digest.
    pub catalog: Digested<Catalog>,
}

/// Everything a user's merged catalog depends on; [`merge`] and [`input_hash`] read only this.
#[derive(Clone, Debug)]
pub struct MergeInputs {
    /// All base catalogs, any order (sorted here).
    pub base: Vec<BaseLayer>,
    /// The team catalogs that exist for the user's teams, any order (sorted here).
    pub teams: Vec<TeamLayer>,
    /// The user's own catalog, if any.
    pub custom: Option<Digested<Catalog>>,
    /// The user's overrides (empty when the file is absent).
    pub overrides: Digested<Overrides>,
}

/// Hex SHA-256 over [`MERGE_FORMAT_VERSION`] and the digests of all inputs in merge order;
/// stamped on the gateway container as `mcp-frontdoor.catalog-hash`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CatalogHash(String);

impl CatalogHash {
    /// The 64 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a stored hash (e.g. from a container label or a file header) if well formed.
    pub fn parse(s: &str) -> Option<CatalogHash> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| CatalogHash(s.to_owned()))
    }
}

impl fmt::Display for CatalogHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl MergeInputs {
    /// Inputs with no layers at all (merges to an empty catalog).
    pub fn empty() -> Self {
        MergeInputs {
            base: Vec::new(),
            teams: Vec::new(),
            custom: None,
            overrides: Digested::new(Overrides::default()),
        }
    }

    fn ordered_base(&self) -> Vec<&BaseLayer> {
        let mut v: Vec<&BaseLayer> = self.base.iter().collect();
        v.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
        v
    }

    fn ordered_teams(&self) -> Vec<&TeamLayer> {
        let mut v: Vec<&TeamLayer> = self.teams.iter().collect();
        v.sort_by(|a, b| a.team.cmp(&b.team));
        v
    }

    /// The server `name` as the admin layers (base and team, without the user's) give it:
    /// what an override of that server lands on.
    pub(crate) fn admin_server(&self, name: &str) -> Option<&Server> {
        let teams = self
            .ordered_teams()
            .into_iter()
            .rev()
            .map(|t| &**t.catalog.value());
        let base = self
            .ordered_base()
            .into_iter()
            .rev()
            .map(|b| &**b.catalog.value());
        teams.chain(base).find_map(|c| c.registry.get(name))
    }
}

/// Hash of the inputs; equal hashes mean equal merged catalogs.
pub fn input_hash(inputs: &MergeInputs) -> CatalogHash {
    let mut h = Sha256::new();
    put_str(&mut h, MERGE_FORMAT_VERSION);
    for b in inputs.ordered_base() {
        h.update(b"B");
        put_str(&mut h, &b.name);
        h.update(b.priority.to_le_bytes());
        h.update(b.catalog.digest());
    }
    for t in inputs.ordered_teams() {
        h.update(b"T");
        put_str(&mut h, &t.team);
        h.update(t.catalog.digest());
    }
    match &inputs.custom {
        Some(c) => {
            h.update(b"C");
            h.update(c.digest());
        }
        None => h.update(b"c"),
    }
    h.update(b"O");
    h.update(inputs.overrides.digest());
    CatalogHash(to_hex(&h.finalize().into()))
}

/// The layer a server of a user's catalog comes from: the one whose entry wins the merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An admin base catalog, by name.
    Base(String),
    /// The catalog of one of the user's teams.
    Team(String),
    /// The user's own custom catalog.
    Custom,
}

impl fmt::Display for Origin {
    /// `base:<name>`, `team:<team>` or `custom` (the API's `origins` values).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Base(n) => write!(f, "base:{n}"),
            Origin::Team(t) => write!(f, "team:{t}"),
            Origin::Custom => f.write_str("custom"),
        }
    }
}

/// The catalog layers in merge order, each with the origin it gives its servers. [`merge`]
/// and [`origins`] both walk this, so an origin always names the layer whose entry won.
fn layers(inputs: &MergeInputs) -> impl Iterator<Item = (Origin, &Catalog)> {
    let base = inputs
        .ordered_base()
        .into_iter()
        .map(|b| (Origin::Base(b.name.clone()), &**b.catalog.value()));
    let teams = inputs
        .ordered_teams()
        .into_iter()
        .map(|t| (Origin::Team(t.team.clone()), &**t.catalog.value()));
    let custom = inputs.custom.iter().map(|c| (Origin::Custom, &**c.value()));
    base.chain(teams).chain(custom)
}

/// Every server the layers offer the user, sorted by name, with the layer it comes from.
/// Taken before the overrides, so a server the user disabled (`false`) is listed too: it is
/// the one in here that the merged catalog lacks. A patch does not change an origin.
pub fn origins(inputs: &MergeInputs) -> IndexMap<String, Origin> {
    let mut out: IndexMap<String, Origin> = IndexMap::new();
    for (origin, layer) in layers(inputs) {
        for name in layer.registry.keys() {
            out.insert(name.clone(), origin.clone());
        }
    }
    out.sort_unstable_keys();
    out
}

/// Merges the layers into the catalog a gateway is given. Pure: no I/O, no clock.
pub fn merge(inputs: &MergeInputs) -> Catalog {
    let mut servers: IndexMap<&str, &Server> = IndexMap::new();
    let mut extra = serde_json::Map::new();
    for (_, layer) in layers(inputs) {
        for (name, server) in &layer.registry {
            servers.insert(name, server);
        }
        for (k, v) in &layer.extra {
            extra.insert(k.clone(), v.clone());
        }
    }
    let overrides = inputs.overrides.value();
    let mut names: Vec<&str> = servers.keys().copied().collect();
    names.sort_unstable();
    let mut registry = IndexMap::with_capacity(names.len());
    for name in names {
        match overrides.0.get(name) {
            Some(Override::Enabled(false)) => {}
            Some(Override::Patch(patch)) => {
                let mut s = servers[name].clone();
                merge_patch(s.fields_mut(), patch);
                registry.insert(name.to_owned(), s);
            }
            Some(Override::Enabled(true)) | None => {
                registry.insert(name.to_owned(), servers[name].clone());
            }
        }
    }
    Catalog {
        name: Some(MERGED_CATALOG_NAME.to_owned()),
        display_name: Some("Merged catalog (mcp-frontdoor)".to_owned()),
        registry,
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::format::Format;

    fn cat(yaml: &str) -> Digested<Catalog> {
        Digested::new(Catalog::parse(yaml.as_bytes(), Format::Yaml).unwrap())
    }

    fn base(name: &str, priority: i64, yaml: &str) -> BaseLayer {
        BaseLayer {
            name: name.into(),
            priority,
            catalog: cat(yaml),
        }
    }

    fn inputs() -> MergeInputs {
        MergeInputs {
            base: vec![
                base("org", 10, "registry:\n  github: {image: org/github}\n"),
                base("official", 0, "registry:\n  github: {image: mcp/github}\n  fetch: {image: mcp/fetch}\n  fs: {image: mcp/fs, env: [{name: A, value: '1'}]}\n"),
            ],
            teams: vec![TeamLayer {
                team: "ml".into(),
                catalog: cat("registry:\n  fetch: {image: ml/fetch}\n  jupyter: {image: ml/jupyter}\n"),
            }],
            custom: Some(cat("registry:\n  mine: {image: me/tool}\n  jupyter: {image: me/jupyter}\n")),
            overrides: Digested::new(
                Overrides::parse(b"github: false\nfs: {env: null, title: Files}\nghost: {image: x}\n", Format::Yaml).unwrap(),
            ),
        }
    }

    #[test]
    fn layers_apply_in_order() {
        let m = merge(&inputs());
        let names: Vec<_> = m.server_names().collect();
        assert_eq!(names, ["fetch", "fs", "jupyter", "mine"]);
        assert_eq!(m.registry["fetch"].image(), Some("ml/fetch"));
        assert_eq!(m.registry["jupyter"].image(), Some("me/jupyter"));
        let fs = &m.registry["fs"];
        assert_eq!(fs.get("title").and_then(|v| v.as_str()), Some("Files"));
        assert!(!fs.contains_key("env"));
        assert!(
            !m.registry.contains_key("ghost"),
            "a patch never creates a server"
        );
    }

    #[test]
    fn higher_priority_wins_and_ties_break_by_name() {
        let mut i = inputs();
        i.overrides = Digested::new(Overrides::default());
        assert_eq!(merge(&i).registry["github"].image(), Some("org/github"));
        i.base[0].priority = 0; // tie: "org" sorts after "official", so it wins
        assert_eq!(merge(&i).registry["github"].image(), Some("org/github"));
        i.base[0].priority = -1;
        assert_eq!(merge(&i).registry["github"].image(), Some("mcp/github"));
    }

    #[test]
    fn hash_is_order_independent_and_input_sensitive() {
        let a = inputs();
        let mut b = inputs();
        b.base.reverse();
        assert_eq!(input_hash(&a), input_hash(&b));
        assert_eq!(merge(&a), merge(&b));
        b.base[0].priority += 1;
        assert_ne!(input_hash(&a), input_hash(&b));
        let mut c = inputs();
        c.custom = None;
        assert_ne!(input_hash(&a), input_hash(&c));
        assert!(CatalogHash::parse(input_hash(&a).as_str()).is_some());
        assert!(CatalogHash::parse("xyz").is_none());
    }

    #[test]
    fn each_offered_server_names_the_layer_that_won() {
        let o = origins(&inputs());
        let shown: Vec<(String, String)> =
            o.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        let want = [
            ("fetch", "team:ml"),    // the team layer replaces the base entry
            ("fs", "base:official"), // patched by an override, still the base's server
            ("github", "base:org"),  // disabled, still offered; priority 10 beats 0
            ("jupyter", "custom"),   // the user's layer comes last
            ("mine", "custom"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(shown, want);
        assert!(!o.contains_key("ghost"), "an override offers nothing");
        let merged = merge(&inputs());
        assert!(
            merged.server_names().all(|n| o.contains_key(n)),
            "every merged server has an origin"
        );
        assert!(!merged.registry.contains_key("github"));
        assert_eq!(
            origins(&MergeInputs::empty()).len(),
            0,
            "no layers, no origins"
        );
    }

    #[test]
    fn empty_inputs_merge_to_empty_catalog() {
        let m = merge(&MergeInputs::empty());
        assert!(m.registry.is_empty());
        assert_eq!(m.name.as_deref(), Some(MERGED_CATALOG_NAME));
    }
}
