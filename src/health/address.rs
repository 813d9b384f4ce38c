//! Which addresses probes may reach.
//!
//! A resource's URL or IP comes from its provider, or from whoever can write it, so a probe could
//! otherwise be pointed at the gateway's own network: loopback, private ranges, link-local (cloud
//! metadata services at 169.254.169.254). Unless private networks are allowed
//! (`STACKGATE_HEALTH_ALLOW_PRIVATE`), probes connect only to public addresses, checked after
//! resolution and on the very addresses connected to, so a name that resolves to a private
//! address (or changes to one between check and use) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10) and the IETF protocol block (192.0.0.0/24).
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // Benchmarking (198.18.0.0/15) and reserved (240.0.0.0/4).
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Documentation (2001:db8::/32).
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// The addresses of `(host, port)` a probe may connect to; an error says why there are none.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    allowed(host, found, allow_private)
}

fn allowed(
    host: &str,
    found: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    if found.is_empty() {
        return Err(format!("{host} has no address"));
    }
    let first = found[0].ip();
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| allow_private || is_public(a.ip()))
        .collect();
    if kept.is_empty() {
        return Err(refused(first));
    }
    Ok(kept)
}

/// How every refusal starts.
pub const NOT_PROBED: &str = "not probed:";

/// Why an address is not probed.
pub fn refused(ip: IpAddr) -> String {
    format!(
        "{NOT_PROBED} {ip} is not a public address (set STACKGATE_HEALTH_ALLOW_PRIVATE=true to probe private networks)"
    )
}

/// The HTTP client's resolver: the system's, keeping only the addresses probes may reach.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl GuardedResolver {
    pub fn shared(allow_private: bool) -> Arc<Self> {
        Arc::new(Self { allow_private })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The port is set by the client afterwards.
            let addrs = resolve(&host, 0, allow_private)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!is_public(ip), "{private} counted as public");
        }
        for public in ["1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700::1111"] {
            let ip: IpAddr = public.parse().expect("ip");
            assert!(is_public(ip), "{public} counted as private");
        }
    }

    #[test]
    fn private_answers_are_dropped_unless_allowed() {
        let addr = |s: &str| s.parse::<SocketAddr>().expect("addr");
        let mixed = vec![addr("10.0.0.1:80"), addr("1.1.1.1:80")];
        assert_eq!(
            allowed("h", mixed.clone(), false),
            Ok(vec![addr("1.1.1.1:80")])
        );
        assert_eq!(allowed("h", mixed.clone(), true), Ok(mixed));
        let refused = allowed("h", vec![addr("169.254.169.254:80")], false).expect_err("refused");
        assert!(refused.contains("169.254.169.254"), "{refused}");
    }
}
