//! Typed configuration, read once at start-up from the environment and CLI flags, then passed down.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::SecretString;

/// Settings shared by every command. Each flag falls back to the environment variable it names.
#[derive(clap::Args, Clone)]
pub struct ConfigArgs {
    /// PostgreSQL URL of a role that owns the schema: migrations, seeding and `rotate-keys` run
    /// as it. Without it a private cluster is started in --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// PostgreSQL URL the server's pools log in with: a role granted `stackgate_app` that owns
    /// nothing, is no superuser and lacks BYPASSRLS. Unset with DATABASE_URL: the server logs in
    /// as the owner and drops to `stackgate_app` with `SET ROLE`, which `RESET ROLE` undoes.
    /// The private cluster makes its own.
    #[arg(
        long,
        env = "STACKGATE_APP_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub app_database_url: Option<String>,

    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "STACKGATE_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// HS256 secret for JWTs (at least 32 bytes). `demo` makes a random one when unset.
    #[arg(
        long,
        env = "STACKGATE_JWT_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub jwt_secret: Option<String>,

    /// A PEM file with the public key (RSA or EC) that RS256/ES256 JWTs are checked against.
    #[arg(long, env = "STACKGATE_JWT_PUBLIC_KEY_FILE", global = true)]
    pub jwt_public_key_file: Option<PathBuf>,

    /// Comma-separated `key_id:base64(32 bytes)` credential keys; the first is active.
    #[arg(
        long,
        env = "STACKGATE_ENCRYPTION_KEYS",
        global = true,
        hide_env_values = true
    )]
    pub encryption_keys: Option<String>,

    /// Directory holding GraphiQL's assets (see README); the page uses a CDN when unset.
    #[arg(long, env = "STACKGATE_GRAPHIQL_ASSETS", global = true)]
    pub graphiql_assets: Option<PathBuf>,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "STACKGATE_POOL_SIZE", default_value_t = 16, global = true)]
    pub pool_size: usize,

    /// Where the private PostgreSQL cluster lives when DATABASE_URL is unset. Default:
    /// `/var/lib/stackgate` as root, else `$XDG_DATA_HOME/stackgate` (`~/.local/share/stackgate`).
    #[arg(long, env = "STACKGATE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Directory with PostgreSQL's `initdb` and `pg_ctl`; default: PATH, then
    /// `/usr/lib/postgresql/<newest>/bin`.
    #[arg(long, env = "STACKGATE_POSTGRES_BIN", global = true)]
    pub postgres_bin: Option<PathBuf>,

    /// Largest accepted request body, in bytes; larger ones get 413.
    #[arg(long, env = "STACKGATE_BODY_LIMIT", default_value_t = 1024 * 1024, global = true)]
    pub body_limit: usize,

    /// Seconds a resolved viewer (user, org, roles) is reused for the same subject; 0 disables.
    #[arg(
        long,
        env = "STACKGATE_AUTH_CACHE_SECONDS",
        default_value_t = 5,
        global = true
    )]
    pub auth_cache_seconds: u64,

    /// Deepest nesting a query may have.
    #[arg(long, env = "STACKGATE_MAX_DEPTH", default_value_t = 15, global = true)]
    pub max_depth: usize,

    /// Highest complexity a query may have (each field 1; list fields times their `first`).
    #[arg(
        long,
        env = "STACKGATE_MAX_COMPLEXITY",
        default_value_t = 50_000,
        global = true
    )]
    pub max_complexity: usize,

    /// Most aliases a query may use.
    #[arg(
        long,
        env = "STACKGATE_MAX_ALIASES",
        default_value_t = 50,
        global = true
    )]
    pub max_aliases: usize,

    /// Most lexical tokens a query may have.
    #[arg(
        long,
        env = "STACKGATE_MAX_TOKENS",
        default_value_t = 5_000,
        global = true
    )]
    pub max_tokens: usize,

    /// Comma-separated PostgreSQL URLs of streaming standbys that serve reads, logging in as
    /// STACKGATE_APP_DATABASE_URL does (`docs/scale-out.md`, "Reads"). Unset: the primary serves.
    #[arg(
        long,
        env = "STACKGATE_READ_DATABASE_URLS",
        global = true,
        hide_env_values = true
    )]
    pub read_database_urls: Option<String>,

    /// A replica further behind the primary than this is skipped until it catches up.
    #[arg(long, env = "STACKGATE_READ_MAX_LAG", default_value = "5s",
          value_parser = parse_read_duration, global = true)]
    pub read_max_lag: std::time::Duration,

    /// How long a read carrying a write's position waits for a replica to replay it before the
    /// primary serves it.
    #[arg(long, env = "STACKGATE_READ_WAIT", default_value = "250ms",
          value_parser = parse_read_duration, global = true)]
    pub read_wait: std::time::Duration,

    /// Health monitoring settings.
    #[command(flatten)]
    pub health: crate::health::settings::HealthArgs,

    /// Alert notification settings.
    #[command(flatten)]
    pub notify: crate::notify::settings::NotifyArgs,

    /// Sync scheduling settings (lease length, claim interval).
    #[command(flatten)]
    pub sync: crate::sync::settings::SyncArgs,
    /// Event bus settings (which bus, the outbox relay's poll and lease).
    #[command(flatten)]
    pub events: crate::events::settings::EventArgs,

    /// Security settings (tokens, outbound guard, budgets, rate limits).
    #[command(flatten)]
    pub security: crate::security::settings::SecurityArgs,

    /// This replica's name: the `replica` label of every metric it exports. Default: the host
    /// name (a Kubernetes pod's name).
    #[arg(long, env = "STACKGATE_REPLICA_ID", global = true)]
    pub replica_id: Option<String>,
}

impl ConfigArgs {
    /// The query limits these arguments set.
    pub fn limits(&self) -> crate::graphql::QueryLimits {
        crate::graphql::QueryLimits {
            depth: self.max_depth,
            complexity: self.max_complexity,
            parse: crate::graphql::pipeline::limits::Limits {
                max_tokens: self.max_tokens,
                max_aliases: self.max_aliases,
            },
        }
    }

    /// Where reads go: the replicas of `--read-database-urls`, and how far behind they may be.
    pub fn reads(&self) -> anyhow::Result<crate::db::replicas::ReadSettings> {
        let urls: Vec<SecretString> = self
            .read_database_urls
            .iter()
            .flat_map(|urls| urls.split(','))
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(|url| SecretString::from(url.to_owned()))
            .collect();
        for (i, url) in urls.iter().enumerate() {
            use secrecy::ExposeSecret;
            let url = url.expose_secret();
            anyhow::ensure!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "STACKGATE_READ_DATABASE_URLS: entry {} is not a postgres:// URL",
                i + 1
            );
        }
        anyhow::ensure!(
            urls.len() <= MAX_READ_REPLICAS,
            "STACKGATE_READ_DATABASE_URLS names {} replicas; at most {MAX_READ_REPLICAS}",
            urls.len()
        );
        Ok(crate::db::replicas::ReadSettings {
            urls,
            max_lag: self.read_max_lag,
            wait: self.read_wait,
        })
    }

    /// This replica's name: `--replica-id`, else the host name, else `stackgate`.
    pub fn replica_id(&self) -> String {
        let named = self
            .replica_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok());
        let name: String = named
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .chars()
            .take(MAX_REPLICA_ID)
            .collect();
        match name.is_empty() {
            true => "stackgate".to_owned(),
            false => name,
        }
    }

    /// The data directory: `--data-dir`, else a default the cluster's user can reach.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/stackgate");
        }
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        data_home.map_or_else(|| PathBuf::from(".stackgate"), |d| d.join("stackgate"))
    }
}

/// The server's settings once resolved: secrets wrapped, database chosen.
#[derive(Clone)]
pub struct Config {
    /// The URL the server's pools log in with (see [`ConfigArgs::app_database_url`]); never
    /// needs to be the schema owner's.
    pub database_url: SecretString,
    pub listen: SocketAddr,
    /// HS256 secret (verifies and mints tokens); optional when a public key is configured.
    pub jwt_secret: Option<SecretString>,
    /// PEM public key for RS256/ES256 tokens.
    pub jwt_public_key: Option<Vec<u8>>,
    pub graphiql_assets: Option<PathBuf>,
    /// Headers GraphiQL's editor starts with (demo mode prefills the owner's token).
    pub graphiql_headers: Option<String>,
    pub pool_size: usize,
    pub body_limit: usize,
    pub limits: crate::graphql::QueryLimits,
    /// Seconds a resolved viewer is reused; 0 disables the cache.
    pub auth_cache_seconds: u64,
    /// Credential keys (`STACKGATE_ENCRYPTION_KEYS`); without them docks cannot be created.
    pub encryption_keys: Option<SecretString>,
    /// Whether this process claims and runs due syncs in the background.
    pub run_scheduler: bool,
    /// How long sync leases last and how often due docks are claimed.
    pub sync: crate::sync::settings::SyncTiming,
    /// Health monitoring settings.
    pub health: crate::health::MonitorConfig,
    /// Whether this process probes resources' health in the background.
    pub run_health: bool,
    /// Alert notification settings (the outbound guard's come from `security`).
    pub notify: crate::notify::NotifierConfig,
    /// Whether this process delivers alert notifications in the background.
    pub run_notifications: bool,
    /// Token, outbound, budget and rate-limit settings.
    pub security: crate::security::settings::SecuritySettings,
    /// Read replicas (none by default).
    pub reads: crate::db::replicas::ReadSettings,
    /// The event bus and the outbox relay.
    pub events: crate::events::settings::EventSettings,
    /// This replica's name, the `replica` label of its metrics (the first server of a process
    /// sets it: the recorder is process-wide).
    pub replica_id: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &"[redacted]")
            .field("listen", &self.listen)
            .field("jwt_secret", &"[redacted]")
            .field("graphiql_assets", &self.graphiql_assets)
            .field("pool_size", &self.pool_size)
            .field("body_limit", &self.body_limit)
            .field("read_replicas", &self.reads.urls.len())
            .finish_non_exhaustive()
    }
}

/// The longest replica name kept (a label value of every metric).
pub const MAX_REPLICA_ID: usize = 128;

/// The most replicas `STACKGATE_READ_DATABASE_URLS` may name (each is a pool and a metrics label).
pub const MAX_READ_REPLICAS: usize = 16;

/// A read setting's duration: `500ms`, `5s`… from 10 ms to 1 h.
fn parse_read_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = crate::health::settings::parse_duration(text)?;
    let (min, max) = (
        std::time::Duration::from_millis(10),
        std::time::Duration::from_secs(3600),
    );
    if d < min || d > max {
        return Err(format!("`{text}` is out of range: between 10ms and 1h"));
    }
    Ok(d)
}

/// The smallest JWT secret accepted, in bytes (HS256 wants at least the hash's size).
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// Checks a JWT secret's length, with a message that says what to do.
pub fn check_jwt_secret(secret: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        secret.len() >= MIN_JWT_SECRET_LEN,
        "STACKGATE_JWT_SECRET must be at least {MIN_JWT_SECRET_LEN} bytes long"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config {
            database_url: SecretString::from("postgres://u:hunter2@h/db"),
            listen: "127.0.0.1:1".parse().expect("addr"),
            jwt_secret: Some(SecretString::from("supersecretsupersecretsupersecret")),
            jwt_public_key: None,
            graphiql_assets: None,
            graphiql_headers: None,
            pool_size: 1,
            body_limit: 1,
            limits: Default::default(),
            auth_cache_seconds: 0,
            encryption_keys: None,
            run_scheduler: false,
            sync: Default::default(),
            health: Default::default(),
            run_health: false,
            notify: Default::default(),
            run_notifications: false,
            security: Default::default(),
            reads: crate::db::replicas::ReadSettings {
                urls: vec![SecretString::from("postgres://u:hunter2@r/db")],
                ..Default::default()
            },
            events: Default::default(),
            replica_id: "r".into(),
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("supersecret"), "{shown}");
    }

    #[test]
    fn short_jwt_secrets_are_refused() {
        assert!(check_jwt_secret("short").is_err());
        assert!(check_jwt_secret(&"x".repeat(32)).is_ok());
    }
}
