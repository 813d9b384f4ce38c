//! Security settings: each an environment variable with a CLI flag (see `docs/configuration.md`).

use super::rate::{RateSettings, parse_rate};
use super::sockets::SocketLimits;

/// The flags and variables of [`SecuritySettings`].
#[derive(clap::Args, Clone, Debug)]
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

    /// Operations per user or API key (`<count>/s|m|h`, or `off`).
    #[arg(
        long,
        env = "STACKGATE_RATE_PER_PRINCIPAL",
        default_value = "200/s",
        global = true
    )]
    pub rate_per_principal: String,

    /// Operations without valid credentials per client address.
    #[arg(
        long,
        env = "STACKGATE_RATE_PER_IP",
        default_value = "20/s",
        global = true
    )]
    pub rate_per_ip: String,

    /// Mutations per organization.
    #[arg(
        long,
        env = "STACKGATE_RATE_MUTATIONS_PER_ORG",
        default_value = "50/s",
        global = true
    )]
    pub rate_mutations_per_org: String,

    /// Provider-calling dock operations (`createDock`, `updateDockCredentials`, `syncDock`) per
    /// organization.
    #[arg(
        long,
        env = "STACKGATE_RATE_DOCK_OPS_PER_ORG",
        default_value = "30/m",
        global = true
    )]
    pub rate_dock_ops_per_org: String,

    /// `syncDock` calls per dock.
    #[arg(
        long,
        env = "STACKGATE_RATE_SYNCS_PER_DOCK",
        default_value = "6/m",
        global = true
    )]
    pub rate_syncs_per_dock: String,

    /// WebSocket connections that may wait for `connection_init` at once.
    #[arg(
        long,
        env = "STACKGATE_WS_MAX_PENDING",
        default_value_t = 64,
        global = true
    )]
    pub ws_max_pending: usize,

    /// WebSocket connections one user or API key may hold on a replica.
    #[arg(
        long,
        env = "STACKGATE_WS_MAX_PER_PRINCIPAL",
        default_value_t = 32,
        global = true
    )]
    pub ws_max_per_principal: usize,

    /// Subscriptions one WebSocket connection may run at once.
    #[arg(
        long,
        env = "STACKGATE_WS_MAX_SUBSCRIPTIONS",
        default_value_t = 100,
        global = true
    )]
    pub ws_max_subscriptions: usize,

    /// Most ids one `nodes(ids:)` call may name.
    #[arg(
        long,
        env = "STACKGATE_MAX_NODE_IDS",
        default_value_t = 100,
        global = true
    )]
    pub max_node_ids: usize,

    /// Largest response body in bytes; a larger answer is refused with `QUERY_TOO_COMPLEX`.
    #[arg(
        long,
        env = "STACKGATE_RESPONSE_LIMIT",
        default_value_t = 16 * 1024 * 1024,
        global = true
    )]
    pub response_limit: usize,

    /// Longest wait for a pooled database connection, in milliseconds, before the operation is
    /// refused as `RATE_LIMITED` (the server is at capacity) instead of stalling.
    #[arg(
        long,
        env = "STACKGATE_POOL_TIMEOUT_MS",
        default_value_t = 5_000,
        global = true
    )]
    pub pool_timeout_ms: u64,

    /// Seconds a provider key check (`createDock`, `updateDockCredentials`) may take in all:
    /// one request, no retries, so a slow or silent endpoint cannot hold the caller for long.
    #[arg(
        long,
        env = "STACKGATE_OUTBOUND_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub outbound_timeout_seconds: u64,

    /// What happens to a document outside the trusted documents manifest: `off` (it runs),
    /// `log` (it runs; the first sighting of each is logged), `enforce` (refused with
    /// `PERSISTED_QUERY_NOT_IN_LIST`).
    #[arg(
        long,
        env = "STACKGATE_TRUSTED_DOCUMENTS",
        value_enum,
        default_value_t = TrustMode::Off,
        global = true
    )]
    pub trusted_documents: TrustMode,

    /// The trusted documents manifest: a directory of `.graphql` files, an Apollo persisted-query
    /// manifest, or a JSON object `{"<sha256>": "<document>"}`.
    #[arg(long, env = "STACKGATE_TRUSTED_DOCUMENTS_MANIFEST", global = true)]
    pub trusted_documents_manifest: Option<std::path::PathBuf>,

    /// Whether clients may register documents by SHA-256 (automatic persisted queries).
    #[arg(
        long,
        env = "STACKGATE_APQ",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub apq: bool,

    /// The most bytes of registered documents one replica keeps (least recently used go first).
    #[arg(
        long,
        env = "STACKGATE_APQ_CACHE_BYTES",
        default_value_t = 16 * 1024 * 1024,
        global = true
    )]
    pub apq_cache_bytes: usize,

    /// The shortest time, in milliseconds, between two runs of one live query: events arriving
    /// meanwhile are covered by the next run.
    #[arg(
        long,
        env = "STACKGATE_LIVE_INTERVAL_MS",
        default_value_t = 250,
        global = true
    )]
    pub live_interval_ms: u64,

    /// The most bytes of HTTP query answers one replica keeps to serve again until an event of
    /// their organization commits; 0 turns the shared response cache off.
    #[arg(
        long,
        env = "STACKGATE_RESPONSE_CACHE_BYTES",
        default_value_t = 64 * 1024 * 1024,
        global = true
    )]
    pub response_cache_bytes: usize,

    /// The longest a cached answer is served, in seconds: how stale a field that changes without
    /// an event (a probe's `checkedAt`) may be in it.
    #[arg(
        long,
        env = "STACKGATE_RESPONSE_CACHE_SECONDS",
        default_value_t = 10,
        global = true
    )]
    pub response_cache_seconds: u64,

    /// Which JWTs are accepted: issuer, audience, and published verification keys.
    #[command(flatten)]
    pub jwt: JwtArgs,

    /// Whether a token whose subject is unknown creates its user from the token's `sub`,
    /// `email` and `name` on first use (`false`: such tokens are `UNAUTHENTICATED`).
    #[arg(
        long,
        env = "STACKGATE_AUTO_PROVISION_USERS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub auto_provision_users: bool,

    /// How many organizations one user may create with `createOrganization`, ever (deleted
    /// ones count too).
    #[arg(
        long,
        env = "STACKGATE_MAX_ORGANIZATIONS_PER_USER",
        default_value_t = 20,
        global = true
    )]
    pub max_organizations_per_user: u32,
}

/// The resolved security settings, passed down from [`crate::config::Config`].
#[derive(Clone, Debug)]
pub struct SecuritySettings {
    /// See [`SecurityArgs::allow_private_endpoints`].
    pub allow_private_endpoints: bool,
    pub rates: RateSettings,
    pub sockets: SocketLimits,
    pub max_node_ids: usize,
    pub response_limit: usize,
    pub pool_timeout: std::time::Duration,
    /// See [`SecurityArgs::outbound_timeout_seconds`]; `None` is [`DEFAULT_OUTBOUND_TIMEOUT`].
    pub outbound_timeout: Option<std::time::Duration>,
    /// See [`JwtArgs`].
    pub jwt: JwtSettings,
    /// Automatic persisted queries and the trusted documents manifest.
    pub documents: DocumentSettings,
    /// See [`SecurityArgs::live_interval_ms`].
    pub live_interval: std::time::Duration,
    /// See [`SecurityArgs::response_cache_bytes`].
    pub response_cache_bytes: usize,
    /// See [`SecurityArgs::response_cache_seconds`].
    pub response_cache_age: std::time::Duration,
    /// Who may sign up, and how many organizations they may create.
    pub onboarding: Onboarding,
}

/// See [`SecurityArgs::auto_provision_users`] and [`SecurityArgs::max_organizations_per_user`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Onboarding {
    /// Unknown token subjects become users on first use.
    pub auto_provision_users: bool,
    /// The most organizations one user may create.
    pub max_organizations_per_user: u32,
}

impl Default for Onboarding {
    fn default() -> Self {
        Self {
            auto_provision_users: true,
            max_organizations_per_user: 20,
        }
    }
}

/// How long a provider key check may take when nothing else is set.
pub const DEFAULT_OUTBOUND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl SecuritySettings {
    /// The deadline of a provider key check.
    pub fn outbound_timeout(&self) -> std::time::Duration {
        self.outbound_timeout.unwrap_or(DEFAULT_OUTBOUND_TIMEOUT)
    }
}

impl Default for SecuritySettings {
    /// The production defaults (the same as the flags' defaults).
    fn default() -> Self {
        Self {
            allow_private_endpoints: false,
            rates: RateSettings::default(),
            sockets: SocketLimits::default(),
            max_node_ids: 100,
            response_limit: 16 * 1024 * 1024,
            pool_timeout: std::time::Duration::from_secs(5),
            outbound_timeout: None,
            jwt: JwtSettings::default(),
            documents: DocumentSettings::default(),
            live_interval: std::time::Duration::from_millis(250),
            response_cache_bytes: 64 * 1024 * 1024,
            response_cache_age: std::time::Duration::from_secs(10),
            onboarding: Onboarding::default(),
        }
    }
}

impl SecurityArgs {
    /// The settings these arguments describe.
    pub fn settings(&self) -> anyhow::Result<SecuritySettings> {
        let rate =
            |name: &str, text: &str| parse_rate(text).map_err(|e| anyhow::anyhow!("{name}: {e}"));
        Ok(SecuritySettings {
            allow_private_endpoints: self.allow_private_endpoints,
            rates: RateSettings {
                per_principal: rate("STACKGATE_RATE_PER_PRINCIPAL", &self.rate_per_principal)?,
                per_ip: rate("STACKGATE_RATE_PER_IP", &self.rate_per_ip)?,
                mutations_per_org: rate(
                    "STACKGATE_RATE_MUTATIONS_PER_ORG",
                    &self.rate_mutations_per_org,
                )?,
                dock_ops_per_org: rate(
                    "STACKGATE_RATE_DOCK_OPS_PER_ORG",
                    &self.rate_dock_ops_per_org,
                )?,
                syncs_per_dock: rate("STACKGATE_RATE_SYNCS_PER_DOCK", &self.rate_syncs_per_dock)?,
            },
            sockets: SocketLimits {
                pending: self.ws_max_pending.max(1),
                per_principal: self.ws_max_per_principal.max(1),
                subscriptions: self.ws_max_subscriptions.max(1),
                ..SocketLimits::default()
            },
            max_node_ids: self.max_node_ids.max(1),
            response_limit: self.response_limit.max(1024),
            pool_timeout: std::time::Duration::from_millis(self.pool_timeout_ms.max(100)),
            outbound_timeout: Some(std::time::Duration::from_secs(
                self.outbound_timeout_seconds.max(1),
            )),
            jwt: self.jwt.settings()?,
            documents: DocumentSettings {
                mode: self.trusted_documents,
                manifest: self.trusted_documents_manifest.clone(),
                apq: self.apq,
                apq_cache_bytes: self.apq_cache_bytes,
            },
            live_interval: std::time::Duration::from_millis(self.live_interval_ms.max(10)),
            response_cache_bytes: self.response_cache_bytes,
            response_cache_age: std::time::Duration::from_secs(self.response_cache_seconds),
            onboarding: Onboarding {
                auto_provision_users: self.auto_provision_users,
                max_organizations_per_user: self.max_organizations_per_user,
            },
        })
    }
}

/// What happens to a document outside the manifest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TrustMode {
    /// Nothing: any document runs.
    #[default]
    Off,
    /// It runs, and the first sighting of each is logged.
    Log,
    /// It is refused.
    Enforce,
}

/// The settings of trusted documents.
#[derive(Clone, Debug)]
pub struct DocumentSettings {
    pub mode: TrustMode,
    /// Where the manifest is, if anywhere.
    pub manifest: Option<std::path::PathBuf>,
    /// Whether clients may register documents by hash (automatic persisted queries).
    pub apq: bool,
    /// The most bytes of registered document text a replica keeps (least recently used first out).
    pub apq_cache_bytes: usize,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        Self {
            mode: TrustMode::Off,
            manifest: None,
            apq: true,
            apq_cache_bytes: 16 * 1024 * 1024,
        }
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
