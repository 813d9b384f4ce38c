//! The probe scheduler: which replica probes which resource, and when (`docs/health.md`, `docs/architecture.md`).
//!
//! Like the sync [`crate::sync::scheduler`], every replica runs a [`Monitor`]. It claims as many
//! due probes as it has free slots through `stackgate_claim_due_health_checks` (`FOR UPDATE SKIP
//! LOCKED`, a lease outliving the probe timeout), reads their targets in one statement per
//! organization, and probes each in its own task holding a slot, so a hanging target holds one
//! slot for at most the timeout. Each result is written in ONE transaction in the resource's
//! organization scope, which first checks the lease is still held:
//!
//! 1. append the probe to `health_checks`;
//! 2. apply hysteresis and write the confirmed state, check time, streak and next check time
//!    (the interval, ±jitter, so resources probed together drift apart), releasing the lease;
//! 3. on a confirmed transition: resolve the resource's open alert, open a new one when the new
//!    state is UNHEALTHY (`critical`) or DEGRADED (`warning`), and publish a [`HealthEvent`].
//!
//! Every few minutes a replica also prunes history older than the retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::hysteresis::{self, State, Streak};
use super::probe::{self, Observation, Plan, ProbeConfig, Prober, RowTarget};
use crate::db::models::alert;
use crate::db::models::probe::{self as q, Claim, Recorded, TargetRow};
use crate::db::models::resource::Kind;
use crate::db::{DbError, Pool, Scope};
use crate::events::{self, HealthEvent};

/// Monitoring settings.
#[derive(Clone, Debug)]
pub struct MonitorConfig {
    /// This replica's name in `health_lease_owner` (unique per process).
    pub owner: String,
    /// The probe interval where no org-and-kind override applies.
    pub interval: Duration,
    /// How long to wait before looking again when nothing was due.
    pub idle: Duration,
    /// Probes in flight at once.
    pub concurrency: usize,
    /// Consecutive agreeing probes that confirm a change of state.
    pub confirmations: u32,
    /// How long `health_checks` keeps a probe (at least an hour).
    pub retention: Duration,
    /// How often this replica prunes the history.
    pub prune_every: Duration,
    /// The next check comes after the interval times `1 ± jitter`.
    pub jitter: f64,
    pub probe: ProbeConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            owner: crate::sync::scheduler::default_owner(),
            interval: Duration::from_secs(60),
            idle: Duration::from_secs(1),
            concurrency: 64,
            confirmations: 2,
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_every: Duration::from_secs(600),
            jitter: 0.1,
            probe: ProbeConfig::default(),
        }
    }
}

impl MonitorConfig {
    /// A claim outlives the longest probe and the write after it.
    fn lease(&self) -> Duration {
        self.probe.timeout * 2 + Duration::from_secs(30)
    }
}

/// Why a probe's result was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("the probe lease was lost or the resource is gone; nothing recorded")]
    LeaseLost,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for MonitorError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// What one probe recorded.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    pub resource_id: Uuid,
    pub observed: Observation,
    pub confirmed: State,
    /// The previous confirmed state, when this probe changed it.
    pub transition: Option<State>,
}

/// Probes resources on schedule; cheap to clone.
#[derive(Clone)]
pub struct Monitor {
    pool: Pool,
    config: Arc<MonitorConfig>,
    prober: Prober,
    slots: Arc<Semaphore>,
}

/// A background monitor loop; stops when dropped or [`MonitorHandle::stop`]ped.
pub struct MonitorHandle {
    task: JoinHandle<()>,
}

impl MonitorHandle {
    /// Stops claiming (probes in flight finish in their own tasks).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The tasks of one round of claims.
pub type ProbeTasks = Vec<JoinHandle<Result<ProbeReport, MonitorError>>>;

impl Monitor {
    pub fn new(pool: Pool, config: MonitorConfig) -> Result<Self, reqwest::Error> {
        let prober = Prober::new(config.probe.clone())?;
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Ok(Self {
            pool,
            config: Arc::new(config),
            prober,
            slots,
        })
    }

    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// Probes in a background task until stopped: claims whenever a slot is free, waits
    /// [`MonitorConfig::idle`] when nothing is due, prunes every [`MonitorConfig::prune_every`].
    pub fn spawn(self) -> MonitorHandle {
        let task = tokio::spawn(async move {
            let mut pruned_at: Option<Instant> = None;
            loop {
                if pruned_at.is_none_or(|at| at.elapsed() >= self.config.prune_every) {
                    pruned_at = Some(Instant::now());
                    let this = self.clone();
                    tokio::spawn(async move { this.prune_logged().await });
                }
                if let Ok(slot) = self.slots.acquire().await {
                    drop(slot);
                }
                let asked = self.slots.available_permits();
                let claimed = match self.run_once().await {
                    Ok(tasks) => tasks.len(),
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming due health probes failed");
                        0
                    }
                };
                if claimed < asked {
                    tokio::time::sleep(self.config.idle).await;
                }
            }
        });
        MonitorHandle { task }
    }

    /// Claims due probes for the free slots and starts a probe task for each; returns the tasks.
    pub async fn run_once(&self) -> Result<ProbeTasks, DbError> {
        let mut permits = Vec::new();
        while let Ok(permit) = self.slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        if permits.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(permits.len()).unwrap_or(i32::MAX);
        let claims = {
            let mut conn = self.pool.get().await?;
            let c = &self.config;
            q::claim_due(&mut conn, &c.owner, c.lease(), limit, c.interval).await?
        };
        let mut tasks = Vec::with_capacity(claims.len());
        for (org_id, claims) in by_org(claims) {
            let targets = self.targets(org_id, &claims).await?;
            for claim in claims {
                let Some(plan) = targets.get(&claim.resource_id).cloned() else {
                    continue;
                };
                let Some(permit) = permits.pop() else {
                    break;
                };
                let this = self.clone();
                tasks.push(tokio::spawn(async move {
                    this.probe_and_record(claim, plan, permit).await
                }));
            }
        }
        Ok(tasks)
    }

    /// The probe plans of one organization's claimed resources (one statement).
    async fn targets(
        &self,
        org_id: Uuid,
        claims: &[Claim],
    ) -> Result<BTreeMap<Uuid, Plan>, DbError> {
        let mut ids: [Vec<Uuid>; 4] = Default::default();
        for claim in claims {
            if let Some(i) = Kind::parse(&claim.kind).and_then(kind_index) {
                ids[i].push(claim.resource_id);
            }
        }
        let rows = org_scope(org_id)
            .transaction(&self.pool, async |conn| q::targets(conn, &ids).await)
            .await?;
        let config = self.prober.config();
        Ok(rows
            .iter()
            .map(|row| (row.id, probe::plan(&row_target(row), config)))
            .collect())
    }

    #[tracing::instrument(
        name = "health.probe",
        skip_all,
        fields(health.resource_id = %claim.resource_id, health.kind = %claim.kind)
    )]
    async fn probe_and_record(
        &self,
        claim: Claim,
        plan: Plan,
        _permit: OwnedSemaphorePermit,
    ) -> Result<ProbeReport, MonitorError> {
        let observed = self.prober.probe(&plan).await;
        let recorded = self.record(&claim, observed).await;
        match &recorded {
            Err(MonitorError::LeaseLost) => {
                tracing::debug!(resource_id = %claim.resource_id, "probe lease lost; not recorded");
            }
            Err(e) => {
                tracing::warn!(resource_id = %claim.resource_id, error = %e, "recording a health probe failed");
            }
            Ok(_) => {}
        }
        recorded
    }

    /// Records one probe in one transaction in the resource's organization (see the module doc).
    async fn record(
        &self,
        claim: &Claim,
        observed: Observation,
    ) -> Result<ProbeReport, MonitorError> {
        let kind = Kind::parse(&claim.kind).ok_or(MonitorError::LeaseLost)?;
        let (org_id, id) = (claim.org_id, claim.resource_id);
        // Microseconds, as stored: the event's time equals the recorded check time.
        let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let interval = Duration::from_secs(u64::try_from(claim.interval_seconds).unwrap_or(60));
        let next = next_check(at, interval, self.config.jitter, rand::random::<f64>());
        let (owner, needed) = (self.config.owner.as_str(), self.config.confirmations);
        org_scope(org_id)
            .try_transaction(&self.pool, async |conn| {
                let row = q::lock_leased(conn, kind, id, owner)
                    .await?
                    .ok_or(MonitorError::LeaseLost)?;
                let confirmed = State::parse(&row.health_state);
                let streak = row.health_streak_state.as_deref().map(|s| Streak {
                    state: State::parse(s),
                    count: u32::try_from(row.health_streak_count).unwrap_or(0),
                });
                let step = hysteresis::step(confirmed, streak, observed.state, needed);
                let message = observed.message.chars().take(1000).collect::<String>();
                let probe = (
                    observed.state.as_str(),
                    observed.latency_ms,
                    message.as_str(),
                );
                q::insert_check(conn, (org_id, kind, id), at, probe).await?;
                let recorded = Recorded {
                    confirmed: step.confirmed.as_str(),
                    checked_at: at,
                    streak: step.streak.map(|s| {
                        let count = i32::try_from(s.count).unwrap_or(i32::MAX);
                        (s.state.as_str(), count)
                    }),
                    next_check_at: next,
                };
                q::record_on_resource(conn, kind, id, &recorded).await?;
                if let Some(previous) = step.transition {
                    let change = (previous, step.confirmed);
                    transition(conn, (org_id, row.dock_id, kind, id), change, &message, at).await?;
                }
                Ok(ProbeReport {
                    resource_id: id,
                    confirmed: step.confirmed,
                    transition: step.transition,
                    observed,
                })
            })
            .await
    }

    /// Deletes history older than the retention, in bounded batches; returns how many.
    pub async fn prune(&self) -> Result<u64, DbError> {
        const BATCH: i32 = 10_000;
        let mut total = 0u64;
        for _ in 0..1_000 {
            let mut conn = self.pool.get().await?;
            let n = q::prune(&mut conn, self.config.retention, BATCH).await?;
            total += u64::try_from(n).unwrap_or(0);
            if n < BATCH {
                break;
            }
        }
        Ok(total)
    }

    async fn prune_logged(&self) {
        match self.prune().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "pruned old health checks"),
            Err(e) => tracing::warn!(error = %e, "pruning health checks failed"),
        }
    }
}

/// Alerts and the event of a confirmed transition, in the probe's transaction.
async fn transition(
    conn: &mut diesel_async::AsyncPgConnection,
    (org_id, dock_id, kind, id): (Uuid, Uuid, Kind, Uuid),
    (previous, current): (State, State),
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    alert::resolve_open(conn, id, at).await?;
    let severity = match current {
        State::Unhealthy => Some("critical"),
        State::Degraded => Some("warning"),
        State::Healthy | State::Unknown => None,
    };
    if let Some(severity) = severity {
        let text = format!("{} is {}: {message}", kind_label(kind), current.as_str());
        alert::open(conn, (org_id, kind, id), severity, &text, at).await?;
    }
    let event = HealthEvent::new(
        (org_id, dock_id, id),
        kind.as_str(),
        (previous.as_str(), current.as_str()),
        at,
    );
    events::publish(conn, &event.into()).await
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Server => "server",
        Kind::WebService => "web service",
        Kind::Domain => "domain",
        Kind::Database => "database",
    }
}

/// `at + interval × (1 + jitter × (2r − 1))` for `r` in `[0, 1)`: within ±jitter of the interval.
pub fn next_check(at: DateTime<Utc>, interval: Duration, jitter: f64, r: f64) -> DateTime<Utc> {
    let factor = 1.0 + jitter.clamp(0.0, 0.5) * (2.0 * r.clamp(0.0, 1.0) - 1.0);
    let delay = interval.mul_f64(factor.max(0.0));
    at + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::seconds(60))
}

fn kind_index(kind: Kind) -> Option<usize> {
    Kind::ALL.iter().position(|k| *k == kind)
}

fn by_org(claims: Vec<Claim>) -> BTreeMap<Uuid, Vec<Claim>> {
    let mut grouped: BTreeMap<Uuid, Vec<Claim>> = BTreeMap::new();
    for claim in claims {
        grouped.entry(claim.org_id).or_default().push(claim);
    }
    grouped
}

fn row_target(row: &TargetRow) -> RowTarget<'_> {
    RowTarget {
        kind: &row.kind,
        provider: &row.provider,
        address: row.address.as_deref(),
        port: row.port,
        engine: row.engine.as_deref(),
        expires_at: row.expires_at,
        provider_data: row.provider_data.as_ref(),
    }
}

fn org_scope(org_id: Uuid) -> Scope {
    Scope {
        org_id: Some(org_id),
        ..Scope::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_checks_stay_within_the_jitter() {
        let at = Utc::now();
        let minute = Duration::from_secs(60);
        assert_eq!(
            next_check(at, minute, 0.1, 0.0),
            at + chrono::Duration::seconds(54)
        );
        assert_eq!(
            next_check(at, minute, 0.1, 0.5),
            at + chrono::Duration::seconds(60)
        );
        assert_eq!(
            next_check(at, minute, 0.0, 0.9),
            at + chrono::Duration::seconds(60)
        );
        let late = next_check(at, minute, 0.1, 0.999_999);
        assert!(
            late <= at + chrono::Duration::seconds(66) && late > at + chrono::Duration::seconds(65)
        );
    }
}
