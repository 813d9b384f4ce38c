//! The event bus's settings from the environment and CLI flags (flattened into
//! `crate::config::ConfigArgs`): which bus carries events between replicas, and how the outbox
//! relay runs (`docs/events.md`, "How events travel").

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

/// Event bus settings.
#[derive(clap::Args, Clone, Debug)]
pub struct EventArgs {
    /// What carries events between replicas: `postgres` (the outbox relay NOTIFYs on the
    /// database) or `nats://[user:password@]host:port` (the relay publishes to a NATS JetStream
    /// stream every replica consumes).
    #[arg(long = "event-bus", env = "STACKGATE_EVENT_BUS", default_value = "postgres",
          value_parser = parse_bus, global = true)]
    pub bus: Bus,

    /// How often the relay looks for committed outbox rows (1ms-1s): the most an event waits in
    /// the outbox when the relay is idle.
    #[arg(long = "outbox-poll", env = "STACKGATE_OUTBOX_POLL", default_value = "20ms",
          value_parser = parse_poll, global = true)]
    pub poll: Duration,

    /// How long the relay's lease lasts without renewal (1s-1h, whole seconds): after the holder
    /// dies or stalls, another replica's relay takes over within about this long.
    #[arg(long = "relay-lease", env = "STACKGATE_RELAY_LEASE", default_value = "5s",
          value_parser = parse_lease, global = true, id = "relay_lease")]
    pub lease: Duration,
}

impl EventArgs {
    /// The resolved settings.
    pub fn settings(&self) -> EventSettings {
        EventSettings {
            bus: self.bus.clone(),
            poll: self.poll,
            lease: self.lease,
        }
    }
}

/// Where events travel between replicas.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Bus {
    /// The outbox relay publishes with NOTIFY; every replica LISTENs.
    #[default]
    Postgres,
    /// The outbox relay publishes to NATS JetStream; every replica consumes the stream.
    Nats(NatsUrl),
}

/// A `nats://` URL, possibly with credentials: its Debug output shows neither user nor
/// password.
#[derive(Clone)]
pub struct NatsUrl(SecretString);

impl NatsUrl {
    /// The URL, credentials included: for connecting only.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    /// `host:port`, without credentials: what logs and errors may name.
    pub fn host(&self) -> &str {
        let rest = self.0.expose_secret().trim_start_matches("nats://");
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        rest.split('/').next().unwrap_or_default()
    }
}

impl std::fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NatsUrl(nats://{})", self.host())
    }
}

impl PartialEq for NatsUrl {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for NatsUrl {}

/// The event bus's resolved settings.
#[derive(Clone, Debug)]
pub struct EventSettings {
    pub bus: Bus,
    /// How often the lease holder's relay looks for committed outbox rows.
    pub poll: Duration,
    /// How long the relay's lease lasts without renewal.
    pub lease: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            bus: Bus::Postgres,
            poll: Duration::from_millis(20),
            lease: Duration::from_secs(5),
        }
    }
}

fn parse_bus(text: &str) -> Result<Bus, String> {
    match text.trim() {
        "postgres" => Ok(Bus::Postgres),
        nats if nats.starts_with("nats://") => {
            let url = NatsUrl(SecretString::from(nats.to_owned()));
            let host = url.host();
            let port = host.rsplit_once(':').map(|(_, port)| port);
            if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().is_err()) {
                return Err("the NATS bus needs `nats://[user:password@]host[:port]`".to_owned());
            }
            Ok(Bus::Nats(url))
        }
        // Never echo the value: it may be a URL with a password in another scheme.
        _ => {
            Err("unknown event bus: use `postgres` (the default) or `nats://host:port`".to_owned())
        }
    }
}

/// `500ms`, `2s` or plain milliseconds.
fn parse_millis(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 20ms or 5s"))?;
    let unit_ms = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ms, s or m"
            ));
        }
    };
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

fn parse_poll(text: &str) -> Result<Duration, String> {
    let d = parse_millis(text)?;
    if d < Duration::from_millis(1) || d > Duration::from_secs(1) {
        return Err(format!("`{text}` is out of range: between 1ms and 1s"));
    }
    Ok(d)
}

fn parse_lease(text: &str) -> Result<Duration, String> {
    let d = parse_millis(text)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(3_600) || d.subsec_millis() != 0 {
        return Err(format!(
            "`{text}` is out of range: whole seconds between 1s and 1h"
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_and_nats_buses_are_accepted_and_credentials_never_shown() {
        assert_eq!(parse_bus("postgres"), Ok(Bus::Postgres));
        let Ok(Bus::Nats(url)) = parse_bus("nats://relay:s3cret@127.0.0.1:4222") else {
            panic!("a NATS URL is accepted");
        };
        assert_eq!(url.host(), "127.0.0.1:4222");
        assert_eq!(
            url.secret().expose_secret(),
            "nats://relay:s3cret@127.0.0.1:4222"
        );
        let shown = format!("{:?}", Bus::Nats(url));
        assert!(
            !shown.contains("s3cret") && !shown.contains("relay"),
            "{shown}"
        );
        assert!(shown.contains("127.0.0.1:4222"), "{shown}");
        assert!(parse_bus("nats://").is_err());
        assert!(parse_bus("nats://host:port").is_err());
        let other = parse_bus("kafka://user:s3cret@x").expect_err("unknown");
        assert!(
            other.contains("unknown event bus") && !other.contains("s3cret"),
            "{other}"
        );
    }

    #[test]
    fn poll_and_lease_are_bounded() {
        assert_eq!(parse_poll("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_poll("15"), Ok(Duration::from_millis(15)));
        assert!(parse_poll("0ms").is_err());
        assert!(parse_poll("2s").is_err());
        assert_eq!(parse_lease("5s"), Ok(Duration::from_secs(5)));
        assert!(parse_lease("500ms").is_err());
        assert!(parse_lease("1500ms").is_err());
        assert!(parse_lease("2h").is_err());
    }
}
