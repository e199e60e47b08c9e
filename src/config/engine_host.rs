//! `gateways.docker.host`: the container engine's address, read into its kind at load, so the
//! runtime, the policed API, the host-engine mount and the catalog policy agree on one reading.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineHost {
    /// `unix:///path` (or a bare absolute path).
    Unix(PathBuf),
    /// `tcp://host:port` or `http://host:port`: `host:port`, plain HTTP.
    Tcp(String),
}

/// Docker's default socket.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

impl EngineHost {
    /// The engine this process uses: the config's, else `DOCKER_HOST`, else the default
    /// socket (a `DOCKER_HOST` this cannot read is taken as a `host:port`).
    pub fn resolve(configured: Option<&EngineHost>) -> EngineHost {
        if let Some(h) = configured {
            return h.clone();
        }
        match std::env::var("DOCKER_HOST") {
            Ok(v) => v.parse().unwrap_or(EngineHost::Tcp(v)),
            Err(_) => EngineHost::Unix(PathBuf::from(DEFAULT_SOCKET)),
        }
    }

    /// The socket path of a unix engine.
    pub fn unix_socket(&self) -> Option<&Path> {
        match self {
            Self::Unix(p) => Some(p),
            Self::Tcp(_) => None,
        }
    }
}

impl std::str::FromStr for EngineHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let refused =
            || format!("`{text}` must be unix:///path, tcp://host:port or http://host:port");
        if let Some(path) = text
            .strip_prefix("unix://")
            .or_else(|| text.starts_with('/').then_some(text))
        {
            return match path {
                p if p.starts_with('/') => Ok(Self::Unix(PathBuf::from(p))),
                _ => Err(refused()),
            };
        }
        let addr = text
            .strip_prefix("tcp://")
            .or_else(|| text.strip_prefix("http://"))
            .map(|a| a.trim_end_matches('/'))
            .ok_or_else(refused)?;
        match addr.parse::<http::uri::Authority>() {
            Ok(_) if !addr.is_empty() => Ok(Self::Tcp(addr.to_string())),
            _ => Err(refused()),
        }
    }
}

impl fmt::Display for EngineHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

impl<'de> Deserialize<'de> for EngineHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl Serialize for EngineHost {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::EngineHost;
    use std::path::Path;

    #[test]
    fn every_spelling_is_read_once_into_its_kind() {
        let read = |t: &str| t.parse::<EngineHost>();
        let sock = read("unix:///run/docker.sock").unwrap();
        assert_eq!(sock.unix_socket(), Some(Path::new("/run/docker.sock")));
        assert_eq!(sock.to_string(), "unix:///run/docker.sock");
        assert_eq!(read("/run/docker.sock").unwrap(), sock);
        assert_eq!(
            read("tcp://engine:2375").unwrap(),
            EngineHost::Tcp("engine:2375".into())
        );
        assert_eq!(
            read("http://engine:2375/").unwrap(),
            EngineHost::Tcp("engine:2375".into())
        );
        assert_eq!(read("tcp://engine:2375").unwrap().unix_socket(), None);
        for bad in [
            "ssh://me@engine",
            "unix://relative.sock",
            "tcp://",
            "engine:2375",
            "",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_configured_engine_wins_over_the_environment() {
        let mine = EngineHost::Tcp("a:1".into());
        assert_eq!(EngineHost::resolve(Some(&mine)), mine);
    }
}
