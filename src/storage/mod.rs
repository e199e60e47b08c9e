//! The data directory on disk: its layout (every path built from a validated name), atomic
//! file writes (temp file + rename), bounded reads, private permissions, and their error type.
//!
//! The bottom layer: catalog, secrets, owners, audit and the gateway state file use it, and it
//! uses none of them. Calls do blocking file I/O; async callers use `spawn_blocking`.

pub mod atomic;
pub mod error;
pub mod files;
pub mod layout;
pub mod names;
pub mod read_error;

pub use error::{too_large_reason, FileOp, IoError, StorageError};
pub use layout::{DataLayout, UserFile};
pub use names::{validate_name, NameError, NameKind, MAX_NAME_LEN};
pub use read_error::read_error;
