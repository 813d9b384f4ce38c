//! Which addresses probes may reach: the outbound guard ([`crate::net::guard`]) with the
//! probes' own wording.
//!
//! A resource's URL or IP comes from its provider, or from whoever can write it, so a probe could
//! otherwise be pointed at the gateway's own network. Unless private networks are allowed
//! (`STACKGATE_HEALTH_ALLOW_PRIVATE`), probes connect only to public addresses, checked after
//! resolution and on the very addresses connected to.

use std::net::{IpAddr, SocketAddr};

use crate::net::guard::{self, Blocked};

pub use crate::net::guard::{GuardedResolver, is_public};

/// The addresses of `(host, port)` a probe may connect to; an error says why there are none.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    guard::resolve(host, port, allow_private)
        .await
        .map_err(|e| describe(&e))
}

/// How every refusal starts.
pub const NOT_PROBED: &str = "not probed:";

/// Why an address is not probed.
pub fn refused(ip: IpAddr) -> String {
    refused_address(&ip.to_string())
}

fn refused_address(address: &str) -> String {
    format!(
        "{NOT_PROBED} {address} is not a public address (set STACKGATE_HEALTH_ALLOW_PRIVATE=true to probe private networks)"
    )
}

/// A guard's refusal in the probes' words (a refused address starts with [`NOT_PROBED`]).
pub fn describe(blocked: &Blocked) -> String {
    match blocked {
        Blocked::NotPublic(address) => refused_address(address),
        Blocked::Unresolvable { host, detail } if detail == "no address" => {
            format!("{host} has no address")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_say_they_were_not_probed() {
        let refused = resolve("localhost", 80, false).await.expect_err("refused");
        assert!(refused.starts_with(NOT_PROBED), "{refused}");
        assert!(
            refused.contains("STACKGATE_HEALTH_ALLOW_PRIVATE"),
            "{refused}"
        );
    }
}
