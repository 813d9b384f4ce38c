//! Which replica syncs which dock, and when (`docs/sync.md`, `docs/architecture.md`).
//!
//! Every replica runs a [`Scheduler`]. Each tick it claims as many due docks as it has free run
//! slots through `stackgate_claim_due_docks` (`FOR UPDATE SKIP LOCKED`, a lease with an expiry:
//! see the `sync_leases` migration), and runs each in its own task. While a run lasts its lease is
//! renewed every third of the lease's length; at the end it is released. A replica that dies
//! stops renewing, its leases expire, and another replica claims those docks at its next tick:
//! a dock waits at most one lease length plus one tick ([`super::settings`]). The apply
//! transaction re-checks the lease, so a run that lost its lease writes nothing.
//!
//! [`Scheduler::sync_now`] is the `syncDock` mutation: it takes the dock's lease at once (due or
//! not, backing off or not) and returns the new run, or returns the run already going.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::engine::{Engine, EngineError, RunReport, RunRequest, Trigger};
use super::settings::SyncTiming;
use crate::db::models::dock::{self, SyncRunRow};
use crate::db::models::sync as q;
use crate::db::{DbError, Scope};

/// Scheduling settings.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// This replica's name in `docks.lease_owner` (unique per process).
    pub owner: String,
    /// How often due docks are looked for.
    pub tick: Duration,
    /// How long a claim lasts without renewal.
    pub lease_ttl: Duration,
    /// Runs this replica does at once.
    pub max_concurrent: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self::with_timing(SyncTiming::default())
    }
}

impl SchedulerConfig {
    /// This process's scheduler with the deployment's lease and claim interval.
    pub fn with_timing(timing: SyncTiming) -> Self {
        Self {
            owner: default_owner(),
            tick: timing.claim_interval,
            lease_ttl: timing.lease,
            max_concurrent: 4,
        }
    }
}

/// `host:pid:random`, unique per process.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "stackgate".to_owned());
    let random = Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..8])
}

/// The answer to [`Scheduler::sync_now`].
#[derive(Clone, Debug)]
pub enum SyncNow {
    /// A new run, started now.
    Started(SyncRunRow),
    /// The run that was already in progress.
    Running(SyncRunRow),
}

impl SyncNow {
    pub fn run(&self) -> &SyncRunRow {
        match self {
            SyncNow::Started(r) | SyncNow::Running(r) => r,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncNowError {
    #[error("dock not found")]
    NotFound,
    #[error("the dock is being claimed by another replica; try again")]
    Busy,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for SyncNowError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

/// Claims and runs syncs; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    engine: Engine,
    config: SchedulerConfig,
    slots: Arc<Semaphore>,
}

/// A background scheduler loop; stops when dropped or [`SchedulerHandle::stop`]ped.
pub struct SchedulerHandle {
    task: JoinHandle<()>,
}

impl SchedulerHandle {
    /// Stops claiming (runs in progress finish in their own tasks).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scheduler {
    pub fn new(engine: Engine, config: SchedulerConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        Self {
            engine,
            config,
            slots,
        }
    }

    pub fn owner(&self) -> &str {
        &self.config.owner
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Ticks every [`SchedulerConfig::tick`] in a background task.
    pub fn spawn(self) -> SchedulerHandle {
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(self.config.tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                if let Err(e) = self.tick().await {
                    tracing::warn!(error = %e, "scheduler tick failed");
                }
            }
        });
        SchedulerHandle { task }
    }

    /// Claims due docks for the free slots and starts a run for each; returns the runs' tasks.
    pub async fn tick(&self) -> Result<Vec<JoinHandle<Result<RunReport, EngineError>>>, DbError> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(free).unwrap_or(i32::MAX);
        let claims = {
            let mut conn = self.engine.pool().get().await?;
            q::claim_due(&mut conn, &self.config.owner, self.config.lease_ttl, limit).await?
        };
        let mut tasks = Vec::with_capacity(claims.len());
        for claim in claims {
            let permit = self.slots.clone().try_acquire_owned().ok();
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                this.run_leased(claim.org_id, claim.dock_id, None, Trigger::Schedule)
                    .await
            }));
        }
        Ok(tasks)
    }

    /// Starts a manual run of a dock now, or returns the one in progress.
    pub async fn sync_now(&self, org_id: Uuid, dock_id: Uuid) -> Result<SyncNow, SyncNowError> {
        let scope = Scope {
            org_id: Some(org_id),
            ..Scope::default()
        };
        for _ in 0..40 {
            let (owner, ttl) = (self.config.owner.as_str(), self.config.lease_ttl);
            let outcome = scope
                .try_transaction(self.engine.pool(), async |conn| {
                    if q::claim_dock(conn, dock_id, owner, ttl).await? {
                        let run = Engine::start_run(conn, org_id, dock_id, Trigger::Manual).await?;
                        return Ok::<_, SyncNowError>(Some((true, run)));
                    }
                    if q::dock_for_sync(conn, dock_id).await?.is_none() {
                        return Err(SyncNowError::NotFound);
                    }
                    Ok(q::running_run(conn, dock_id).await?.map(|run| (false, run)))
                })
                .await?;
            let Some((started, run_id)) = outcome else {
                // Leased, but the holder has not created its run yet.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if started {
                let this = self.clone();
                tokio::spawn(async move {
                    this.run_leased(org_id, dock_id, Some(run_id), Trigger::Manual)
                        .await
                });
            }
            let run = self.load_run(&scope, run_id).await?;
            return Ok(if started {
                SyncNow::Started(run)
            } else {
                SyncNow::Running(run)
            });
        }
        Err(SyncNowError::Busy)
    }

    /// Runs one dock now under this replica's lease and waits for the end (`stackgate demo`'s
    /// first sync); `None` when another replica holds its lease or the dock is gone.
    pub async fn run_now(
        &self,
        org_id: Uuid,
        dock_id: Uuid,
    ) -> Result<Option<RunReport>, EngineError> {
        let (owner, ttl) = (self.config.owner.as_str(), self.config.lease_ttl);
        let claimed = org_scope(org_id)
            .transaction(self.engine.pool(), async |conn| {
                q::claim_dock(conn, dock_id, owner, ttl).await
            })
            .await?;
        if !claimed {
            return Ok(None);
        }
        self.run_leased(org_id, dock_id, None, Trigger::Manual)
            .await
            .map(Some)
    }

    async fn load_run(&self, scope: &Scope, run_id: Uuid) -> Result<SyncRunRow, SyncNowError> {
        scope
            .transaction(self.engine.pool(), async |conn| {
                dock::sync_runs_by_ids(conn, &[run_id]).await
            })
            .await?
            .into_iter()
            .next()
            .ok_or(SyncNowError::NotFound)
    }

    /// Runs a sync under this replica's lease: renewed while it lasts, released after.
    async fn run_leased(
        &self,
        org_id: Uuid,
        dock_id: Uuid,
        run_id: Option<Uuid>,
        trigger: Trigger,
    ) -> Result<RunReport, EngineError> {
        let renewer = self.spawn_renewer(org_id, dock_id);
        let request = RunRequest {
            org_id,
            dock_id,
            run_id,
            trigger,
            lease_owner: Some(self.config.owner.clone()),
        };
        let report = self.engine.run(&request).await;
        renewer.abort();
        let owner = self.config.owner.as_str();
        let released = org_scope(org_id)
            .transaction(self.engine.pool(), async |conn| {
                q::release_lease(conn, dock_id, owner).await
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(%dock_id, error = %e, "lease not released; it will expire");
        }
        if let Err(e) = &report {
            tracing::warn!(%dock_id, error = %e, "sync run could not run");
        }
        report
    }

    fn spawn_renewer(&self, org_id: Uuid, dock_id: Uuid) -> JoinHandle<()> {
        let (pool, owner, ttl) = (
            self.engine.pool().clone(),
            self.config.owner.clone(),
            self.config.lease_ttl,
        );
        tokio::spawn(async move {
            let every = (ttl / 3).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(every).await;
                let renewed = org_scope(org_id)
                    .transaction(&pool, async |conn| {
                        q::renew_lease(conn, dock_id, &owner, ttl).await
                    })
                    .await;
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(%dock_id, "lease lost; the run will not apply");
                        return;
                    }
                    Err(e) => tracing::warn!(%dock_id, error = %e, "lease renewal failed"),
                }
            }
        })
    }
}

fn org_scope(org_id: Uuid) -> Scope {
    Scope {
        org_id: Some(org_id),
        ..Scope::default()
    }
}
