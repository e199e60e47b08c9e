//! `gateways.upstream_url`: the one shared gateway's `http://host:port`, read into its address
//! when the config is loaded (the resolver takes the address, never the text).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A gateway address: plain HTTP (gateways speak it on their private network), host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl(http::uri::Authority);

impl UpstreamUrl {
    /// The `host:port` requests are sent to.
    pub fn authority(&self) -> &http::uri::Authority {
        &self.0
    }
}

impl std::str::FromStr for UpstreamUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let refused = || {
            format!(
                "`{text}` must be http://host:port (gateways speak plain HTTP on their private network)"
            )
        };
        let uri: http::Uri = text.parse().map_err(|_| refused())?;
        match (uri.scheme_str(), uri.authority()) {
            (Some("http"), Some(a)) => Ok(Self(a.clone())),
            _ => Err(refused()),
        }
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.0)
    }
}

impl<'de> Deserialize<'de> for UpstreamUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

impl Serialize for UpstreamUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::UpstreamUrl;

    #[test]
    fn only_plain_http_with_a_host_is_an_upstream() {
        let u: UpstreamUrl = "http://gw:8811".parse().unwrap();
        assert_eq!(u.authority().as_str(), "gw:8811");
        assert_eq!(u.to_string(), "http://gw:8811");
        for bad in [
            "https://gw:8811",
            "gw:8811",
            "http://",
            "/mcp",
            "http://a b",
        ] {
            assert!(bad.parse::<UpstreamUrl>().is_err(), "{bad}");
        }
    }
}
