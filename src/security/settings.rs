//! Security settings: each an environment variable with a CLI flag (see `docs/configuration.md`).

/// The flags and variables of [`SecuritySettings`].
#[derive(clap::Args, Clone, Debug, Default)]
pub struct SecurityArgs {
    /// Whether caller-chosen outbound addresses (dock `endpoint` overrides, webhooks) may be
    /// loopback, private or link-local addresses. Off in production; `demo` and tests that point
    /// docks at local fakes turn it on.
    #[arg(
        long,
        env = "STACKGATE_ALLOW_PRIVATE_ENDPOINTS",
        default_value_t = false,
        global = true
    )]
    pub allow_private_endpoints: bool,

    /// Seconds a provider key check (`createDock`, `updateDockCredentials`) may take in all:
    /// one request, no retries, so a slow or silent endpoint cannot hold the caller for long.
    #[arg(
        long,
        env = "STACKGATE_OUTBOUND_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub outbound_timeout_seconds: u64,
}

/// The resolved security settings, passed down from [`crate::config::Config`].
#[derive(Clone, Debug, Default)]
pub struct SecuritySettings {
    /// See [`SecurityArgs::allow_private_endpoints`].
    pub allow_private_endpoints: bool,
    /// See [`SecurityArgs::outbound_timeout_seconds`]; `None` is [`DEFAULT_OUTBOUND_TIMEOUT`].
    pub outbound_timeout: Option<std::time::Duration>,
}

/// How long a provider key check may take when nothing else is set.
pub const DEFAULT_OUTBOUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl SecuritySettings {
    /// The deadline of a provider key check.
    pub fn outbound_timeout(&self) -> std::time::Duration {
        self.outbound_timeout.unwrap_or(DEFAULT_OUTBOUND_TIMEOUT)
    }
}

impl SecurityArgs {
    /// The settings these arguments describe.
    pub fn settings(&self) -> anyhow::Result<SecuritySettings> {
        Ok(SecuritySettings {
            allow_private_endpoints: self.allow_private_endpoints,
            outbound_timeout: Some(std::time::Duration::from_secs(
                self.outbound_timeout_seconds.max(1),
            )),
        })
    }
}
