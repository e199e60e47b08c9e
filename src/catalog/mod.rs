//! Catalogs: the docker/mcp-gateway catalog model, validation, the data-dir store, the merge
//! of a user's layers, its cache, and metrics (DESIGN.md §3).
//!
//! Everything here is synchronous and does blocking file I/O; async callers wrap store calls
//! in `tokio::task::spawn_blocking`.

pub mod cache;
pub mod digest;
pub mod error;
mod filecache;
pub mod image_ref;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod overrides;
mod parse;
pub mod policy;
pub mod regen;
pub mod server_name;
pub mod store;
pub mod toggle;
pub mod user;
pub mod user_config;
pub mod validate;

pub use cache::{CatalogCache, CatalogChanged, MergedCatalog};
pub use digest::Digested;
pub use error::{CatalogError, ErrorClass};
// Storage names kept at their old paths: the API, gateways and tests name them from here.
pub use crate::storage::{names, DataLayout, FileOp, UserFile};
pub use crate::storage::{validate_name, NameError, NameKind};
pub use merge::{input_hash, merge, BaseLayer, CatalogHash, MergeInputs, TeamLayer};
pub use metrics::CatalogMetrics;
pub use model::{Catalog, Format, Server, ServerType};
pub use overrides::{Override, Overrides};
pub use policy::{CatalogPolicy, PolicyError};
pub use regen::{merge_for_cli, regenerate_all, regenerate_user, RegenerateReport, Regenerated};
pub use server_name::{check_secret_name, MAX_SECRET_NAME_LEN};
pub use store::{BaseInfo, CatalogStore};
pub use toggle::ServerToggle;
pub use user::UserCatalogUpdate;
pub use user_config::{parse_import, UserConfig};
pub use validate::{parse_validated, validate, ValidationError};
