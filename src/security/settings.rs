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

    /// Which JWTs are accepted: issuer, audience, and published verification keys.
    #[command(flatten)]
    pub jwt: JwtArgs,
}

/// The resolved security settings, passed down from [`crate::config::Config`].
#[derive(Clone, Debug, Default)]
pub struct SecuritySettings {
    /// See [`SecurityArgs::allow_private_endpoints`].
    pub allow_private_endpoints: bool,
    /// See [`JwtArgs`].
    pub jwt: JwtSettings,
}

impl SecurityArgs {
    /// The settings these arguments describe.
    pub fn settings(&self) -> anyhow::Result<SecuritySettings> {
        Ok(SecuritySettings {
            allow_private_endpoints: self.allow_private_endpoints,
            jwt: self.jwt.settings()?,
        })
    }
}

/// The flags and variables that say which JWTs are accepted (see `docs/security.md`). Tokens from
/// an identity provider (Clerk, Auth0, ...) carry `iss` and `aud` and are signed with keys the
/// provider publishes as a JWKS document.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct JwtArgs {
    /// The only `iss` accepted; tokens without it are refused when set.
    #[arg(long, env = "STACKGATE_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Comma-separated audiences; a token's `aud` (a string or an array) must name one of them
    /// when set. Unset: `aud` is not checked.
    #[arg(long, env = "STACKGATE_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// A JWKS document with RS/ES verification keys, chosen by a token's `kid`: a file path, or
    /// an `http(s)://` URL (fetched at start-up and again when a token names an unknown `kid`).
    #[arg(long, env = "STACKGATE_JWT_JWKS", global = true)]
    pub jwt_jwks: Option<String>,
}

/// The resolved [`JwtArgs`].
#[derive(Clone, Debug, Default)]
pub struct JwtSettings {
    /// The required `iss`, if any.
    pub issuer: Option<String>,
    /// The accepted audiences; empty: `aud` is not checked.
    pub audience: Vec<String>,
    /// Where RS/ES keys are published, if anywhere.
    pub jwks: Option<crate::auth::jwks::JwksSource>,
}

impl JwtArgs {
    /// The settings these arguments describe; a JWKS location that is neither an `http(s)` URL
    /// nor a path is refused here, before anything starts.
    pub fn settings(&self) -> anyhow::Result<JwtSettings> {
        let issuer = self
            .jwt_issuer
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let audience = self.jwt_audience.as_deref().unwrap_or_default().split(',');
        let jwks = self
            .jwt_jwks
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        Ok(JwtSettings {
            issuer: issuer.map(str::to_owned),
            audience: audience
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            jwks: jwks.map(crate::auth::jwks::JwksSource::parse).transpose()?,
        })
    }
}
