//! The command line: `serve`, `migrate`, `demo`, `seed`, `schema`, `token`, `rotate-keys`.

use std::path::Path;

use clap::{Parser, Subcommand};
use secrecy::SecretString;

use crate::config::{self, Config, ConfigArgs};
use crate::devkit::embedded::{self, Durability, EmbeddedPostgres};
use crate::devkit::{demo, seed};
use crate::{db, server};

/// stackgate: a multi-tenant GraphQL gateway for an infrastructure control plane.
#[derive(Parser)]
#[command(name = "stackgate", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the API (a private PostgreSQL in --data-dir when DATABASE_URL is unset).
    Serve {
        /// Apply pending migrations before serving.
        #[arg(long)]
        migrate: bool,
    },
    /// Apply pending migrations.
    Migrate,
    /// Start PostgreSQL if needed, migrate, seed the `acme` demo and serve GraphiQL with a token.
    Demo,
    /// Migrate, then write the deterministic data set `org-0` … `org-9` (idempotent per scale).
    Seed {
        /// Size: 10·N projects and 200·N resources per organization.
        #[arg(long, default_value_t = 1, value_parser = parse_scale)]
        scale: u32,
    },
    /// Print the GraphQL SDL the server serves.
    Schema,
    /// Mint an HS256 JWT for a user (needs STACKGATE_JWT_SECRET).
    Token {
        /// The user's external id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// The organization slug (the token's `org`).
        #[arg(long)]
        org: Option<String>,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: i64,
    },
    /// Re-encrypt every stored credential to the first (active) key of STACKGATE_ENCRYPTION_KEYS.
    RotateKeys,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Schema => {
            let _ =
                std::io::Write::write_all(&mut std::io::stdout(), crate::graphql::sdl().as_bytes());
            Ok(())
        }
        Command::Token { user, org, ttl } => {
            let secret = jwt_secret(&cli.config)?;
            let keys = crate::auth::jwt::JwtKeys::hs256(&secret)
                .with_claims(&cli.config.security.jwt.settings()?);
            say(&keys.mint(&user, org.as_deref(), ttl)?);
            Ok(())
        }
        Command::Migrate => {
            let database = Database::open(&cli.config).await?;
            let applied = db::run_migrations(&database.url).await?;
            say(&format!(
                "applied {} migration(s){}",
                applied.len(),
                list(&applied)
            ));
            Ok(())
        }
        Command::Seed { scale } => {
            let started = std::time::Instant::now();
            let database = Database::open(&cli.config).await?;
            db::run_migrations(&database.url).await?;
            let mut conn = db::connect_owner(&database.url).await?;
            let summary = seed::seed(&mut conn, scale).await?;
            say(&format!(
                "seeded {summary} in {:.2} s",
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Command::Serve { migrate } => serve(cli.config, migrate).await,
        Command::Demo => run_demo(cli.config).await,
        Command::RotateKeys => rotate_keys(&cli.config).await,
    }
}

async fn serve(args: ConfigArgs, migrate: bool) -> anyhow::Result<()> {
    let database = Database::open(&args).await?;
    if migrate || database.cluster.is_some() {
        db::run_migrations(&database.url).await?;
    }
    let secret = args
        .jwt_secret
        .is_some()
        .then(|| jwt_secret(&args))
        .transpose()?;
    let config = resolve(&args, database.serving_url().await?, secret, None)?;
    let running = server::start(config).await?;
    tracing::info!(addr = %running.addr, "serving");
    server::shutdown_signal().await;
    running.shutdown().await?;
    drop(database);
    Ok(())
}

/// The monitor's default interval, and the demo's shorter one.
const DEFAULT_HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
const DEMO_HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

async fn run_demo(args: ConfigArgs) -> anyhow::Result<()> {
    let database = Database::open(&args).await?;
    db::run_migrations(&database.url).await?;
    let secret = match &args.jwt_secret {
        Some(_) => jwt_secret(&args)?,
        None => SecretString::from(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )),
    };
    let token = crate::auth::jwt::JwtKeys::hs256(&secret)
        .with_claims(&args.security.jwt.settings()?)
        .mint(demo::OWNER_EXTERNAL_ID, Some(demo::ORG_SLUG), 24 * 3600)?;
    let mut config = resolve(
        &args,
        database.serving_url().await?,
        Some(secret),
        Some(token.clone()),
    )?;
    if config.encryption_keys.is_none() {
        config.encryption_keys = Some(demo_encryption_key(&args.data_dir())?);
    }
    // Probe often enough that the flapping fake services show transitions within a minute,
    // unless another interval was chosen.
    if config.health.interval == DEFAULT_HEALTH_INTERVAL {
        config.health.interval = DEMO_HEALTH_INTERVAL;
    }
    // The demo's fake services and providers listen on 127.0.0.1.
    config.health.probe.allow_private = true;
    config.security.allow_private_endpoints = true;
    let keyring = crate::crypto::Keyring::from_config(
        config
            .encryption_keys
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret),
    )?;
    // Seeds `acme`, starts the fake providers (kept running by `demo`), syncs and links them.
    let demo = demo::prepare(&database.url, std::sync::Arc::new(keyring)).await?;
    let running = server::start(config).await?;
    let synced: Vec<String> = demo
        .world
        .fakes
        .iter()
        .zip(&demo.runs)
        .map(|((fake, handle), run)| {
            let outcome = match run {
                Some(r) if r.succeeded() => format!(
                    "{} resources",
                    r.counts.created + r.counts.updated + r.counts.unchanged
                ),
                Some(_) => "sync failed (see the log)".to_owned(),
                None => "sync left to the scheduler".to_owned(),
            };
            format!("  {} at {}: {outcome}", fake.provider(), handle.base_url())
        })
        .collect();
    say(&format!(
        "stackgate demo is up: organization `{}`, owner `{}`.\nFake providers (docks synced every 5 min):\n{}\n\
         Alerts go to the webhook channel `{}` at {}, which prints each delivery here.\n\
         GraphiQL: http://{}/graphql\nAuthorization: Bearer {token}\nPress Ctrl-C to stop.",
        demo::ORG_SLUG,
        demo::OWNER_EXTERNAL_ID,
        synced.join("\n"),
        demo::CHANNEL_NAME,
        demo.receiver.url,
        running.addr
    ));
    server::shutdown_signal().await;
    running.shutdown().await?;
    drop(demo);
    drop(database);
    say("stopped.");
    Ok(())
}

/// The demo's credential key, kept (mode 600) beside its cluster so that docks created in one
/// demo session still decrypt in the next.
fn demo_encryption_key(data_dir: &Path) -> anyhow::Result<SecretString> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join("demo-encryption-key");
    if let Ok(spec) = std::fs::read_to_string(&path) {
        return Ok(SecretString::from(spec.trim().to_owned()));
    }
    let spec = crate::crypto::Keyring::generate_spec("demo");
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(secrecy::ExposeSecret::expose_secret(&spec).as_bytes())?;
    Ok(spec)
}

/// The database a command uses: `DATABASE_URL`, else a private cluster kept running while this
/// value lives.
pub struct Database {
    /// The schema owner's URL: migrations, seeding, admin commands.
    pub url: SecretString,
    /// The serving login's URL (`STACKGATE_APP_DATABASE_URL`, or the private cluster's own).
    pub app_url: Option<SecretString>,
    pub cluster: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the private cluster in `--data-dir`.
    pub async fn open(args: &ConfigArgs) -> anyhow::Result<Self> {
        if let Some(url) = &args.database_url {
            return Ok(Self {
                url: SecretString::from(url.clone()),
                app_url: args.app_database_url.clone().map(SecretString::from),
                cluster: None,
            });
        }
        let (dir, bin) = (args.data_dir(), args.postgres_bin.clone());
        let cluster = tokio::task::spawn_blocking(move || {
            EmbeddedPostgres::start(&dir, bin.as_deref(), Durability::default())
        })
        .await??;
        tracing::info!(port = cluster.port(), data_dir = %args.data_dir().display(), "private PostgreSQL started");
        embedded::ensure_database(&cluster, "stackgate").await?;
        Ok(Self {
            url: cluster.url("stackgate"),
            app_url: Some(cluster.serving_url("stackgate").await?),
            cluster: Some(cluster),
        })
    }

    /// The URL the server's pools log in with. A serving login that could escape row-level
    /// security (superuser, BYPASSRLS, or owner) is refused; without one, the owner's URL is used
    /// with a warning (its `SET ROLE stackgate_app` is undone by `RESET ROLE`).
    pub async fn serving_url(&self) -> anyhow::Result<SecretString> {
        let Some(url) = &self.app_url else {
            tracing::warn!(
                "STACKGATE_APP_DATABASE_URL is unset: serving as DATABASE_URL's role (the schema \
                 owner) through `SET ROLE stackgate_app`, which `RESET ROLE` undoes; this is not \
                 least privilege (see docs/security.md, The database)"
            );
            return Ok(self.url.clone());
        };
        match db::check_serving_role(url).await {
            Ok(role) if !role.is_least_privileged() => anyhow::bail!(
                "STACKGATE_APP_DATABASE_URL logs in as `{}`, which is a superuser, has BYPASSRLS \
                 or owns the schema: give the server a role granted stackgate_app and nothing more",
                role.name
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not check STACKGATE_APP_DATABASE_URL's role")
            }
        }
        Ok(url.clone())
    }
}

fn resolve(
    args: &ConfigArgs,
    database_url: SecretString,
    jwt_secret: Option<SecretString>,
    token: Option<String>,
) -> anyhow::Result<Config> {
    let jwt_public_key = match &args.jwt_public_key_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read STACKGATE_JWT_PUBLIC_KEY_FILE {}: {e}",
                path.display()
            )
        })?),
        None => None,
    };
    Ok(Config {
        replica_id: args.replica_id(),
        database_url,
        listen: args.listen,
        jwt_secret,
        jwt_public_key,
        graphiql_assets: args.graphiql_assets.clone().filter(|p| has_assets(p)),
        graphiql_headers: token,
        pool_size: args.pool_size,
        body_limit: args.body_limit,
        limits: args.limits(),
        auth_cache_seconds: args.auth_cache_seconds,
        encryption_keys: args.encryption_keys.clone().map(SecretString::from),
        run_scheduler: true,
        sync: args.sync.timing(),
        health: args.health.monitor(),
        run_health: args.health.enabled,
        notify: args.notify.notifier(),
        run_notifications: args.notify.notifications,
        security: args.security.settings()?,
        reads: args.reads()?,
        events: args.events.settings(),
    })
}

fn has_assets(dir: &Path) -> bool {
    let complete = crate::http::graphiql::ASSETS
        .iter()
        .all(|(file, _)| dir.join(file).is_file());
    if !complete {
        tracing::warn!(dir = %dir.display(), "STACKGATE_GRAPHIQL_ASSETS lacks GraphiQL's files; using the CDN");
    }
    complete
}

fn jwt_secret(args: &ConfigArgs) -> anyhow::Result<SecretString> {
    let secret = args.jwt_secret.clone().ok_or_else(|| {
        anyhow::anyhow!("set STACKGATE_JWT_SECRET (or --jwt-secret) to a secret of 32+ bytes")
    })?;
    config::check_jwt_secret(&secret)?;
    Ok(SecretString::from(secret))
}

/// Parses a seed scale: 1 to [`seed::MAX_SCALE`].
fn parse_scale(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=seed::MAX_SCALE).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a scale from 1 to {}",
            seed::MAX_SCALE
        )),
    }
}

/// Parses `90`, `90s`, `15m`, `2h` or `7d` into seconds.
fn parse_ttl(s: &str) -> Result<i64, String> {
    let (digits, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90, 15m, 2h or 7d"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("unknown unit in `{s}`: use s, m, h or d")),
    };
    Ok(n * factor)
}

/// Prints a line to stdout; a closed stdout (the reader went away) is not an error worth dying for.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Re-encrypts every `docks.encrypted_api_key`, `operation_services.encrypted_config` and
/// `notification_channels.encrypted_secret` in one
/// transaction, as the schema owner, and prints the counts.
async fn rotate_keys(args: &ConfigArgs) -> anyhow::Result<()> {
    use diesel_async::AsyncConnection;
    let keyring = crate::crypto::Keyring::from_config(args.encryption_keys.as_deref())?;
    let database = Database::open(args).await?;
    let mut conn = db::connect_owner(&database.url).await?;
    let report = conn
        .transaction::<_, db::DbError, _>(async |conn| {
            db::models::credentials::rotate_all(conn, &keyring).await
        })
        .await?;
    let line = |what: &str, r: db::models::credentials::Rotated| {
        format!(
            "{what}: {} rotated, {} already current, {} unreadable",
            r.rotated, r.current, r.unreadable
        )
    };
    say(&format!(
        "rotated to key `{}`\n{}\n{}\n{}",
        keyring.active_key_id(),
        line("docks", report.docks),
        line("operation services", report.operation_services),
        line("notification channels", report.notification_channels)
    ));
    let unreadable = report.docks.unreadable
        + report.operation_services.unreadable
        + report.notification_channels.unreadable;
    if unreadable > 0 {
        say(
            "unreadable credentials were left as they were: keep their old keys configured, or enter them again",
        );
    }
    Ok(())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        String::new()
    } else {
        format!(": {}", items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("90"), Ok(90));
        assert_eq!(parse_ttl("15m"), Ok(900));
        assert_eq!(parse_ttl("2h"), Ok(7200));
        assert_eq!(parse_ttl("7d"), Ok(604800));
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("5y").is_err());
    }
}
