//! Carves one small subnet per user network out of `gateways.docker.subnet_pool`, skipping
//! every subnet any network on the engine already uses (Docker's default address pools allow
//! only ~31 bridge networks, so gateways bring their own).

use parking_lot::Mutex;
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// An IPv4 network: first address and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    pub base: u32,
    pub prefix: u8,
}

impl Subnet {
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

    fn last(&self) -> u32 {
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

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// The pool and the subnets this process has handed out and not yet released.
#[derive(Debug)]
pub struct SubnetPool {
    pool: Subnet,
    prefix: u8,
    reserved: Mutex<HashSet<Subnet>>,
}

impl SubnetPool {
    /// `pool` is a CIDR (validated in config); `prefix` the size of each user subnet.
    pub fn new(pool: &str, prefix: u8) -> Option<Self> {
        let pool = Subnet::parse(pool)?;
        (prefix >= pool.prefix && prefix <= 30).then(|| Self {
            pool,
            prefix,
            reserved: Mutex::new(HashSet::new()),
        })
    }

    /// Reserves the first subnet that overlaps neither `in_use` (the engine's networks, in
    /// CIDR form; IPv6 and garbage are ignored) nor a reservation. `None` when the pool is full.
    pub fn allocate(&self, in_use: &[String]) -> Option<Subnet> {
        let used: Vec<Subnet> = in_use.iter().filter_map(|s| Subnet::parse(s)).collect();
        let mut reserved = self.reserved.lock();
        let step = 1u64 << (32 - self.prefix);
        let count = 1u64 << (self.prefix - self.pool.prefix);
        (0..count)
            .map(|i| Subnet {
                base: (u64::from(self.pool.base) + i * step) as u32,
                prefix: self.prefix,
            })
            .find(|c| !reserved.contains(c) && !used.iter().any(|u| u.overlaps(c)))
            .inspect(|c| {
                reserved.insert(*c);
            })
    }

    /// Marks a subnet as taken (an adopted gateway's network).
    pub fn reserve(&self, subnet: Subnet) {
        self.reserved.lock().insert(subnet);
    }

    /// Returns a subnet to the pool.
    pub fn release(&self, subnet: Subnet) {
        self.reserved.lock().remove(&subnet);
    }

    /// How many subnets are reserved now.
    #[cfg(test)]
    pub fn reserved(&self) -> usize {
        self.reserved.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_skips_engine_networks_and_reservations() {
        let pool = SubnetPool::new("10.213.0.0/24", 28).unwrap();
        let in_use = vec![
            "172.17.0.0/16".to_string(),
            "10.213.0.0/28".to_string(),
            "fd00::/64".to_string(),
        ];
        let a = pool.allocate(&in_use).unwrap();
        assert_eq!(a.to_string(), "10.213.0.16/28");
        let b = pool.allocate(&in_use).unwrap();
        assert_eq!(b.to_string(), "10.213.0.32/28");
        pool.release(a);
        assert_eq!(pool.allocate(&in_use).unwrap(), a);
    }

    #[test]
    fn a_wide_network_blocks_everything_inside_it_and_the_pool_runs_out() {
        let pool = SubnetPool::new("10.213.0.0/26", 28).unwrap();
        assert!(pool.allocate(&["10.0.0.0/8".to_string()]).is_none());
        let got: Vec<_> = std::iter::from_fn(|| pool.allocate(&[])).collect();
        assert_eq!(got.len(), 4);
    }

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
}
