//! The sync scheduler's timing from the environment and CLI flags (flattened into
//! [`crate::config::ConfigArgs`]).
//!
//! The lease bounds how long a dock waits after its replica dies: the lease runs out at most
//! one lease length after the dead replica's last renewal, and another replica claims the dock
//! at its next look, at most one claim interval later (`docs/sync.md`, "Replicas that die").

use std::time::Duration;

use crate::health::settings::parse_duration;

/// The longest lease the claim function accepts (`stackgate_claim_due_docks`: one day).
const MAX_LEASE: Duration = Duration::from_secs(86_400);
/// The shortest lease: renewed every third of it, whole seconds in the database.
const MIN_LEASE: Duration = Duration::from_secs(3);

/// Sync scheduling settings (`docs/configuration.md`).
#[derive(clap::Args, Clone, Debug)]
pub struct SyncArgs {
    /// How long a replica's claim on a dock lasts without renewal; renewed every third of it
    /// while the run lasts (whole seconds, 3s to 1d).
    #[arg(long = "sync-lease", env = "STACKGATE_SYNC_LEASE", default_value = "15s",
          value_parser = parse_lease, global = true)]
    pub lease: Duration,

    /// How often each replica looks for due docks, and for docks whose lease ran out
    /// (100ms to 1h).
    #[arg(long = "sync-claim-interval", env = "STACKGATE_SYNC_CLAIM_INTERVAL",
          default_value = "2s", value_parser = parse_claim_interval, global = true)]
    pub claim_interval: Duration,
}

impl SyncArgs {
    /// The scheduler's timing.
    pub fn timing(&self) -> SyncTiming {
        SyncTiming {
            lease: self.lease,
            claim_interval: self.claim_interval,
        }
    }
}

/// How long leases last and how often due docks are claimed; the same on every replica of a
/// deployment (a replica's own name is made per process, see
/// [`super::scheduler::default_owner`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncTiming {
    pub lease: Duration,
    pub claim_interval: Duration,
}

impl Default for SyncTiming {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            claim_interval: Duration::from_secs(2),
        }
    }
}

fn parse_lease(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.subsec_nanos() != 0 {
        return Err(format!("`{text}` is not a whole number of seconds"));
    }
    if !(MIN_LEASE..=MAX_LEASE).contains(&d) {
        return Err(format!("`{text}` is out of range: between 3s and 1d"));
    }
    Ok(d)
}

fn parse_claim_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3_600) {
        return Err(format!("`{text}` is out of range: between 100ms and 1h"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_whole_seconds_within_the_claim_functions_bounds() {
        assert_eq!(parse_lease("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_lease("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_lease("1d"), Ok(MAX_LEASE));
        assert!(parse_lease("2s").is_err());
        assert!(parse_lease("2d").is_err());
        assert!(parse_lease("4500ms").is_err());
        assert!(parse_lease("soon").is_err());
    }

    #[test]
    fn claim_intervals_are_bounded() {
        assert_eq!(
            parse_claim_interval("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert!(parse_claim_interval("10ms").is_err());
        assert!(parse_claim_interval("2h").is_err());
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            sync: SyncArgs,
        }
        let cli = Cli::try_parse_from(["stackgate"]).expect("defaults parse");
        assert_eq!(cli.sync.timing(), SyncTiming::default());
    }
}
