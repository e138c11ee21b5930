//! Client addresses: which address a request comes from (believing proxy
//! headers only from trusted proxies), address ranges, and the per-subnet key
//! that brute-force counting uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address range, `10.0.0.0/8` or `2001:db8::/32`; a bare address is itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
            None => (s.trim(), None),
        };
        let addr = unmap(a.trim_matches(['[', ']']).parse::<IpAddr>().ok()?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        (bits <= max).then_some(Cidr { addr, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, unmap(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask4(ip, self.bits) == mask4(net, self.bits),
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask6(ip, self.bits) == mask6(net, self.bits),
            _ => false,
        }
    }
}

fn mask4(ip: Ipv4Addr, bits: u8) -> u32 {
    let m = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
    u32::from(ip) & m
}

fn mask6(ip: Ipv6Addr, bits: u8) -> u128 {
    let m = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
    u128::from(ip) & m
}

/// `::ffff:a.b.c.d` is the IPv4 address it carries.
pub fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The bucket failures are counted in: the IPv4 address, or the IPv6 /64.
pub fn subnet(ip: IpAddr) -> String {
    match unmap(ip) {
        IpAddr::V4(v4) => format!("{v4}/32"),
        IpAddr::V6(v6) => format!("{}/64", Ipv6Addr::from(mask6(v6, 64))),
    }
}

/// The client's address. Forwarding headers are believed only when the peer is
/// a trusted proxy; then the address is the right-most one in the chain that is
/// not itself a trusted proxy (a client can prepend whatever it likes, but not
/// change what the proxies appended). `xff` holds every `X-Forwarded-For` line
/// in order; `Forwarded` is read only when there is none, because proxies that
/// append to one header pass a client's other header through untouched.
pub fn client_address(
    peer: IpAddr,
    xff: &[&str],
    forwarded: Option<&str>,
    trusted: &[Cidr],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let peer = unmap(peer);
    if !is_trusted(peer) {
        return peer;
    }
    let mut chain: Vec<Option<IpAddr>> = Vec::new();
    if !xff.is_empty() {
        chain.extend(xff.iter().flat_map(|l| l.split(',')).map(|p| parse_host(p.trim())));
    } else if let Some(f) = forwarded {
        chain.extend(f.split(',').map(forwarded_for));
    }
    // An entry that is not an address ends the walk: nothing left of it is believed.
    for entry in chain.into_iter().rev() {
        match entry.map(unmap) {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return ip,
            None => return peer,
        }
    }
    peer
}

/// The `for=` of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| parse_host(v.trim().trim_matches('"')))?
    })
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:80`, `2001:db8::1`.
fn parse_host(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.split('%').next()?.parse().ok();
    }
    s.rsplit_once(':').and_then(|(h, _)| h.parse::<Ipv4Addr>().ok()).map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.9.9.9")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(Cidr::parse("1.2.3.4").unwrap().contains(ip("1.2.3.4")));
        assert!(Cidr::parse("1.2.3.4/33").is_none() && Cidr::parse("nonsense").is_none());
    }

    #[test]
    fn forwarding_headers_only_from_trusted_proxies() {
        let proxies = [Cidr::parse("10.0.0.5").unwrap()];
        // Not a trusted peer: headers ignored.
        assert_eq!(
            client_address(ip("10.0.0.99"), &["203.0.113.7"], None, &proxies),
            ip("10.0.0.99")
        );
        // Trusted: the right-most untrusted entry, never the client-supplied first one.
        assert_eq!(
            client_address(ip("10.0.0.5"), &["1.2.3.4, 203.0.113.7"], None, &proxies),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), &["203.0.113.7, 10.0.0.5"], None, &proxies),
            ip("203.0.113.7")
        );
        // Several header lines are one list; a client's Forwarded header does not count.
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &["192.0.2.1", "203.0.113.9"],
                Some("for=198.51.100.7"),
                &proxies
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.5"),
                &[],
                Some("for=198.51.100.1, for=\"[2001:db8::9]:443\""),
                &proxies
            ),
            ip("2001:db8::9")
        );
        assert_eq!(client_address(ip("10.0.0.5"), &["garbage"], None, &proxies), ip("10.0.0.5"));
    }

    #[test]
    fn subnets() {
        assert_eq!(subnet(ip("192.0.2.7")), "192.0.2.7/32");
        assert_eq!(subnet(ip("::ffff:192.0.2.7")), "192.0.2.7/32");
        assert_eq!(subnet(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
    }
}
