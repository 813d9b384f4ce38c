//! The health monitor's settings from the environment and CLI flags (flattened into
//! [`crate::config::ConfigArgs`]), and the duration syntax they use.

use std::time::Duration;

/// Health monitoring settings (`docs/health.md`). Durations are `500ms`, `30s`, `5m`, `2h`, `7d` or
/// plain seconds.
#[derive(clap::Args, Clone, Debug)]
pub struct HealthArgs {
    /// Whether `serve` and `demo` probe resources (`true` or `false`).
    #[arg(
        long = "health-monitor",
        env = "STACKGATE_HEALTH_MONITOR",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub enabled: bool,

    /// How often each resource is probed, unless its organization overrides it for its kind.
    #[arg(long = "health-interval", env = "STACKGATE_HEALTH_INTERVAL", default_value = "60s",
          value_parser = parse_interval, global = true)]
    pub interval: Duration,

    /// The longest a probe may take; longer is UNHEALTHY.
    #[arg(long = "health-timeout", env = "STACKGATE_HEALTH_TIMEOUT", default_value = "10s",
          value_parser = parse_timeout, global = true)]
    pub timeout: Duration,

    /// A probe answering slower than this is DEGRADED.
    #[arg(long = "health-latency-threshold", env = "STACKGATE_HEALTH_LATENCY_THRESHOLD",
          default_value = "2s", value_parser = parse_duration, global = true)]
    pub latency_threshold: Duration,

    /// Consecutive agreeing probes that confirm a change of state (1-100).
    #[arg(long = "health-confirmations", env = "STACKGATE_HEALTH_CONFIRMATIONS",
          default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100), global = true)]
    pub confirmations: u32,

    /// Probes in flight at once on this replica (1-10000).
    #[arg(long = "health-concurrency", env = "STACKGATE_HEALTH_CONCURRENCY",
          default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000), global = true)]
    pub concurrency: u32,

    /// How long probe history is kept (at least 1h).
    #[arg(long = "health-retention", env = "STACKGATE_HEALTH_RETENTION", default_value = "7d",
          value_parser = parse_retention, global = true)]
    pub retention: Duration,

    /// The TCP port probed on servers.
    #[arg(
        long = "health-server-port",
        env = "STACKGATE_HEALTH_SERVER_PORT",
        default_value_t = 22,
        global = true
    )]
    pub server_port: u16,

    /// Whether probes may reach loopback, private and link-local addresses (`true` or `false`).
    /// Off by default: a resource's address comes from outside, and must not turn probes onto
    /// the gateway's own network.
    #[arg(
        long = "health-allow-private",
        env = "STACKGATE_HEALTH_ALLOW_PRIVATE",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub allow_private: bool,
}

impl HealthArgs {
    /// The monitor's configuration.
    pub fn monitor(&self) -> super::MonitorConfig {
        let defaults = super::MonitorConfig::default();
        super::MonitorConfig {
            interval: self.interval,
            concurrency: usize::try_from(self.concurrency).unwrap_or(64),
            confirmations: self.confirmations,
            retention: self.retention,
            probe: super::ProbeConfig {
                timeout: self.timeout,
                slow: self.latency_threshold,
                server_port: self.server_port,
                allow_private: self.allow_private,
                ..defaults.probe.clone()
            },
            ..defaults
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `7d` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 30s, 5m, 2h or 7d"))?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

fn parse_bounded(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < min || d > max {
        return Err(format!(
            "`{text}` is out of range: between {}s and {}s",
            min.as_secs_f64(),
            max.as_secs_f64()
        ));
    }
    Ok(d)
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    parse_bounded(
        text,
        Duration::from_secs(1),
        Duration::from_secs(7 * 86_400),
    )
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    parse_bounded(text, Duration::from_millis(10), Duration::from_secs(300))
}

fn parse_retention(text: &str) -> Result<Duration, String> {
    parse_bounded(
        text,
        Duration::from_secs(3_600),
        Duration::from_secs(3_650 * 86_400),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_interval("0s").is_err());
        assert!(parse_retention("5m").is_err());
    }
}
