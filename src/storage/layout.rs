//! Paths of the data directory (DESIGN.md §3). Every path that contains a name is built
//! here, from a name that passed [`validate_name`].

use std::path::{Path, PathBuf};

use super::names::{validate_name, NameError, NameKind};

/// A file in a user's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserFile {
    /// `custom.yaml`: the user's own servers.
    Custom,
    /// `overrides.yaml`: disables and patches.
    Overrides,
    /// `merged.yaml`: generated, given to the gateway.
    Merged,
    /// `secrets.enc`: sealed secrets.
    Secrets,
    /// `owner`: sha256 of the user id the directory belongs to (see `crate::owners`).
    Owner,
}

impl UserFile {
    /// File name inside `users/<slug>/`.
    pub fn file_name(self) -> &'static str {
        match self {
            UserFile::Custom => "custom.yaml",
            UserFile::Overrides => "overrides.yaml",
            UserFile::Merged => "merged.yaml",
            UserFile::Secrets => "secrets.enc",
            UserFile::Owner => "owner",
        }
    }
}

/// The data directory and the paths inside it.
#[derive(Clone, Debug)]
pub struct DataLayout {
    root: PathBuf,
}

impl DataLayout {
    /// A layout rooted at `data_dir` (nothing is created).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        DataLayout {
            root: data_dir.into(),
        }
    }

    /// The data dir itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `catalogs/base/`
    pub fn base_dir(&self) -> PathBuf {
        self.root.join("catalogs").join("base")
    }

    /// `catalogs/teams/`
    pub fn teams_dir(&self) -> PathBuf {
        self.root.join("catalogs").join("teams")
    }

    /// `users/`
    pub fn users_dir(&self) -> PathBuf {
        self.root.join("users")
    }

    /// `audit/`
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// `audit/audit.log`
    pub fn audit_log(&self) -> PathBuf {
        self.audit_dir().join("audit.log")
    }

    /// `catalogs/base/<name>.yaml`
    pub fn base_catalog(&self, name: &str) -> Result<PathBuf, NameError> {
        validate_name(NameKind::BaseCatalog, name)?;
        Ok(self.base_dir().join(format!("{name}.yaml")))
    }

    /// `catalogs/base/<name>.meta.yaml`
    pub fn base_meta(&self, name: &str) -> Result<PathBuf, NameError> {
        validate_name(NameKind::BaseCatalog, name)?;
        Ok(self.base_dir().join(format!("{name}.meta.yaml")))
    }

    /// `catalogs/teams/<team>.yaml`
    pub fn team_catalog(&self, team: &str) -> Result<PathBuf, NameError> {
        validate_name(NameKind::Team, team)?;
        Ok(self.teams_dir().join(format!("{team}.yaml")))
    }

    /// `users/<slug>/`
    pub fn user_dir(&self, slug: &str) -> Result<PathBuf, NameError> {
        validate_name(NameKind::UserSlug, slug)?;
        Ok(self.users_dir().join(slug))
    }

    /// `users/<slug>/<file>`
    pub fn user_file(&self, slug: &str, file: UserFile) -> Result<PathBuf, NameError> {
        Ok(self.user_dir(slug)?.join(file.file_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_design_and_refuse_bad_names() {
        let l = DataLayout::new("/d");
        assert_eq!(
            l.base_meta("official").unwrap(),
            Path::new("/d/catalogs/base/official.meta.yaml")
        );
        assert_eq!(
            l.user_file("alice", UserFile::Secrets).unwrap(),
            Path::new("/d/users/alice/secrets.enc")
        );
        assert_eq!(l.audit_log(), Path::new("/d/audit/audit.log"));
        assert!(l.team_catalog("../x").is_err());
        assert!(l.user_dir("%2e%2e").is_err());
        assert!(l.base_catalog("/etc/passwd").is_err());
    }
}
