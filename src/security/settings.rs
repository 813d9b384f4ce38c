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
}

/// The resolved security settings, passed down from [`crate::config::Config`].
#[derive(Clone, Debug, Default)]
pub struct SecuritySettings {
    /// See [`SecurityArgs::allow_private_endpoints`].
    pub allow_private_endpoints: bool,
}

impl SecurityArgs {
    /// The settings these arguments describe.
    pub fn settings(&self) -> anyhow::Result<SecuritySettings> {
        Ok(SecuritySettings {
            allow_private_endpoints: self.allow_private_endpoints,
        })
    }
}
