//! `action_runs`: what was asked of a provider (`performResourceAction`), by whom, and what it
//! answered (docs/actions.md). A run is written `running` before the provider is called and
//! finished after, each in a transaction of its own that also publishes its event.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::resource::Kind;
use crate::db::DbError;

/// One run.
#[derive(QueryableByName, Clone, Debug, PartialEq)]
pub struct ActionRun {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = Text)]
    pub resource_kind: String,
    #[diesel(sql_type = SqlUuid)]
    pub resource_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub dock_id: Uuid,
    /// An [`crate::sync::Action`]'s word.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// `running`, `succeeded` or `failed`.
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub requested_by: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub idempotency_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub summary: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl ActionRun {
    pub fn kind(&self) -> Option<Kind> {
        Kind::parse(&self.resource_kind)
    }
}

const COLUMNS: &str = "r.id, r.org_id, r.resource_kind, r.resource_id, r.dock_id, r.action, \
     r.status, r.requested_by, r.idempotency_key, r.summary, r.started_at, r.finished_at";

/// What a new run is.
#[derive(Clone, Copy, Debug)]
pub struct NewRun<'a> {
    pub org_id: Uuid,
    pub kind: Kind,
    pub resource_id: Uuid,
    pub dock_id: Uuid,
    pub action: &'a str,
    pub requested_by: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub idempotency_key: Option<&'a str>,
}

/// What [`start`] found.
#[derive(Debug)]
pub enum Started {
    /// A new `running` run: the provider is to be called.
    New(ActionRun),
    /// The run an earlier request with the same idempotency key started (running or finished):
    /// the provider is not called again.
    Existing(ActionRun),
}

/// Starts a run, unless one with the same idempotency key exists. First closes as failed the
/// organization's runs left `running` for longer than `stale` (their replica stopped while
/// calling the provider). A second run on a resource with one `running` is a unique violation.
pub async fn start(
    conn: &mut AsyncPgConnection,
    new: &NewRun<'_>,
    stale: Duration,
) -> Result<Started, DbError> {
    diesel::sql_query(
        "update action_runs set status = 'failed', finished_at = now(), \
         summary = 'the replica performing it stopped; whether the provider did it is unknown' \
         where org_id = $1 and status = 'running' \
         and started_at < now() - make_interval(secs => $2)",
    )
    .bind::<SqlUuid, _>(new.org_id)
    .bind::<Double, _>(stale.as_secs_f64())
    .execute(conn)
    .await?;
    let inserted: Option<ActionRun> = diesel::sql_query(format!(
        "insert into action_runs as r (org_id, resource_kind, resource_id, dock_id, action, \
         requested_by, api_key_id, idempotency_key) values ($1, $2, $3, $4, $5, $6, $7, $8) \
         on conflict (org_id, idempotency_key) do nothing returning {COLUMNS}"
    ))
    .bind::<SqlUuid, _>(new.org_id)
    .bind::<Text, _>(new.kind.as_str())
    .bind::<SqlUuid, _>(new.resource_id)
    .bind::<SqlUuid, _>(new.dock_id)
    .bind::<Text, _>(new.action)
    .bind::<Nullable<SqlUuid>, _>(new.requested_by)
    .bind::<Nullable<SqlUuid>, _>(new.api_key_id)
    .bind::<Nullable<Text>, _>(new.idempotency_key)
    .get_result(conn)
    .await
    .map(Some)
    .or_else(|e| match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e),
    })?;
    if let Some(run) = inserted {
        return Ok(Started::New(run));
    }
    let existing: ActionRun = diesel::sql_query(format!(
        "select {COLUMNS} from action_runs r where r.org_id = $1 and r.idempotency_key = $2"
    ))
    .bind::<SqlUuid, _>(new.org_id)
    .bind::<Nullable<Text>, _>(new.idempotency_key)
    .get_result(conn)
    .await?;
    Ok(Started::Existing(existing))
}

/// Finishes a `running` run with its outcome; `None` when it is no longer running (closed as
/// stale meanwhile).
pub async fn finish(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    succeeded: bool,
    summary: &str,
) -> Result<Option<ActionRun>, DbError> {
    let rows: Vec<ActionRun> = diesel::sql_query(format!(
        "update action_runs r set status = case when $2 then 'succeeded' else 'failed' end, \
         finished_at = now(), summary = left($3, 500) \
         where r.id = $1 and r.status = 'running' returning {COLUMNS}"
    ))
    .bind::<SqlUuid, _>(id)
    .bind::<Bool, _>(succeeded)
    .bind::<Text, _>(summary)
    .load(conn)
    .await?;
    Ok(rows.into_iter().next())
}

/// Runs by id (of the scope's organization).
pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<ActionRun>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(format!(
        "select {COLUMNS} from action_runs r where r.id = any($1)"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?)
}

/// The newest `limit` runs of each of `resources`, newest first per resource.
pub async fn of_resources(
    conn: &mut AsyncPgConnection,
    resources: &[Uuid],
    limit: i64,
) -> Result<Vec<ActionRun>, DbError> {
    if resources.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(format!(
        "select {COLUMNS} from unnest($1::uuid[]) as k(resource_id) \
         cross join lateral (select * from action_runs x where x.resource_id = k.resource_id \
           and x.org_id = nullif(current_setting('stackgate.org_id', true), '')::uuid \
           order by x.started_at desc, x.id desc limit $2) r \
         order by r.resource_id, r.started_at desc, r.id desc"
    ))
    .bind::<Array<SqlUuid>, _>(resources)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}
