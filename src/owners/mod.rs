//! Which user id a user directory belongs to.
//!
//! `data/users/<slug>/owner` holds `sha256:<hex>` of the raw user id the directory was claimed
//! for. Every path that serves a user's data (the API's user routes, the per-user gateway
//! lifecycle) claims the directory first: a directory marked for another id is refused, never
//! served. Slugs are injective ([`crate::auth::slug`]), so the marker is what catches the cases
//! the name alone cannot: directories made by the previous slug scheme, where a plain id could
//! equal another user's hashed slug.
//!
//! A claim of id `I` with slug `S`:
//! - `users/S` marked for `I`: served. Marked for another id: refused (403).
//! - `users/S` without a marker (made before markers existed): marked for `I` and served,
//!   unless another id could have made it. That is the case when `S` has the shape of an old
//!   hashed slug (`...-<10 hex>`: the old scheme's name for some hashed id, which the plain id
//!   `S` could have copied) or of a new hashed slug (`...--<hash>`: only an old plain id spelled
//!   that way could have made it). Then the claim is refused (409) until the id it belongs to
//!   moves it away, or an admin confirms the owner with `mcp-frontdoor users claim`.
//! - `users/S` absent, but the old scheme's directory of `I` exists without a marker: it moves
//!   to `users/S` (see [`migrate`]) and is served. The plain id that spells the old name is
//!   refused while that directory exists (above), so the first use after the upgrade cannot be
//!   won by the copycat.
//! - nothing on disk: a read finds nothing and creates nothing; a write makes `users/S` with
//!   the marker already inside (built aside, renamed into place), so a directory the new
//!   scheme makes is never unmarked.

mod migrate;

use crate::auth::principal::{is_hashed_slug, legacy_slug, looks_legacy_hashed, slug};
use crate::catalog::ErrorClass;
use crate::secrets::{SecretStore, SecretsError};
use crate::storage::files::{create_private_dir, read_limited, write_atomic};
use crate::storage::{DataLayout, FileOp, NameError, StorageError, UserFile};
use dashmap::DashMap;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Looks again after a claim that failed on the file system (another replica's claim).
const CLAIM_ATTEMPTS: u32 = 3;

/// Why a user directory cannot be used by this id.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// The directory is marked for another user id.
    #[error("the data directory users/{slug} belongs to another user id")]
    Taken {
        /// The directory's slug.
        slug: String,
    },
    /// An unmarked directory another id could have made under the old slug scheme.
    #[error(
        "users/{slug} predates owner markers and another user id may have made it under the \
         old slug scheme; the id it belongs to takes it over on first use, or an admin confirms \
         the owner with `mcp-frontdoor users claim --user <id>`"
    )]
    Unconfirmed {
        /// The directory's slug.
        slug: String,
    },
    /// An admin named a hashed slug that has no directory (a new one needs the user id).
    #[error("no user directory users/{slug}; name the user by id to create one")]
    NoSuchSlug {
        /// The slug asked for.
        slug: String,
    },
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("the claim task failed: {0}")]
    Task(String),
}

impl OwnerError {
    /// How the HTTP layer answers (only `Taken` and `Unconfirmed` are the caller's doing).
    pub fn class(&self) -> ErrorClass {
        match self {
            OwnerError::Taken { .. } | OwnerError::Unconfirmed { .. } => ErrorClass::BadRequest,
            OwnerError::NoSuchSlug { .. } => ErrorClass::NotFound,
            OwnerError::Name(_) => ErrorClass::BadRequest,
            OwnerError::Storage(_) => ErrorClass::Internal,
            OwnerError::Secrets(e) => e.class(),
            OwnerError::Task(_) => ErrorClass::Internal,
        }
    }
}

/// What a successful claim found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The directory was already marked for this id.
    Existing,
    /// An unmarked directory got this id's marker.
    Marked,
    /// The old scheme's directory `from` moved to the new slug.
    Migrated { from: String },
    /// A new, marked directory.
    Created,
    /// Nothing on disk, and a read does not make anything.
    Absent,
}

/// The outcome of [`Owners::claim_blocking`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub slug: String,
    pub how: Claimed,
}

/// What the claimant is about to do with the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads: a missing directory stays missing.
    Read,
    /// Writes: a missing directory is made (marked).
    Write,
    /// `mcp-frontdoor users claim`: the admin says this id is the owner, so an unmarked
    /// directory another id could have made is marked for it instead of refused.
    AdminConfirm,
}

/// Claims user directories for user ids, remembering the ones already checked.
pub struct Owners {
    layout: DataLayout,
    secrets: Arc<SecretStore>,
    /// slug → the id whose claim succeeded in this process (the fast path of every request).
    verified: DashMap<String, String>,
    /// Claims that touch the disk run one at a time, so two first requests never race a move.
    disk: Mutex<()>,
}

/// What `users/<slug>` holds.
#[derive(Debug, PartialEq, Eq)]
enum DirState {
    Absent,
    Unmarked,
    Marked(String),
}

/// The marker of `id`: `sha256:<hex>`.
pub fn marker_of(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Longest marker file read (a marker is 71 bytes).
const MAX_MARKER: usize = 256;

fn dir_state(dir: &Path) -> Result<DirState, OwnerError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            let e = io::Error::other("not a directory");
            return Err(StorageError::io(FileOp::Read, dir, e).into());
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirState::Absent),
        Err(e) => return Err(StorageError::io(FileOp::Read, dir, e).into()),
    }
    let marker = dir.join(UserFile::Owner.file_name());
    Ok(match read_limited(&marker, MAX_MARKER)? {
        None => DirState::Unmarked,
        Some(b) => DirState::Marked(String::from_utf8_lossy(&b).trim().to_string()),
    })
}

/// True when an unmarked directory named `slug` could have been made for another id than the
/// one whose new slug is `slug` (module docs).
fn ambiguous(slug: &str) -> bool {
    looks_legacy_hashed(slug) || is_hashed_slug(slug)
}

impl Owners {
    /// Claims over `layout`; `secrets` re-seals the values of directories that move.
    pub fn new(layout: DataLayout, secrets: Arc<SecretStore>) -> Self {
        Self {
            layout,
            secrets,
            verified: DashMap::new(),
            disk: Mutex::new(()),
        }
    }

    /// Whether `id`'s directory (`slug`, the caller's already derived slug of `id`) has been
    /// claimed for it by this process: the per-request check, with no hashing or allocation.
    pub fn is_verified(&self, slug: &str, id: &str) -> bool {
        self.verified.get(slug).is_some_and(|v| *v == id)
    }

    /// The slug of `id`, once its directory is known to be its own (claimed on first use; a
    /// map lookup after that).
    pub async fn claim(self: &Arc<Self>, id: &str, access: Access) -> Result<String, OwnerError> {
        let s = slug(id);
        if self.is_verified(&s, id) {
            return Ok(s);
        }
        let this = self.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || this.claim_blocking(&id, access))
            .await
            .map_err(|e| OwnerError::Task(e.to_string()))?
            .map(|c| c.slug)
    }

    /// The claim itself (blocking file I/O; module docs). Front door replicas sharing the
    /// data dir may claim the same new user at once: the loser's staging or rename fails on
    /// the files the winner moved, and a second look finds the directory made (and claimed
    /// for the same id, or refused as another's).
    pub fn claim_blocking(&self, id: &str, access: Access) -> Result<Claim, OwnerError> {
        let mut attempt = 0;
        loop {
            match self.claim_once(id, access) {
                Err(OwnerError::Storage(e)) if attempt < CLAIM_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "user directory claim raced another replica; looking again");
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempt as u64));
                }
                other => return other,
            }
        }
    }

    fn claim_once(&self, id: &str, access: Access) -> Result<Claim, OwnerError> {
        let s = slug(id);
        let owner = marker_of(id);
        let _disk = self.disk.lock();
        let dir = self.layout.user_dir(&s)?;
        let how = match dir_state(&dir)? {
            DirState::Marked(m) if m == owner => Claimed::Existing,
            DirState::Marked(_) => return Err(OwnerError::Taken { slug: s }),
            DirState::Unmarked if access != Access::AdminConfirm && ambiguous(&s) => {
                tracing::warn!(user = %s, "unmarked user directory that another id may own; refused");
                return Err(OwnerError::Unconfirmed { slug: s });
            }
            DirState::Unmarked => {
                write_atomic(&dir.join(UserFile::Owner.file_name()), owner.as_bytes())?;
                Claimed::Marked
            }
            DirState::Absent => match self.legacy_dir(id, &s)? {
                Some(from) => {
                    migrate::run(&self.layout, &self.secrets, &from, &s, &owner)?;
                    Claimed::Migrated { from }
                }
                None if access == Access::Read => {
                    // Nothing to protect yet; the first write claims again and makes it.
                    return Ok(Claim {
                        slug: s,
                        how: Claimed::Absent,
                    });
                }
                None => {
                    let staged = self.stage(&s, &owner)?;
                    migrate::put_in_place(&staged, &dir)?;
                    Claimed::Created
                }
            },
        };
        match &how {
            Claimed::Existing | Claimed::Created | Claimed::Absent => {}
            Claimed::Marked => tracing::info!(user = %s, "user directory marked with its owner"),
            Claimed::Migrated { from } => {
                tracing::info!(user = %s, from = %from, "user directory moved from its old slug")
            }
        }
        self.verified.insert(s.clone(), id.to_owned());
        Ok(Claim { slug: s, how })
    }

    /// The old scheme's directory of `id` when it should move to `new`: it exists and has no
    /// marker (a marked one was claimed by the plain id that spells its name).
    fn legacy_dir(&self, id: &str, new: &str) -> Result<Option<String>, OwnerError> {
        let old = legacy_slug(id);
        if old == new {
            return Ok(None);
        }
        // Old slugs with a leading hyphen never had a valid directory.
        let Ok(dir) = self.layout.user_dir(&old) else {
            return Ok(None);
        };
        Ok((dir_state(&dir)? == DirState::Unmarked).then_some(old))
    }

    /// An empty staging directory for `slug` with `owner`'s marker inside.
    fn stage(&self, slug: &str, owner: &str) -> Result<PathBuf, OwnerError> {
        let staged = migrate::staging_dir(&self.layout, slug);
        migrate::remove_leftover(&staged)?;
        create_private_dir(&staged)?;
        write_atomic(&staged.join(UserFile::Owner.file_name()), owner.as_bytes())?;
        Ok(staged)
    }

    /// For an admin naming a user by a hashed slug: the slug, when its directory exists.
    pub fn existing(&self, slug: &str) -> Result<String, OwnerError> {
        let dir = self.layout.user_dir(slug)?;
        match dir_state(&dir)? {
            DirState::Absent => Err(OwnerError::NoSuchSlug {
                slug: slug.to_string(),
            }),
            _ => Ok(slug.to_string()),
        }
    }
}

/// Where the data of `id` is read from without claiming anything (the read-only CLI): its
/// directory, or the old scheme's one a claim would move.
pub fn locate(layout: &DataLayout, id: &str) -> Result<String, OwnerError> {
    let s = slug(id);
    match dir_state(&layout.user_dir(&s)?)? {
        DirState::Marked(m) if m != marker_of(id) => Err(OwnerError::Taken { slug: s }),
        DirState::Unmarked if ambiguous(&s) => Err(OwnerError::Unconfirmed { slug: s }),
        DirState::Absent => {
            let old = legacy_slug(id);
            let moves = old != s
                && layout
                    .user_dir(&old)
                    .ok()
                    .is_some_and(|d| matches!(dir_state(&d), Ok(DirState::Unmarked)));
            Ok(if moves { old } else { s })
        }
        _ => Ok(s),
    }
}

/// True when `users/<slug>` was claimed no later than `started` (second precision): only
/// then may a running container of that slug be adopted. A container started before the
/// marker existed was started for whoever held the slug under the old scheme.
pub fn claimed_before(layout: &DataLayout, slug: &str, started: SystemTime) -> bool {
    let Ok(path) = layout.user_file(slug, UserFile::Owner) else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|marked| secs(marked) <= secs(started))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
