//! Per-user secrets, sealed with AES-256-GCM under a rotating master key ring (DESIGN.md §3).
//!
//! The API takes values and only ever returns names; plaintext leaves this module only as the
//! gateway's secrets file ([`SecretStore::render_gateway_secrets`]). Calls do blocking file
//! I/O; async callers use `tokio::task::spawn_blocking`.

mod derive;
mod error;
mod keyring;
mod migrate;
mod rotate;
mod seal;
mod store;
mod value;

pub use derive::{hkdf_sha256, hmac_sha256, same_mac, DerivedKey};
pub use error::SecretsError;
pub use keyring::{KeyId, KeyRing, MasterKey, KEY_LEN};
// Secret names are declared in catalogs; validated there.
pub use crate::catalog::{check_secret_name, MAX_SECRET_NAME_LEN};
pub use rotate::{rotate, verify_keyring, RotateReport, VerifyReport};
pub use seal::{SealedValue, SecretsFile, FILE_VERSION};
pub use store::{SecretStore, MAX_SECRETS_PER_USER, MAX_VALUE_BYTES};
pub use value::SecretValue;
