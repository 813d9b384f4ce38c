//! Which addresses the gateway may contact on someone else's word.
//!
//! A health probe's URL or IP comes from a provider, a dock's `endpoint` from a tenant: either
//! could point the gateway at its own network (loopback, private ranges, link-local cloud
//! metadata at 169.254.169.254) and use it as a proxy or a port scanner. Unless private networks
//! are allowed by the operator, only public addresses are contacted:
//!
//! - an address written in the URL is checked before any request ([`check_url`]; `0x7f000001`,
//!   `2130706433` and `127.1` are parsed the way the HTTP client parses them, so what is checked
//!   is what would be connected to), and so are the loopback names `localhost` and `*.localhost`;
//! - a name is checked after resolution, on the very addresses connected to ([`resolve`], and
//!   [`GuardedResolver`] inside the HTTP clients), so a name that resolves to a private address,
//!   or changes to one between check and use, is refused too.
//!
//! The HTTP clients using it also follow no redirects and ignore proxy settings, so neither can
//! lead a request past these checks. See `docs/security.md`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address is not contacted. Found in an HTTP error's source chain by [`blocked_by`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    /// The address is loopback, private, link-local or otherwise not on the public internet.
    #[error("{0} is not a public address")]
    NotPublic(String),
    /// Only `http` and `https` are spoken.
    #[error("only http and https URLs are allowed")]
    Scheme,
    /// A user name or password in the URL (it would be sent along, and logged by the target).
    #[error("URLs may not carry a user name or password")]
    Userinfo,
    /// The name does not resolve, or resolves to nothing.
    #[error("cannot resolve {host}: {detail}")]
    Unresolvable { host: String, detail: String },
}

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
    let [a, b, c, _] = ip.octets();
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
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking (198.18.0.0/15) and reserved (240.0.0.0/4).
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // The reserved ::/16 (IPv4-compatible addresses such as ::127.0.0.1 among them).
        || s[0] == 0
        // Discard-only (100::/64).
        || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        // Documentation (2001:db8::/32).
        || (s[0] == 0x2001 && s[1] == 0x0db8))
}

/// The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address leads to.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let join = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(join(hi, lo)),
        [0x2002, hi, lo, ..] => Some(join(hi, lo)),
        _ => None,
    }
}

/// True for the names that always mean this machine (RFC 6761): `localhost` and `*.localhost`.
pub fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Checks a URL before a request: `http`/`https`, no user info, and, unless private networks
/// are allowed, no non-public address or loopback name as its host. Other names are left to
/// [`resolve`] / [`GuardedResolver`].
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), Blocked> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Blocked::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Blocked::Userinfo);
    }
    if allow_private {
        return Ok(());
    }
    let Some(host) = url.host_str() else {
        return Err(Blocked::Scheme);
    };
    // The URL parser has already normalized numeric forms: `0x7f000001` is `127.0.0.1` here.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let refused = match bare.parse::<IpAddr>() {
        Ok(ip) => !is_public(ip),
        Err(_) => is_loopback_name(host),
    };
    if refused {
        return Err(Blocked::NotPublic(bare.to_owned()));
    }
    Ok(())
}

/// The addresses of `(host, port)` that may be contacted; an error says why there are none.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Blocked> {
    if !allow_private && is_loopback_name(host) {
        return Err(Blocked::NotPublic(host.to_owned()));
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Blocked::Unresolvable {
            host: host.to_owned(),
            detail: e.to_string(),
        })?
        .collect();
    allowed(host, found, allow_private)
}

fn allowed(
    host: &str,
    found: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Blocked> {
    let Some(first) = found.first().map(SocketAddr::ip) else {
        return Err(Blocked::Unresolvable {
            host: host.to_owned(),
            detail: "no address".to_owned(),
        });
    };
    let kept: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| allow_private || is_public(a.ip()))
        .collect();
    if kept.is_empty() {
        return Err(Blocked::NotPublic(first.to_string()));
    }
    Ok(kept)
}

/// The [`Blocked`] refusal behind an error (an HTTP client's error carries the resolver's).
pub fn blocked_by<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Blocked> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return Some(blocked);
        }
        cause = e.source();
    }
    None
}

/// An HTTP client's resolver: the system's, keeping only the addresses that may be contacted.
/// Its refusals are [`Blocked`] errors.
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
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
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
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "203.0.113.9",
            "::1",
            "::",
            "::127.0.0.1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
        ] {
            let ip: IpAddr = private.parse().expect("ip");
            assert!(!is_public(ip), "{private} counted as public");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "2606:4700::1111",
            "64:ff9b::101:101",
        ] {
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
        assert_eq!(refused, Blocked::NotPublic("169.254.169.254".into()));
    }

    #[test]
    fn urls_are_checked_as_the_client_parses_them() {
        let check = |s: &str, allow| check_url(&Url::parse(s).expect("url"), allow);
        for refused in [
            "http://127.0.0.1:9/",
            "http://0x7f000001/",
            "http://2130706433/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://[::1]:9/",
            "http://[::ffff:7f00:1]/",
            "http://localhost:9/",
            "http://LOCALHOST./",
            "https://api.internal.localhost/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(
                matches!(check(refused, false), Err(Blocked::NotPublic(_))),
                "{refused}"
            );
            assert_eq!(check(refused, true), Ok(()), "{refused} when allowed");
        }
        assert_eq!(check("ftp://1.1.1.1/", true), Err(Blocked::Scheme));
        assert_eq!(check("file:///etc/passwd", true), Err(Blocked::Scheme));
        assert_eq!(check("http://u:p@1.1.1.1/", true), Err(Blocked::Userinfo));
        assert_eq!(check("https://api.example.com/v2", false), Ok(()));
    }

    #[tokio::test]
    async fn loopback_names_are_refused_without_resolving() {
        let refused = resolve("db.localhost", 5432, false).await;
        assert_eq!(refused, Err(Blocked::NotPublic("db.localhost".into())));
    }

    #[test]
    fn refusals_are_found_behind_other_errors() {
        #[derive(Debug, thiserror::Error)]
        #[error("connect failed")]
        struct Outer(#[source] Box<dyn std::error::Error + Send + Sync>);
        let outer = Outer(Box::new(Blocked::NotPublic("10.0.0.1".into())));
        assert_eq!(
            blocked_by(&outer),
            Some(&Blocked::NotPublic("10.0.0.1".into()))
        );
    }
}
