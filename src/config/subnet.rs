//! IPv4 networks in config (`gateways.docker.subnet_pool`) and from the engine: one parser,
//! run when the config is read, so no call site parses the text again.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::net::Ipv4Addr;

/// An IPv4 network: first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub base: u32,
    pub prefix: u8,
}

impl Subnet {
    /// The network of `ip` with `prefix` bits (host bits cleared; `prefix` at most 32).
    pub const fn new(ip: Ipv4Addr, prefix: u8) -> Self {
        Self {
            base: ip.to_bits() & mask(prefix),
            prefix,
        }
    }

    /// Parses `a.b.c.d/n` (host bits are cleared).
    pub fn parse(text: &str) -> Option<Subnet> {
        let (addr, prefix) = text.split_once('/')?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let ip: Ipv4Addr = addr.parse().ok()?;
        Some(Subnet {
            base: u32::from(ip) & mask(prefix),
            prefix,
        })
    }

    /// The range's last address.
    pub fn last(&self) -> u32 {
        self.base | !mask(self.prefix)
    }

    /// True when the two ranges share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

const fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// Read from `a.b.c.d/n`, written back the same way.
impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Subnet::parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "`{text}` is not an IPv4 CIDR such as 10.213.0.0/16"
            ))
        })
    }
}

impl Serialize for Subnet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_symmetric() {
        let a = Subnet::parse("10.1.0.0/16").unwrap();
        let b = Subnet::parse("10.1.2.0/28").unwrap();
        let c = Subnet::parse("10.2.0.0/28").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(
            Subnet::parse("10.1.2.3/28").unwrap().to_string(),
            "10.1.2.0/28"
        );
    }

    #[test]
    fn config_text_is_read_once_into_the_type() {
        let s: Subnet = serde_json::from_str(r#""10.213.0.0/16""#).unwrap();
        assert_eq!(
            (s.base, s.prefix),
            (u32::from(Ipv4Addr::new(10, 213, 0, 0)), 16)
        );
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""10.213.0.0/16""#);
        for bad in [
            r#""10.213.0.0""#,
            r#""10.213.0.0/33""#,
            r#""fd00::/64""#,
            "16",
        ] {
            assert!(serde_json::from_str::<Subnet>(bad).is_err(), "{bad}");
        }
    }
}
