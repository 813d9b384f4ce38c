//! One sync run of one dock (`docs/sync.md`).
//!
//! 1. Load the dock in its organization's scope and decrypt its key ([`Keyring`]).
//! 2. Create the run row (`syncing`) and publish `STARTED` (unless [`RunRequest::run_id`] names a
//!    run already created, as `sync_now` does).
//! 3. Fetch every page through the dock's [`Provider`], publishing `PAGE` as pages arrive.
//! 4. Apply everything in ONE transaction: per kind, an upsert that rewrites only changed rows,
//!    then the deletion sweep (only after this complete listing); links' denormalized columns
//!    follow by trigger; the run's counts, the dock's sync state and rate limits; `APPLIED` and
//!    `SUCCEEDED`. With a lease owner, the transaction first checks the lease is still held.
//! 5. A failure anywhere applies nothing: the run and dock record the error (with the key
//!    redacted), the dock backs off exponentially and at least for the provider's `retry-after`,
//!    and `FAILED` is published.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::verify::VerifyError;
use super::{Details, HttpPolicy, Kind, Listing, Record, Registry, Session};
use crate::crypto::{self, Binding, Keyring};
use crate::db::models::sync::{self as q, RateState, RunCounts};
use crate::db::{DbError, Pool, Scope};
use crate::events::{self, Phase, SyncEvent};

/// Tunables of runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub http: HttpPolicy,
    /// The back-off after a first failure; doubled per consecutive failure up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Rows per upsert statement.
    pub upsert_chunk: usize,
    /// Whether docks' endpoints may be loopback or private addresses
    /// (`STACKGATE_ALLOW_PRIVATE_ENDPOINTS`); off, the outbound guard refuses them.
    pub allow_private_endpoints: bool,
    /// The longest a call made while a caller waits may take, all included: a key check
    /// ([`Engine::verify`]) or an action ([`Engine::perform`]).
    pub verify_deadline: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            http: HttpPolicy::default(),
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(3600),
            upsert_chunk: 2_000,
            allow_private_endpoints: false,
            verify_deadline: Duration::from_secs(10),
        }
    }
}

/// Why a run was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// Which dock to sync, and how.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub org_id: Uuid,
    pub dock_id: Uuid,
    /// A run row already created (and `STARTED` published) by the caller.
    pub run_id: Option<Uuid>,
    pub trigger: Trigger,
    /// The lease this run holds; the apply transaction checks it is still held.
    pub lease_owner: Option<String>,
}

impl RunRequest {
    /// A scheduled run with no lease (tests, tools).
    pub fn new(org_id: Uuid, dock_id: Uuid) -> Self {
        Self {
            org_id,
            dock_id,
            run_id: None,
            trigger: Trigger::Schedule,
            lease_owner: None,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: Uuid,
    pub counts: RunCounts,
    /// The recorded error of a failed run.
    pub error: Option<String>,
    pub fetch_time: Duration,
    pub apply_time: Duration,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// Failures that leave nothing to record.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("dock not found")]
    DockNotFound,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for EngineError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Runs syncs; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pool: Pool,
    keyring: Arc<Keyring>,
    registry: Registry,
    config: EngineConfig,
    client: reqwest::Client,
}

/// Why a fetch could not happen or failed: the message to record and any retry-after.
struct Failure {
    message: String,
    retry_after: Option<Duration>,
}

impl Engine {
    pub fn new(
        pool: Pool,
        keyring: Arc<Keyring>,
        registry: Registry,
        config: EngineConfig,
    ) -> Self {
        let client = config.http.client(config.allow_private_endpoints);
        Self {
            pool,
            keyring,
            registry,
            config,
            client,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// A session against `provider` at `endpoint` (or its default URL) with `key`, through the
    /// outbound guard; errors quote the remote end only from the provider's default URL.
    pub fn session(
        &self,
        provider: &dyn super::Provider,
        endpoint: Option<&str>,
        key: &SecretString,
    ) -> Session {
        self.session_with(provider, endpoint, key, self.config.http.clone())
    }

    /// [`Self::session`] under `policy` (one try within a deadline, for a caller who waits).
    pub(crate) fn session_with(
        &self,
        provider: &dyn super::Provider,
        endpoint: Option<&str>,
        key: &SecretString,
        policy: HttpPolicy,
    ) -> Session {
        let base = endpoint.unwrap_or(provider.default_base_url());
        Session::new(self.client.clone(), base, key, policy)
            .allow_private(self.config.allow_private_endpoints)
            .quote_remote(endpoint.is_none())
    }

    /// Checks `key` with the provider: one request, no retries, within
    /// [`EngineConfig::verify_deadline`]; needs no database connection, and fails with a stable
    /// message that never quotes the remote end (see [`super::verify`]).
    pub async fn verify(
        &self,
        provider: &dyn super::Provider,
        endpoint: Option<&str>,
        key: &SecretString,
    ) -> Result<(), VerifyError> {
        let deadline = self.config.verify_deadline;
        let policy = self.config.http.single_try(deadline);
        let mut session = self.session_with(provider, endpoint, key, policy);
        match tokio::time::timeout(deadline, provider.verify(&mut session)).await {
            Ok(checked) => checked.map_err(|e| VerifyError::from(&e.kind)),
            Err(_) => Err(VerifyError::Unreachable),
        }
    }

    /// Creates a run row and publishes `STARTED`, in the caller's transaction.
    pub async fn start_run(
        conn: &mut diesel_async::AsyncPgConnection,
        org_id: Uuid,
        dock_id: Uuid,
        trigger: Trigger,
    ) -> Result<Uuid, DbError> {
        let run_id = q::start_run(conn, org_id, dock_id, trigger.as_str()).await?;
        let event = SyncEvent::new(org_id, dock_id, Some(run_id), Phase::Started);
        events::publish(conn, &event.into()).await?;
        Ok(run_id)
    }

    /// Runs one sync to the end; a provider failure is a recorded, failed run (`Ok`). Its
    /// `sync.run` span holds a `sync.page` span per page fetched.
    #[tracing::instrument(
        name = "sync.run",
        skip_all,
        fields(sync.dock_id = %req.dock_id, sync.trigger = req.trigger.as_str(), sync.run_id)
    )]
    pub async fn run(&self, req: &RunRequest) -> Result<RunReport, EngineError> {
        let scope = org_scope(req.org_id);
        let dock = scope
            .transaction(&self.pool, async |conn| {
                q::dock_for_sync(conn, req.dock_id).await
            })
            .await?
            .ok_or(EngineError::DockNotFound)?;
        let run_id = match req.run_id {
            Some(id) => id,
            None => {
                let (org, dock_id, trigger) = (req.org_id, req.dock_id, req.trigger);
                scope
                    .transaction(&self.pool, async |conn| {
                        Self::start_run(conn, org, dock_id, trigger).await
                    })
                    .await?
            }
        };
        tracing::Span::current().record("sync.run_id", tracing::field::display(run_id));
        let started = Instant::now();
        let key = self.keyring.decrypt_str(
            &dock.encrypted_api_key,
            Binding::new(dock.org_id, dock.id, crypto::DOCK_API_KEY),
        );
        let key = match key {
            Ok(key) => key,
            Err(e) => {
                let failure = Failure {
                    message: format!(
                        "the dock's credentials cannot be decrypted ({e}); enter the API key again"
                    ),
                    retry_after: None,
                };
                return self.fail(req, run_id, failure, None, started).await;
            }
        };
        let Some(provider) = self.registry.get(&dock.provider) else {
            let failure = Failure {
                message: format!("unknown provider `{}`", dock.provider),
                retry_after: None,
            };
            return self.fail(req, run_id, failure, None, started).await;
        };
        let mut session = self.session(provider.as_ref(), dock.endpoint.as_deref(), &key);
        let fetched = self
            .fetch(req, run_id, provider.as_ref(), &mut session)
            .await;
        let fetch_time = started.elapsed();
        match fetched {
            Ok(listing) => {
                self.apply(req, run_id, &dock.provider, listing, &session, fetch_time)
                    .await
            }
            Err(e) => {
                let failure = Failure {
                    message: redact(&e.to_string(), &key),
                    retry_after: e.retry_after(),
                };
                self.fail(req, run_id, failure, Some(&session), started)
                    .await
            }
        }
    }

    /// Lists everything, publishing `PAGE` events from a side task that never slows the fetch.
    async fn fetch(
        &self,
        req: &RunRequest,
        run_id: Uuid,
        provider: &dyn super::Provider,
        session: &mut Session,
    ) -> Result<Listing, super::FetchError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(8);
        let (pool, org_id, dock_id) = (self.pool.clone(), req.org_id, req.dock_id);
        let publisher = tokio::spawn(async move {
            while let Some(items) = rx.recv().await {
                let event = SyncEvent::new(org_id, dock_id, Some(run_id), Phase::Page).items(items);
                let event = event.into();
                let sent = org_scope(org_id)
                    .transaction(&pool, async |conn| events::publish(conn, &event).await)
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, "PAGE event not published");
                }
            }
        });
        let mut on_page = |_: Kind, items: usize| {
            let _ = tx.try_send(items);
        };
        let listing = provider.list_all(session, &mut on_page).await;
        drop(tx);
        let _ = publisher.await;
        listing
    }

    /// Writes a complete listing in one transaction.
    async fn apply(
        &self,
        req: &RunRequest,
        run_id: Uuid,
        provider: &str,
        listing: Listing,
        session: &Session,
        fetch_time: Duration,
    ) -> Result<RunReport, EngineError> {
        let started = Instant::now();
        let by_kind = group(&listing.records);
        let total = listing.records.len();
        let base = session_counts(session);
        let rate = rate_state(session);
        let owner = req.lease_owner.as_deref();
        let chunk = self.config.upsert_chunk;
        let (org_id, dock_id) = (req.org_id, req.dock_id);
        let applied = org_scope(org_id)
            .try_transaction(&self.pool, async |conn| {
                if !q::lock_for_apply(conn, dock_id, owner).await? {
                    return Ok::<_, EngineError>(None);
                }
                let mut counts = base;
                for kind in Kind::ALL {
                    let records = by_kind.get(&kind).map(Vec::as_slice).unwrap_or_default();
                    let dock = (org_id, dock_id, provider);
                    let done = q::upsert(conn, dock, kind, records, record_row, chunk).await?;
                    counts.created += done.created;
                    counts.updated += done.updated;
                    let seen: Vec<&str> = records
                        .iter()
                        .map(|r| r.provider_resource_id.as_str())
                        .collect();
                    counts.deleted += q::sweep(conn, dock_id, kind, &seen).await?;
                }
                let written = counts.created + counts.updated;
                counts.unchanged = i64::try_from(unique_count(&by_kind)).unwrap_or(0) - written;
                let applied =
                    SyncEvent::new(org_id, dock_id, Some(run_id), Phase::Applied).items(total);
                events::publish(conn, &applied.into()).await?;
                q::finish_run(conn, (run_id, dock_id), counts, None, None, rate).await?;
                let done =
                    SyncEvent::new(org_id, dock_id, Some(run_id), Phase::Succeeded).items(total);
                events::publish(conn, &done.into()).await?;
                Ok(Some(counts))
            })
            .await;
        let apply_time = started.elapsed();
        let message = match applied {
            Ok(Some(counts)) => {
                tracing::info!(%dock_id, %run_id, ?counts, fetch_ms = fetch_time.as_millis() as u64,
                               apply_ms = apply_time.as_millis() as u64, "sync succeeded");
                return Ok(RunReport {
                    run_id,
                    counts,
                    error: None,
                    fetch_time,
                    apply_time,
                });
            }
            Ok(None) => "the dock was deleted, or its lease lost, during the sync; nothing applied"
                .to_owned(),
            Err(e) => {
                tracing::error!(%dock_id, %run_id, error = %e, "applying a sync failed");
                "applying the listing failed (a database error); nothing applied".to_owned()
            }
        };
        let failure = Failure {
            message,
            retry_after: None,
        };
        let mut report = self
            .fail(req, run_id, failure, Some(session), started)
            .await?;
        report.fetch_time = fetch_time;
        Ok(report)
    }

    /// Records a failed run and the dock's back-off; publishes `FAILED`.
    async fn fail(
        &self,
        req: &RunRequest,
        run_id: Uuid,
        failure: Failure,
        session: Option<&Session>,
        started: Instant,
    ) -> Result<RunReport, EngineError> {
        let counts = session.map(session_counts).unwrap_or_default();
        let rate = session.map(rate_state).unwrap_or_default();
        let (org_id, dock_id) = (req.org_id, req.dock_id);
        let (base, max) = (self.config.backoff_base, self.config.backoff_max);
        let message = failure.message.chars().take(2000).collect::<String>();
        tracing::warn!(%dock_id, %run_id, error = %message, "sync failed");
        org_scope(org_id)
            .transaction(&self.pool, async |conn| {
                let failures = q::failures_since_success(conn, dock_id).await?;
                let backoff = backoff(base, max, failures, failure.retry_after);
                q::finish_run(
                    conn,
                    (run_id, dock_id),
                    counts,
                    Some(&message),
                    Some(backoff),
                    rate,
                )
                .await?;
                let event =
                    SyncEvent::new(org_id, dock_id, Some(run_id), Phase::Failed).message(&message);
                events::publish(conn, &event.into()).await
            })
            .await?;
        Ok(RunReport {
            run_id,
            counts,
            error: Some(message),
            fetch_time: started.elapsed(),
            apply_time: Duration::ZERO,
        })
    }
}

/// Exponential back-off after `previous` failures since the last success, at least `retry_after`.
fn backoff(
    base: Duration,
    max: Duration,
    previous: i64,
    retry_after: Option<Duration>,
) -> Duration {
    let factor = 2u32.saturating_pow(u32::try_from(previous).unwrap_or(u32::MAX).min(30));
    base.saturating_mul(factor)
        .min(max)
        .max(retry_after.unwrap_or_default())
}

fn org_scope(org_id: Uuid) -> Scope {
    Scope {
        org_id: Some(org_id),
        ..Scope::default()
    }
}

/// Records by kind, one per provider id (the last wins: an upsert may touch a row only once).
fn group(records: &[Record]) -> HashMap<Kind, Vec<&Record>> {
    let mut latest: HashMap<(Kind, &str), &Record> = HashMap::new();
    for r in records {
        latest.insert((r.kind(), r.provider_resource_id.as_str()), r);
    }
    let mut by_kind: HashMap<Kind, Vec<&Record>> = HashMap::new();
    for ((kind, _), r) in latest {
        by_kind.entry(kind).or_default().push(r);
    }
    by_kind
}

/// A record's columns, as [`q::upsert`] writes them into its kind's table.
fn record_row(r: &&Record) -> Value {
    let mut m = Map::new();
    m.insert("provider_resource_id".into(), json!(r.provider_resource_id));
    m.insert("name".into(), json!(r.name));
    m.insert("status".into(), json!(r.status.as_str()));
    m.insert("provider_status".into(), json!(r.provider_status));
    m.insert("region".into(), json!(r.region));
    m.insert("full_api_data".into(), r.full_api_data.clone());
    let own = match &r.details {
        Details::Server {
            primary_ip_address,
            ipv6,
            vcpus,
            memory_mb,
            disk_gb,
            image,
        } => json!({
            "primary_ip_address": primary_ip_address, "ipv6": ipv6, "vcpus": vcpus,
            "memory_mb": memory_mb, "disk_gb": disk_gb, "image": image }),
        Details::WebService {
            production_url,
            environment,
            framework,
        } => json!({
            "production_url": production_url, "environment": environment, "framework": framework }),
        Details::Domain {
            domain_name,
            expires_at,
            auto_renew,
        } => json!({
            "domain_name": domain_name, "expires_at": expires_at, "auto_renew": auto_renew }),
        Details::Database {
            engine,
            version,
            host,
            port,
        } => json!({
            "engine": engine, "version": version, "host": host, "port": port }),
    };
    if let Value::Object(own) = own {
        m.extend(own);
    }
    Value::Object(m)
}

fn unique_count(by_kind: &HashMap<Kind, Vec<&Record>>) -> usize {
    by_kind.values().map(Vec::len).sum()
}

fn session_counts(session: &Session) -> RunCounts {
    RunCounts {
        pages: i64::from(session.pages),
        requests: i64::from(session.requests),
        ..RunCounts::default()
    }
}

fn rate_state(session: &Session) -> RateState {
    RateState {
        remaining: session.rate_limit.remaining,
        reset_at: session.rate_limit.reset_at,
    }
}

/// Removes every occurrence of the key from a message (providers sometimes echo it).
pub fn redact(message: &str, key: &SecretString) -> String {
    let key = key.expose_secret();
    if key.len() < 4 {
        return message.to_owned();
    }
    message.replace(key, "[redacted]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        let (base, max) = (Duration::from_secs(60), Duration::from_secs(3600));
        assert_eq!(backoff(base, max, 0, None), Duration::from_secs(60));
        assert_eq!(backoff(base, max, 2, None), Duration::from_secs(240));
        assert_eq!(backoff(base, max, 40, None), max);
        assert_eq!(
            backoff(base, max, 0, Some(Duration::from_secs(900))),
            Duration::from_secs(900)
        );
    }

    #[test]
    fn keys_are_redacted_from_messages() {
        let key = SecretString::from("dop_v1_secret");
        assert_eq!(
            redact("bad token dop_v1_secret!", &key),
            "bad token [redacted]!"
        );
    }
}
