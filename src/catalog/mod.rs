//! Catalogs: the docker/mcp-gateway catalog model, validation, the data-dir store, the merge
//! of a user's layers, its cache, and metrics (DESIGN.md §3).
//!
//! Everything here is synchronous and does blocking file I/O; async callers wrap store calls
//! in `tokio::task::spawn_blocking`.

pub mod cache;
pub mod digest;
pub mod error;
mod filecache;
pub mod fsutil;
pub mod image_ref;
pub mod layout;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod names;
pub mod overrides;
mod parse;
pub mod policy;
pub mod regen;
pub mod store;
pub mod user;
pub mod validate;

pub use cache::{CatalogCache, CatalogChanged, MergedCatalog};
pub use digest::Digested;
pub use error::{CatalogError, ErrorClass, FileOp};
pub use layout::{DataLayout, UserFile};
pub use merge::{input_hash, merge, BaseLayer, CatalogHash, MergeInputs, TeamLayer};
pub use metrics::CatalogMetrics;
pub use model::{Catalog, Format, Server, ServerType};
pub use names::{validate_name, NameError, NameKind};
pub use overrides::{Override, Overrides};
pub use policy::{CatalogPolicy, PolicyError};
pub use regen::{merge_for_cli, regenerate_all, regenerate_user, RegenerateReport, Regenerated};
pub use store::{BaseInfo, CatalogStore};
pub use user::UserCatalogUpdate;
pub use validate::{parse_validated, validate, ValidationError};
