//! `gateways.docker.frontdoor_container`: which container the front door runs in, read into
//! its kind at load (the runtime matches on it, never on the text).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// The container to join to each gateway network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnContainer {
    /// Detect: `/.dockerenv` present and the hostname names a container on this engine.
    Auto,
    /// Never join networks (the front door runs on the host).
    None,
    /// This container name or id.
    Named(String),
}

impl OwnContainer {
    fn as_str(&self) -> &str {
        match self {
            Self::Auto => "auto",
            Self::None => "none",
            Self::Named(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for OwnContainer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "auto" => Ok(Self::Auto),
            "none" => Ok(Self::None),
            "" => Err(de::Error::custom("must be auto, none, or a container name")),
            name => Ok(Self::Named(name.to_string())),
        }
    }
}

impl Serialize for OwnContainer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::OwnContainer;

    #[test]
    fn read_into_its_kind_once() {
        let read = |t: &str| serde_json::from_str::<OwnContainer>(t);
        assert_eq!(read(r#""auto""#).unwrap(), OwnContainer::Auto);
        assert_eq!(read(r#""none""#).unwrap(), OwnContainer::None);
        assert_eq!(
            read(r#""frontdoor-1""#).unwrap(),
            OwnContainer::Named("frontdoor-1".into())
        );
        assert!(read(r#"" ""#).is_err());
        let named = OwnContainer::Named("fd".into());
        assert_eq!(serde_json::to_string(&named).unwrap(), r#""fd""#);
    }
}
