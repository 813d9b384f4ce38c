//! The event bus's settings from the environment and CLI flags (flattened into
//! `crate::config::ConfigArgs`): which bus carries events between replicas, and how the outbox
//! relay runs (`docs/events.md`, "How events travel").

use std::time::Duration;

/// Event bus settings.
#[derive(clap::Args, Clone, Debug)]
pub struct EventArgs {
    /// What carries events between replicas: `postgres` (the outbox relay NOTIFYs on the
    /// database). `nats://…` (NATS JetStream) is reserved and not available yet.
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
            bus: self.bus,
            poll: self.poll,
            lease: self.lease,
        }
    }
}

/// Where events travel between replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Bus {
    /// The outbox relay publishes with NOTIFY; every replica LISTENs.
    #[default]
    Postgres,
}

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
        nats if nats.starts_with("nats://") => Err(
            "the NATS JetStream bus (`nats://…`) is not available in this build yet; use `postgres`"
                .to_owned(),
        ),
        other => Err(format!(
            "unknown event bus `{other}`: use `postgres` (the default)"
        )),
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
    fn only_the_postgres_bus_is_accepted() {
        assert_eq!(parse_bus("postgres"), Ok(Bus::Postgres));
        let nats = parse_bus("nats://127.0.0.1:4222").expect_err("reserved");
        assert!(nats.contains("not available"), "{nats}");
        let other = parse_bus("kafka").expect_err("unknown");
        assert!(other.contains("unknown event bus `kafka`"), "{other}");
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
