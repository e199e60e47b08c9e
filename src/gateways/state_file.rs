//! `data/gateways/state.json`: when each user's gateway was last used, so a restarted front
//! door continues the idle clock of the gateways it adopts instead of restarting it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The file's content.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActivityState {
    pub version: u32,
    /// Slug → last activity, milliseconds since the epoch.
    pub last_active_ms: HashMap<String, u64>,
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// `<data_dir>/gateways/state.json`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("gateways").join("state.json"),
        }
    }

    /// The saved state; empty when absent or unreadable (it is only a hint).
    pub fn load(&self) -> ActivityState {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "ignoring unreadable gateway state");
                ActivityState::default()
            }),
            Err(_) => ActivityState::default(),
        }
    }

    /// Writes atomically (temp file + rename), 0600.
    pub fn save(&self, state: &ActivityState) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
        crate::storage::atomic::write_atomic(&self.path, &bytes, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let f = StateFile::new(dir.path());
        assert_eq!(f.load(), ActivityState::default());
        let s = ActivityState {
            version: 1,
            last_active_ms: HashMap::from([("alice".to_string(), 42)]),
        };
        f.save(&s).unwrap();
        assert_eq!(f.load(), s);
        std::fs::write(dir.path().join("gateways/state.json"), b"{nope").unwrap();
        assert_eq!(f.load(), ActivityState::default());
    }
}
