//! Read replicas (`docs/scale-out.md`, "Reads"): a pool per streaming standby, checked
//! periodically, and the choice of where one request's reads go.
//!
//! 1. **Pools.** Each replica gets a pool built like the primary's ([`super::build_pool`]):
//!    every connection runs as `stackgate_app`, and every transaction sets the tenant in
//!    [`super::Scope::apply`], so row-level security reads the same settings on a standby.
//! 2. **Checks** ([`monitor`]): every [`ReadSettings::check_every`] the primary's WAL insert
//!    position is sampled and each replica's replay position read. A replica that has not
//!    replayed what the primary had written [`ReadSettings::max_lag`] ago is *lagging*; one that
//!    does not answer (or is not a standby) is *down*. Both are skipped until a check finds them
//!    well. Nothing is checked per request.
//! 3. **Choice** ([`Replicas::reader`]): a read that must see position `at` (the caller's own
//!    write, or the newest event this replica received) goes to an in-use replica known to have
//!    replayed that far; else one is asked (`pg_last_wal_replay_lsn()` on the connection the
//!    read will use) until it has, for at most [`ReadSettings::wait`]; then the primary serves.
//!
//! The primary itself is never in this set: with no replica configured every read goes to it
//! and none of this costs anything.

pub mod lsn;
pub mod monitor;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::sql_types::{Nullable, Text};
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Object;
use secrecy::{ExposeSecret, SecretString};

pub use lsn::{Lsn, Watermark};

/// The response header, and request header, carrying a write's WAL position.
pub const LSN_HEADER: &str = "x-stackgate-lsn";
/// The cookie carrying it, for browsers.
pub const LSN_COOKIE: &str = "stackgate_lsn";

use super::{DbError, Pool};

/// Where reads may go, and how far behind they may be.
#[derive(Clone)]
pub struct ReadSettings {
    /// The replicas' URLs (`STACKGATE_READ_DATABASE_URLS`), logged in as the primary's pools are.
    pub urls: Vec<SecretString>,
    /// A replica further behind than this is skipped (`STACKGATE_READ_MAX_LAG`).
    pub max_lag: Duration,
    /// How long a read waits for a replica to replay the position it needs before the primary
    /// serves it (`STACKGATE_READ_WAIT`).
    pub wait: Duration,
}

impl Default for ReadSettings {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            max_lag: Duration::from_secs(5),
            wait: Duration::from_millis(250),
        }
    }
}

impl ReadSettings {
    /// How often replicas are checked: a quarter of the lag allowed, between 100 ms and 1 s.
    pub fn check_every(&self) -> Duration {
        (self.max_lag / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }
}

/// A replica's standing, as the last check found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Standing {
    /// Not checked yet: not used.
    Unchecked = 0,
    /// Serving reads.
    InUse = 1,
    /// Further behind than `max_lag`: skipped.
    Lagging = 2,
    /// Unreachable, or not a standby: skipped.
    Down = 3,
}

impl Standing {
    fn of(value: u8) -> Self {
        match value {
            1 => Self::InUse,
            2 => Self::Lagging,
            3 => Self::Down,
            _ => Self::Unchecked,
        }
    }

    /// Its name in `/readyz` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unchecked => "unchecked",
            Self::InUse => "in use",
            Self::Lagging => "lagging",
            Self::Down => "down",
        }
    }
}

/// One streaming standby.
pub struct Replica {
    /// `host:port/database` of its URL, never its credentials: for `/readyz` and logs.
    pub name: String,
    /// Its position in `STACKGATE_READ_DATABASE_URLS`, from 0: its metrics label.
    pub index: usize,
    pool: Pool,
    standing: AtomicU8,
    /// The highest replay position seen on it (only grows: replay never goes back).
    replayed: AtomicU64,
    /// How far behind the last check found it, in milliseconds.
    lag_ms: AtomicU64,
}

impl Replica {
    /// What the last check found.
    pub fn standing(&self) -> Standing {
        Standing::of(self.standing.load(Ordering::Acquire))
    }

    /// How far behind the last check found it.
    pub fn lag(&self) -> Duration {
        Duration::from_millis(self.lag_ms.load(Ordering::Relaxed))
    }

    /// The highest replay position seen on it.
    pub fn replayed(&self) -> Option<Lsn> {
        match self.replayed.load(Ordering::Acquire) {
            0 => None,
            lsn => Some(Lsn(lsn)),
        }
    }

    fn set_standing(&self, standing: Standing) {
        let before = self.standing.swap(standing as u8, Ordering::AcqRel);
        if before != standing as u8 {
            tracing::info!(replica = %self.name, standing = standing.as_str(), "read replica");
        }
        let label = self.index.to_string();
        for s in [Standing::InUse, Standing::Lagging, Standing::Down] {
            let on = if s == standing { 1.0 } else { 0.0 };
            metrics::gauge!("stackgate_read_replica_state", "replica" => label.clone(), "state" => s.as_str())
                .set(on);
        }
    }

    fn saw_replayed(&self, lsn: Lsn) {
        self.replayed.fetch_max(lsn.0, Ordering::AcqRel);
    }
}

/// The replicas of this server; cheap to clone. Empty when none is configured.
#[derive(Clone, Default)]
pub struct Replicas(Arc<Inner>);

#[derive(Default)]
struct Inner {
    replicas: Vec<Replica>,
    settings: Option<ReadSettings>,
    /// Spreads reads over the replicas in use.
    next: AtomicU64,
    /// The periodic check, stopped when the last clone is dropped.
    monitor: std::sync::OnceLock<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(monitor) = self.monitor.get() {
            monitor.abort();
        }
    }
}

/// A connection a request reads on, and where it came from.
pub struct Reader {
    pub conn: Object<AsyncPgConnection>,
    /// The replica's index; `None`: the primary.
    pub replica: Option<usize>,
}

impl Replicas {
    /// [`Replicas::build`], and the periodic check against `primary` started (inside a Tokio
    /// runtime).
    pub fn start(
        settings: &ReadSettings,
        pool_size: usize,
        primary: Pool,
    ) -> Result<Self, DbError> {
        let this = Self::build(settings, pool_size)?;
        if !this.is_empty() {
            let monitor = monitor::start(Arc::downgrade(&this.0), settings.clone(), primary);
            let _ = this.0.monitor.set(monitor);
        }
        Ok(this)
    }

    /// A pool per replica of `settings` (connections open lazily), `pool_size` connections each.
    pub fn build(settings: &ReadSettings, pool_size: usize) -> Result<Self, DbError> {
        let replicas = settings
            .urls
            .iter()
            .enumerate()
            .map(|(index, url)| {
                Ok(Replica {
                    name: display_name(url),
                    index,
                    pool: super::build_replica_pool(url, pool_size)?,
                    standing: AtomicU8::new(Standing::Unchecked as u8),
                    replayed: AtomicU64::new(0),
                    lag_ms: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok(Self(Arc::new(Inner {
            replicas,
            settings: Some(settings.clone()),
            next: AtomicU64::new(0),
            monitor: std::sync::OnceLock::new(),
        })))
    }

    /// How long a write's position is worth keeping (its cookie's `Max-Age`): past the lag
    /// allowed, every replica in use has replayed it.
    pub fn remember_for(&self) -> Duration {
        let lag = self
            .0
            .settings
            .as_ref()
            .map_or(Duration::ZERO, |s| s.max_lag);
        Duration::from_secs(lag.as_secs() + 1)
    }

    /// True when no replica is configured: every read goes to the primary.
    pub fn is_empty(&self) -> bool {
        self.0.replicas.is_empty()
    }

    /// Every configured replica.
    pub fn all(&self) -> &[Replica] {
        &self.0.replicas
    }

    /// A connection to read on, from a replica in use that has replayed `at` (or waited to, for
    /// at most [`ReadSettings::wait`]); `None` when the primary must serve.
    pub async fn reader(&self, at: Option<Lsn>) -> Option<Reader> {
        let settings = self.0.settings.as_ref()?;
        let in_use: Vec<&Replica> = self
            .0
            .replicas
            .iter()
            .filter(|r| r.standing() == Standing::InUse)
            .collect();
        if in_use.is_empty() {
            return None;
        }
        let start = self.0.next.fetch_add(1, Ordering::Relaxed) as usize;
        let order = (0..in_use.len()).map(|i| in_use[(start + i) % in_use.len()]);
        // One already known to have replayed far enough is used at once.
        let mut behind = Vec::new();
        for replica in order {
            if at.is_none_or(|at| replica.replayed().is_some_and(|r| r >= at)) {
                if let Some(reader) = self.connect(replica).await {
                    return Some(reader);
                }
            } else {
                behind.push(replica);
            }
        }
        let at = at?;
        let replica = behind.first()?;
        self.wait_for(replica, at, settings.wait).await
    }

    async fn connect(&self, replica: &Replica) -> Option<Reader> {
        match replica.pool.get().await {
            Ok(conn) => Some(Reader {
                conn,
                replica: Some(replica.index),
            }),
            Err(e) => {
                tracing::warn!(replica = %replica.name, error = %e, "read replica unreachable; reading from the primary");
                replica.set_standing(Standing::Down);
                None
            }
        }
    }

    /// Asks `replica`, on the connection the read will use, until it has replayed `at`; gives
    /// up (the primary serves) after `wait`.
    async fn wait_for(&self, replica: &Replica, at: Lsn, wait: Duration) -> Option<Reader> {
        let deadline = Instant::now() + wait;
        let mut reader = self.connect(replica).await?;
        let mut pause = Duration::from_millis(2);
        loop {
            match replay_position(&mut reader.conn).await {
                Ok(Some(replayed)) => {
                    replica.saw_replayed(replayed);
                    if replayed >= at {
                        return Some(reader);
                    }
                }
                Ok(None) | Err(_) => {
                    let _ = Object::take(reader.conn);
                    return None;
                }
            }
            if Instant::now() + pause > deadline {
                metrics::counter!("stackgate_read_waits_expired_total").increment(1);
                return None;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Counts a read served by `replica` (`None`: the primary).
    pub fn count_read(replica: Option<usize>) {
        let target = replica.map_or_else(|| "primary".to_owned(), |i| i.to_string());
        metrics::counter!("stackgate_reads_total", "target" => target).increment(1);
    }

    /// Marks a replica down after its connection failed before any read ran on it.
    pub fn failed(&self, index: usize) {
        if let Some(replica) = self.0.replicas.get(index) {
            replica.set_standing(Standing::Down);
        }
    }
}

/// The standby's replay position; `None` when the server is not a standby.
pub async fn replay_position(conn: &mut AsyncPgConnection) -> Result<Option<Lsn>, DbError> {
    position(conn, "select pg_last_wal_replay_lsn()::text as lsn").await
}

/// The primary's WAL insert position: at or past the end of every commit that has returned, on
/// any connection (`docs/scale-out.md`, "Read-your-writes").
pub async fn write_position(conn: &mut AsyncPgConnection) -> Result<Option<Lsn>, DbError> {
    position(conn, "select pg_current_wal_insert_lsn()::text as lsn").await
}

#[derive(diesel::QueryableByName)]
struct Position {
    #[diesel(sql_type = Nullable<Text>)]
    lsn: Option<String>,
}

async fn position(conn: &mut AsyncPgConnection, sql: &'static str) -> Result<Option<Lsn>, DbError> {
    use diesel_async::RunQueryDsl;
    let row: Position = diesel::sql_query(sql).get_result(conn).await?;
    Ok(row.lsn.as_deref().and_then(Lsn::parse))
}

/// `host:port/database` of a URL, without credentials or parameters.
fn display_name(url: &SecretString) -> String {
    let url = url.expose_secret();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.split('?').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_leave_credentials_out() {
        let url = SecretString::from("postgres://u:hunter2@db.invalid:5433/app?sslmode=require");
        assert_eq!(display_name(&url), "db.invalid:5433/app");
        let odd = SecretString::from("postgres://u:p@ss@h:1/db");
        assert_eq!(display_name(&odd), "h:1/db");
    }

    #[test]
    fn checks_run_a_quarter_of_the_lag_apart_within_bounds() {
        let with = |lag| ReadSettings {
            max_lag: Duration::from_millis(lag),
            ..ReadSettings::default()
        };
        assert_eq!(with(1_000).check_every(), Duration::from_millis(250));
        assert_eq!(with(10).check_every(), Duration::from_millis(100));
        assert_eq!(with(60_000).check_every(), Duration::from_secs(1));
    }
}
