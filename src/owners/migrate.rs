//! Moving a directory of the old slug scheme to its new slug.
//!
//! A plain `rename` is not enough: sealed secrets name their slug in their AAD, so they are
//! re-sealed for the new one. The new directory is built aside (`users/.claim-<slug>`, a name
//! no listing or claim takes for a user), with the owner marker and copies of the old files,
//! and renamed into place in one step; the old directory is removed after. A crash leaves
//! either the old directory untouched (the next claim starts over) or the complete new one
//! (the old one, if still there, is then no one's to claim: see `super`).

use super::OwnerError;
use crate::secrets::SecretStore;
use crate::storage::files::{read_limited, write_atomic};
use crate::storage::{DataLayout, FileOp, StorageError, UserFile};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Largest user file copied (secrets files are the big ones; see `secrets::store`).
const MAX_COPY: usize = 256 * 1024 * 1024;

/// `users/.claim-<slug>`: where a user directory is assembled before it appears.
pub(super) fn staging_dir(layout: &DataLayout, slug: &str) -> PathBuf {
    layout.users_dir().join(format!(".claim-{slug}"))
}

/// Removes what an interrupted claim left in `staged`.
pub(super) fn remove_leftover(staged: &Path) -> Result<(), OwnerError> {
    match fs::remove_dir_all(staged) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(FileOp::Remove, staged, e).into()),
    }
}

/// Renames the assembled `staged` directory to `dir` (which must not exist) and syncs
/// `users/`, so the new directory is there whole or not at all.
pub(super) fn put_in_place(staged: &Path, dir: &Path) -> Result<(), OwnerError> {
    if dir.exists() {
        let e = io::Error::new(io::ErrorKind::AlreadyExists, "appeared during the claim");
        return Err(StorageError::io(FileOp::Rename, dir, e).into());
    }
    fs::rename(staged, dir).map_err(|e| StorageError::io(FileOp::Rename, dir, e))?;
    let parent = crate::storage::atomic::parent_dir(dir);
    fs::File::open(&parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(FileOp::Write, &parent, e))?;
    Ok(())
}

/// Moves `users/<from>` to `users/<to>` for the id whose marker is `owner`.
pub(super) fn run(
    layout: &DataLayout,
    secrets: &SecretStore,
    from: &str,
    to: &str,
    owner: &str,
) -> Result<(), OwnerError> {
    let old = layout.user_dir(from)?;
    let new = layout.user_dir(to)?;
    let staged = staging_dir(layout, to);
    remove_leftover(&staged)?;
    crate::storage::files::create_private_dir(&staged)?;
    let result =
        fill(secrets, from, to, &old, &staged, owner).and_then(|()| put_in_place(&staged, &new));
    if let Err(e) = result {
        let _ = remove_leftover(&staged);
        return Err(e);
    }
    if let Err(e) = fs::remove_dir_all(&old) {
        // The new directory is complete and in use; the old one is only a leftover.
        tracing::warn!(user = %to, from = %from, error = %e, "removing the old user directory failed");
    }
    Ok(())
}

/// Copies the regular files of `old` into `staged` (secrets re-sealed for `to`) and writes
/// the marker. Anything else in `old` (links, directories) is not ours and stays behind.
fn fill(
    secrets: &SecretStore,
    from: &str,
    to: &str,
    old: &Path,
    staged: &Path,
    owner: &str,
) -> Result<(), OwnerError> {
    let secrets_name = UserFile::Secrets.file_name();
    let entries = fs::read_dir(old).map_err(|e| StorageError::io(FileOp::List, old, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(FileOp::List, old, e))?;
        let ft = entry
            .file_type()
            .map_err(|e| StorageError::io(FileOp::List, old, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Dot files are temp files of interrupted writes; the marker is written below.
        if name.starts_with('.') || name == UserFile::Owner.file_name() {
            continue;
        }
        if !ft.is_file() {
            tracing::warn!(user = %to, entry = %name, "not a regular file; left in the old directory");
            continue;
        }
        let bytes = if name == secrets_name {
            match secrets.resealed_for(from, to)? {
                Some(b) => b,
                None => continue,
            }
        } else {
            let path = entry.path();
            match read_limited(&path, MAX_COPY)? {
                Some(b) => b,
                None => continue,
            }
        };
        write_atomic(&staged.join(&name), &bytes)?;
    }
    write_atomic(&staged.join(UserFile::Owner.file_name()), owner.as_bytes())?;
    Ok(())
}
