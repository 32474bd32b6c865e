//! `--trusted-proxies`: the peers whose X-Forwarded-* headers are believed.

use std::net::IpAddr;

#[derive(Debug, Clone, Copy)]
struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - self.prefix) };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    cidrs: Vec<Cidr>,
}

impl TrustedProxies {
    /// Err names the CIDR that is not one.
    pub fn parse(cidrs: &[String]) -> Result<TrustedProxies, String> {
        let mut out = Vec::with_capacity(cidrs.len());
        for text in cidrs {
            let bad = || format!("\"{text}\" is not an IPv4 or IPv6 CIDR (like 10.0.0.0/8 or fd00::/8)");
            let (address, bits) = match text.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (text.as_str(), None),
            };
            let addr: IpAddr = address.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match bits {
                None => max,
                Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => b.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
                Some(_) => return Err(bad()),
            };
            out.push(Cidr { addr, prefix });
        }
        Ok(TrustedProxies { cidrs: out })
    }

    pub fn has(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.cidrs.iter().any(|c| c.contains(ip))
    }

    fn has_text(&self, address: &str) -> bool {
        address.parse::<IpAddr>().map(|ip| self.has(ip)).unwrap_or(false)
    }

    /// The client's address: the peer, or — when the peer is a trusted proxy — the right-most address in
    /// X-Forwarded-For that is not itself a trusted proxy (the left-most if all are).
    pub fn real_client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> String {
        let peer = peer.to_canonical();
        let Some(forwarded) = forwarded_for.filter(|_| self.has(peer)) else {
            return peer.to_string();
        };
        let hops: Vec<&str> = forwarded.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        for hop in hops.iter().rev() {
            if !self.has_text(hop) {
                return (*hop).to_string();
            }
        }
        hops.first().map(|h| (*h).to_string()).unwrap_or_else(|| peer.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_cidrs() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into(), "fd00::/8".into(), "192.0.2.1".into()]).unwrap();
        assert!(t.has("10.1.2.3".parse().unwrap()));
        assert!(t.has("::ffff:10.1.2.3".parse().unwrap()));
        assert!(t.has("fd12::1".parse().unwrap()));
        assert!(t.has("192.0.2.1".parse().unwrap()));
        assert!(!t.has("192.0.2.2".parse().unwrap()));
        for bad in ["10.0.0.0/33", "10.0.0.0/", "10.0.0.0/+8", "nope", "fd00::/129"] {
            assert!(TrustedProxies::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn real_client_is_the_right_most_untrusted_hop() {
        let t = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
        let proxy: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(t.real_client_address(proxy, Some("1.1.1.1, 2.2.2.2, 10.0.0.5")), "2.2.2.2");
        assert_eq!(t.real_client_address(proxy, Some("10.0.0.1, 10.0.0.2")), "10.0.0.1");
        assert_eq!(t.real_client_address("8.8.8.8".parse().unwrap(), Some("1.1.1.1")), "8.8.8.8");
        assert_eq!(t.real_client_address(proxy, None), "10.0.0.9");
    }
}
