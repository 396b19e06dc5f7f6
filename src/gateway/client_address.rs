//! Which address a request comes from, and how per-address counters key it.
//!
//! The client's address is the TCP peer, unless the peer is one of the
//! operator's trusted proxies (`--trusted-proxy`), whose `X-Forwarded-For`
//! then names it. Every per-address rule (the OAuth endpoints' limits, the
//! device form's wrong-code counter, `rateLimitBy: ip`) counts that address,
//! an IPv6 one by its /64: a single host is routinely given a whole /64, so
//! counting its addresses apart would give it unlimited counters.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::HeaderMap;

/// An IP network (`10.0.0.0/8`, `::1/128`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let bad = || format!("`{value}` is not an IP network; use e.g. 10.0.0.0/8, 192.168.1.5 or ::1/128");
        let (address, prefix) = match value.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (value.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) if self.network.is_ipv4() => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            other => other,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The TCP peer of a request, when it came through a listener.
pub(crate) fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

/// Whether the peer is a configured reverse proxy, whose `X-Forwarded-*`
/// headers are believed.
pub(crate) fn from_trusted_proxy(trusted: &[Cidr], peer: Option<IpAddr>) -> bool {
    peer.is_some_and(|ip| trusted.iter().any(|net| net.contains(ip)))
}

/// The client's address: the peer, or behind trusted proxies the rightmost
/// `X-Forwarded-For` entry that is not one of them (entries further left
/// are the client's own claims).
pub(crate) fn client_ip(trusted: &[Cidr], headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
    if !from_trusted_proxy(trusted, peer) {
        return peer;
    }
    let chain = headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect::<Vec<_>>();
    let hops = chain.iter().flat_map(|value| value.split(',')).map(str::trim).collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { return peer };
        if !from_trusted_proxy(trusted, Some(ip)) {
            return Some(ip);
        }
    }
    peer
}

/// The key a per-address counter uses for `ip`: an IPv4 address as it is, an
/// IPv6 address as its /64 (`2001:db8:1:2::/64`; an IPv4-mapped one as the
/// IPv4 address), `unknown` without an address.
pub(crate) fn counter_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let network = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{network}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cidr, client_ip, counter_key};

    #[test]
    fn counters_key_ipv6_by_its_64() {
        let key = |text: &str| counter_key(Some(text.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::7"), "one /64, one counter");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7", "a mapped IPv4 address counts as itself");
        assert_eq!(counter_key(None), "unknown");
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.0.0.2".parse().unwrap());
        let proxy = Some("10.0.0.1".parse().unwrap());
        assert_eq!(client_ip(&trusted, &headers, proxy), Some("203.0.113.9".parse().unwrap()));
        let stranger = Some("192.0.2.1".parse().unwrap());
        assert_eq!(client_ip(&trusted, &headers, stranger), stranger, "anyone else's chain is not believed");
    }
}
