//! The notification worker's settings from the environment and CLI flags (flattened into
//! [`crate::config::ConfigArgs`]).

use std::time::Duration;

use crate::health::settings::parse_duration;

/// Notification settings (`docs/health.md`, "Notifications").
#[derive(clap::Args, Clone, Debug)]
pub struct NotifyArgs {
    /// Whether `serve` and `demo` deliver alert notifications in the background (`true` or
    /// `false`). Deliveries wait in the database while it is off.
    #[arg(
        long = "notifications",
        env = "STACKGATE_NOTIFICATIONS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub notifications: bool,

    /// Attempts of one delivery before it is given up as failed (1-50).
    #[arg(long = "notify-max-attempts", env = "STACKGATE_NOTIFY_MAX_ATTEMPTS",
          default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=50), global = true)]
    pub max_attempts: u32,

    /// The wait before the first retry; each further retry waits twice as long, at most an hour.
    #[arg(long = "notify-backoff", env = "STACKGATE_NOTIFY_BACKOFF", default_value = "30s",
          value_parser = parse_backoff, global = true)]
    pub backoff: Duration,

    /// The SMTP relay (`host:port`) that e-mail channels send through, in plain SMTP without
    /// authentication (a local relay). E-mail channels cannot be created without it.
    #[arg(long = "smtp-addr", env = "STACKGATE_SMTP_ADDR", global = true)]
    pub smtp_addr: Option<String>,

    /// The sender address of notification e-mails.
    #[arg(
        long = "smtp-from",
        env = "STACKGATE_SMTP_FROM",
        default_value = "stackgate@localhost",
        global = true
    )]
    pub smtp_from: String,
}

impl NotifyArgs {
    /// The worker's configuration (the outbound guard's settings are the server's, added when
    /// the application state is built).
    pub fn notifier(&self) -> super::NotifierConfig {
        super::NotifierConfig {
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            smtp: self.smtp_addr.clone().map(|addr| super::SmtpConfig {
                addr,
                from: self.smtp_from.clone(),
            }),
            ..super::NotifierConfig::default()
        }
    }
}

fn parse_backoff(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(3_600) {
        return Err(format!("`{text}` is out of range: between 10ms and 1h"));
    }
    Ok(d)
}
