//! IP networks (`10.0.0.0/8`, `fd00::/8`, or a bare address) and lists of them: the
//! relay listener's allow-list, the load balancers trusted to send PROXY headers.

use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(ip).into(), 32, self.prefix) == u32::from(net).into()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), 128, self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 peer (`::ffff:10.1.2.3`) is the IPv4 address it maps.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (width - prefix)) & (u128::MAX >> (128 - u32::from(width)))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(
            IpAddr::from_str(addr).map_err(|_| format!("{addr:?} is not an IP address"))?,
        );
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= width)
                .ok_or_else(|| format!("prefix /{p} is not between /0 and /{width}"))?,
        };
        let bits = match network {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        };
        if masked(bits, width, prefix) != bits {
            return Err(format!("{text} has host bits set"));
        }
        Ok(Self { network, prefix })
    }
}

/// Networks, and nothing implied (the PROXY protocol's trusted peers).
#[derive(Clone, Debug, Default)]
pub struct Networks(Vec<Cidr>);

impl Networks {
    pub fn new(networks: Vec<Cidr>) -> Self {
        Self(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }
}

/// Who may use a relay listener: loopback always, plus the configured networks.
#[derive(Clone, Debug, Default)]
pub struct AllowList(Vec<Cidr>);

impl AllowList {
    pub fn new(networks: Vec<Cidr>) -> Self {
        Self(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        canonical(ip).is_loopback() || self.0.iter().any(|net| net.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn contains() {
        let net: Cidr = "10.1.0.0/16".parse().expect("valid");
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.0.9")),
            "IPv4-mapped peers match"
        );
        let net: Cidr = "fd00::/8".parse().expect("valid");
        assert!(net.contains(ip("fd12::1")) && !net.contains(ip("fe80::1")));
        let host: Cidr = "192.0.2.7".parse().expect("valid");
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        let all: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("203.0.113.1")) && !all.contains(ip("2001:db8::1")));
    }

    #[test]
    fn rejects_bad_networks() {
        assert!("10.0.0.1/8".parse::<Cidr>().is_err(), "host bits");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn loopback_is_always_allowed() {
        let list = AllowList::default();
        assert!(
            list.allows(ip("127.0.0.1"))
                && list.allows(ip("::1"))
                && list.allows(ip("::ffff:127.0.0.1"))
        );
        assert!(!list.allows(ip("10.0.0.1")));
        let list = AllowList::new(vec!["10.0.0.0/8".parse().expect("valid")]);
        assert!(list.allows(ip("10.9.9.9")));
    }
}
