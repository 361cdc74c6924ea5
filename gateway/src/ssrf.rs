//! Which addresses `/scan/url` may reach: public unicast only, unless private addresses are
//! explicitly allowed (local testing). Checked inside the resolver, so the address checked is
//! the address connected to, and again for IP-literal hosts and every redirect.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is refused, for the error message.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4).map(|_| "an IPv4-mapped private address");
            }
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("the unspecified address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else if seg0 & 0xfe00 == 0xfc00 {
                Some("a unique-local (private) address")
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if seg0 == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("a documentation address")
            } else if seg0 == 0x0064 && v6.segments()[1] == 0xff9b {
                // NAT64 can embed any IPv4 address, private ones included.
                Some("a NAT64 address")
            } else if v6.segments()[..6] == [0, 0, 0, 0, 0, 0] {
                Some("an IPv4-compatible address")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = v4.octets();
    if v4.is_loopback() {
        Some("a loopback address")
    } else if v4.is_private() {
        Some("a private address")
    } else if v4.is_link_local() {
        Some("a link-local address (cloud metadata lives here)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address")
    } else if v4.is_unspecified() || a == 0 {
        Some("a 'this network' address")
    } else if v4.is_multicast() || a >= 240 || v4.is_broadcast() {
        Some("a multicast, reserved or broadcast address")
    } else if v4.is_documentation() || (a == 198 && (b == 18 || b == 19)) || (a == 192 && b == 0) {
        Some("a reserved address")
    } else {
        None
    }
}

/// A resolver that refuses names resolving to any forbidden address.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow_private: bool,
    /// Operator-set fixed mappings (like curl's `--resolve`); trusted, not checked.
    static_hosts: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl GuardedResolver {
    pub fn new(allow_private: bool, static_hosts: HashMap<String, Vec<IpAddr>>) -> Self {
        Self {
            allow_private,
            static_hosts: Arc::new(static_hosts),
        }
    }
}

/// A name that resolved to a forbidden address.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, {reason}")]
pub struct ForbiddenAddress {
    pub host: String,
    pub ip: IpAddr,
    pub reason: &'static str,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            if let Some(ips) = this.static_hosts.get(&host) {
                let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !this.allow_private {
                // One bad address refuses the name: an attacker controls which one is tried.
                if let Some((ip, reason)) = addrs
                    .iter()
                    .find_map(|a| forbidden_reason(a.ip()).map(|r| (a.ip(), r)))
                {
                    return Err(Box::new(ForbiddenAddress { host, ip, reason }) as _);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_private_and_special_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(forbidden_reason(ip).is_some(), "{ip} allowed");
        }
    }

    #[test]
    fn allows_public_unicast() {
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "1.1.1.1"] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(forbidden_reason(ip), None, "{ip} refused");
        }
    }
}
