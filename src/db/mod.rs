//! PostgreSQL access: the pool, migrations, roles, and per-transaction tenancy.
//!
//! Query functions live in [`models`], take a connection explicitly, and are the only place that
//! imports `diesel_async::RunQueryDsl` (it clashes with async-graphql's `execute`).

pub mod models;
pub mod replicas;
pub mod request;
pub mod schema;
pub mod tenancy;

use std::time::Duration;

use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Pool as DeadPool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;
use secrecy::{ExposeSecret, SecretString};

pub use request::{RequestDb, Route};
pub use tenancy::Scope;

/// Every migration in `migrations/`, compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The role the server's queries run as: owns no table, lacks BYPASSRLS (see the first migration).
pub const APP_ROLE: &str = "stackgate_app";

/// The login role the server's pools use on the private cluster (and in tests): a member of
/// [`APP_ROLE`] that owns nothing, is no superuser and lacks BYPASSRLS, so a `RESET ROLE` on one
/// of its connections leads back to it and no further. See [`ensure_login_role`].
pub const LOGIN_ROLE: &str = "stackgate_server";

/// The connection pool type.
pub type Pool = DeadPool<AsyncPgConnection>;

/// A database failure; never shown to clients (see [`crate::error`]).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database pool: {0}")]
    Pool(#[from] PoolError),
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database connection: {0}")]
    Connection(#[from] ConnectionError),
    #[error("migrations: {0}")]
    Migration(String),
}

impl DbError {
    /// True when the error is a unique-constraint violation (a `CONFLICT` for clients).
    pub fn is_unique_violation(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        matches!(
            self,
            Self::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
        )
    }
}

/// Builds the server's pool: every connection runs as [`APP_ROLE`], checked out without a ping.
/// `url` should log in as a role granted [`APP_ROLE`] and nothing more (see
/// [`check_serving_role`]); an owner's or superuser's URL works too, but `RESET ROLE` undoes
/// its `SET ROLE`.
pub fn build_pool(url: &SecretString, size: usize) -> Result<Pool, DbError> {
    build_pool_with_wait(url, size, Duration::from_secs(10))
}

/// [`build_pool`] whose checkouts wait at most `wait` (the serving pool: past it the operation is
/// refused as the server being at capacity, instead of stalling every tenant behind it).
pub fn build_pool_with_wait(
    url: &SecretString,
    size: usize,
    wait: Duration,
) -> Result<Pool, DbError> {
    pool_of(url, size, "stackgate", wait, Duration::from_secs(10))
}

/// A read replica's pool (`db::replicas`): connections as on the primary, named
/// `stackgate-read` in the standby's `pg_stat_activity`. Checkouts give up within a second or
/// two, so a replica that vanished costs a read little before the primary serves it.
pub fn build_replica_pool(url: &SecretString, size: usize) -> Result<Pool, DbError> {
    pool_of(
        url,
        size,
        "stackgate-read",
        Duration::from_secs(1),
        Duration::from_secs(2),
    )
}

fn pool_of(
    url: &SecretString,
    size: usize,
    application_name: &'static str,
    wait: Duration,
    create: Duration,
) -> Result<Pool, DbError> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup =
        Box::new(move |url| connect_as_app(url.to_owned(), application_name).boxed());
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        url.expose_secret(),
        config,
    );
    DeadPool::builder(manager)
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(create))
        .build()
        .map_err(|e| DbError::Migration(format!("pool: {e}")))
}

/// Opens one connection as [`APP_ROLE`], named `application_name` in `pg_stat_activity`.
pub async fn connect_as_app(
    url: String,
    application_name: &'static str,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = AsyncPgConnection::establish(&url).await?;
    conn.batch_execute(&format!(
        "SET ROLE {APP_ROLE}; SET application_name = '{application_name}'"
    ))
    .await
    .map_err(|e| ConnectionError::BadConnection(format!("cannot SET ROLE {APP_ROLE}: {e}")))?;
    Ok(conn)
}

/// Opens one connection as the URL's own role (the schema owner): migrations, seeding, admin.
pub async fn connect_owner(url: &SecretString) -> Result<AsyncPgConnection, DbError> {
    Ok(AsyncPgConnection::establish(url.expose_secret()).await?)
}

/// Creates or updates [`LOGIN_ROLE`] (and [`APP_ROLE`], should no migration have made it yet)
/// with `password`, through `superuser_url`. Roles are cluster-wide and several processes may
/// share a cluster, so it is idempotent and retried when a concurrent change collides with it.
pub async fn ensure_login_role(
    superuser_url: &SecretString,
    password: &SecretString,
) -> Result<(), DbError> {
    let password = password.expose_secret().replace('\'', "''");
    let sql = format!(
        "do $$ begin
            if not exists (select 1 from pg_roles where rolname = '{APP_ROLE}') then
                begin
                    create role {APP_ROLE} nologin nosuperuser nobypassrls nocreatedb nocreaterole;
                exception when duplicate_object then null;
                end;
            end if;
            if not exists (select 1 from pg_roles where rolname = '{LOGIN_ROLE}') then
                begin
                    create role {LOGIN_ROLE} login;
                exception when duplicate_object then null;
                end;
            end if;
        end $$;
        alter role {LOGIN_ROLE} login inherit nosuperuser nobypassrls nocreatedb nocreaterole
            noreplication password '{password}';
        grant {APP_ROLE} to {LOGIN_ROLE};"
    );
    let mut attempt = 0;
    loop {
        let outcome = async {
            let mut conn = connect_owner(superuser_url).await?;
            conn.batch_execute(&sql).await?;
            Ok::<_, DbError>(())
        }
        .await;
        attempt += 1;
        match outcome {
            Err(e) if attempt < 5 => {
                tracing::debug!(error = %e, "retrying the login role's set-up");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            outcome => return outcome,
        }
    }
}

/// Who a URL logs in as, and whether that role could escape row-level security.
#[derive(Debug, diesel::QueryableByName)]
pub struct ServingRole {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub superuser: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub bypass_rls: bool,
    /// Owns a table, or is a member of a role that does (so `SET ROLE` reaches it).
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub owner: bool,
}

impl ServingRole {
    /// True when the role cannot step outside what [`APP_ROLE`] may do.
    pub fn is_least_privileged(&self) -> bool {
        !(self.superuser || self.bypass_rls || self.owner)
    }
}

/// Logs in with `url` and reports on its role.
pub async fn check_serving_role(url: &SecretString) -> Result<ServingRole, DbError> {
    use diesel_async::RunQueryDsl;
    let mut conn = connect_owner(url).await?;
    let role = diesel::sql_query(
        "select r.rolname::text as name, r.rolsuper as superuser, r.rolbypassrls as bypass_rls,
                exists (select 1 from pg_class c
                        where c.relnamespace = 'public'::regnamespace
                          and pg_has_role(r.oid, c.relowner, 'MEMBER')) as owner
         from pg_roles r where r.rolname = session_user",
    )
    .get_result(&mut conn)
    .await?;
    Ok(role)
}

/// Runs every pending migration; returns the versions applied.
pub async fn run_migrations(url: &SecretString) -> Result<Vec<String>, DbError> {
    with_harness(url, |h| {
        h.run_pending_migrations(MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect())
    })
    .await
}

/// Reverts every applied migration (tests and `down` checks).
pub async fn revert_all_migrations(url: &SecretString) -> Result<Vec<String>, DbError> {
    with_harness(url, |h| {
        h.revert_all_migrations(MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect())
    })
    .await
}

type SyncWrapper =
    diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>;
type MigrationResult<T> = diesel::migration::Result<T>;

/// Runs diesel's synchronous migration harness on a blocking thread (diesel-async's own harness
/// calls `block_in_place`, which panics on a current-thread runtime such as `#[tokio::test]`'s).
async fn with_harness<T: Send + 'static>(
    url: &SecretString,
    f: impl FnOnce(&mut SyncWrapper) -> MigrationResult<T> + Send + 'static,
) -> Result<T, DbError> {
    use diesel::Connection;
    let url = url.expose_secret().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <SyncWrapper as Connection>::establish(&url)?;
        f(&mut conn).map_err(|e| DbError::Migration(e.to_string()))
    })
    .await
    .map_err(|e| DbError::Migration(format!("migration task: {e}")))?
}

/// The version of every migration compiled into this binary, oldest first.
pub fn migration_versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    let migrations = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).unwrap_or_default();
    let mut versions: Vec<String> = migrations
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    versions.sort();
    versions
}

/// The newest migration version compiled into this binary.
pub fn latest_migration_version() -> Option<String> {
    migration_versions().pop()
}
