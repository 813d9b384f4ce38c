//! The sync engine's statements: a run's row, the set-based upsert and deletion sweep of
//! resources, the dock's sync state, and leases.
//!
//! Everything but [`claim_due`] runs inside the dock's organization scope (row-level security
//! applies); [`claim_due`] goes through the `stackgate_claim_due_docks` function (see its
//! migration), the one cross-organization statement.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::db::DbError;
use crate::db::models::resource::Kind;

/// What a run needs of its dock.
#[derive(QueryableByName, Clone)]
pub struct SyncDock {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = Text)]
    pub provider: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub endpoint: Option<String>,
    #[diesel(sql_type = Bytea)]
    pub encrypted_api_key: Vec<u8>,
}

impl std::fmt::Debug for SyncDock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncDock")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

/// A live dock, by id.
pub async fn dock_for_sync(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
) -> Result<Option<SyncDock>, DbError> {
    Ok(diesel::sql_query(
        "select id, org_id, provider, endpoint, encrypted_api_key from docks \
         where id = $1 and deleted_at is null",
    )
    .bind::<SqlUuid, _>(dock_id)
    .get_result(conn)
    .await
    .map(Some)
    .or_else(not_found_is_none)?)
}

fn not_found_is_none<T>(e: diesel::result::Error) -> Result<Option<T>, diesel::result::Error> {
    match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e),
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Creates a run (`syncing`), marks the dock `syncing`, and closes any run a vanished replica
/// left `syncing` (the caller holds the dock's lease, so no other run is live).
pub async fn start_run(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    dock_id: Uuid,
    trigger: &str,
) -> Result<Uuid, DbError> {
    diesel::sql_query(
        "update sync_runs set status = 'error', finished_at = now(), \
                error = 'abandoned: the replica running it stopped' \
         where dock_id = $1 and status in ('pending', 'syncing')",
    )
    .bind::<SqlUuid, _>(dock_id)
    .execute(conn)
    .await?;
    diesel::sql_query("update docks set last_sync_status = 'syncing' where id = $1")
        .bind::<SqlUuid, _>(dock_id)
        .execute(conn)
        .await?;
    let row: IdRow = diesel::sql_query(
        "insert into sync_runs (org_id, dock_id, trigger, status) values ($1, $2, $3, 'syncing') returning id",
    )
    .bind::<SqlUuid, _>(org_id)
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Text, _>(trigger)
    .get_result(conn)
    .await?;
    Ok(row.id)
}

/// The dock's run still in progress, if any.
pub async fn running_run(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
) -> Result<Option<Uuid>, DbError> {
    Ok(diesel::sql_query(
        "select id from sync_runs where dock_id = $1 and status = 'syncing' \
         order by started_at desc limit 1",
    )
    .bind::<SqlUuid, _>(dock_id)
    .get_result::<IdRow>(conn)
    .await
    .map(|r| Some(r.id))
    .or_else(not_found_is_none)?)
}

/// Locks the live dock row; with `owner`, only while that owner holds its lease. False when the
/// dock is gone or the lease was lost (then the run must not apply anything).
pub async fn lock_for_apply(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
    owner: Option<&str>,
) -> Result<bool, DbError> {
    Ok(diesel::sql_query(
        "select id from docks where id = $1 and deleted_at is null \
           and ($2::text is null or lease_owner = $2) for update",
    )
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Nullable<Text>, _>(owner)
    .get_result::<IdRow>(conn)
    .await
    .map(|_| true)
    .or_else(|e| not_found_is_none::<IdRow>(e).map(|_| false))?)
}

/// Created and updated rows of one upsert.
#[derive(QueryableByName, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upserted {
    #[diesel(sql_type = BigInt)]
    pub created: i64,
    #[diesel(sql_type = BigInt)]
    pub updated: i64,
}

/// The table of a kind and its own columns with their types.
fn kind_columns(kind: Kind) -> (&'static str, &'static [(&'static str, &'static str)]) {
    match kind {
        Kind::Server => (
            "servers",
            &[
                ("primary_ip_address", "text"),
                ("ipv6", "text"),
                ("vcpus", "integer"),
                ("memory_mb", "integer"),
                ("disk_gb", "integer"),
                ("image", "text"),
            ],
        ),
        Kind::WebService => (
            "web_services",
            &[
                ("production_url", "text"),
                ("environment", "text"),
                ("framework", "text"),
            ],
        ),
        Kind::Domain => (
            "domains",
            &[
                ("domain_name", "text"),
                ("expires_at", "timestamptz"),
                ("auto_renew", "boolean"),
            ],
        ),
        Kind::Database => (
            "databases",
            &[
                ("engine", "text"),
                ("version", "text"),
                ("host", "text"),
                ("port", "integer"),
            ],
        ),
    }
}

const COMMON: [(&str, &str); 5] = [
    ("name", "text"),
    ("status", "text"),
    ("provider_status", "text"),
    ("region", "text"),
    ("full_api_data", "jsonb"),
];

/// `insert … on conflict do update … where (row) is distinct from (excluded)`: unchanged rows are
/// neither written nor counted, and keep their `updated_at`.
fn upsert_sql(kind: Kind) -> String {
    let (table, own) = kind_columns(kind);
    let cols: Vec<(&str, &str)> = COMMON.iter().chain(own.iter()).copied().collect();
    let names: Vec<&str> = cols.iter().map(|c| c.0).collect();
    let typed: Vec<String> = cols.iter().map(|(n, t)| format!("{n} {t}")).collect();
    let sets: Vec<String> = names
        .iter()
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    let old: Vec<String> = names.iter().map(|n| format!("t.{n}")).collect();
    let new: Vec<String> = names.iter().map(|n| format!("excluded.{n}")).collect();
    format!(
        "with w as ( \
           insert into {table} as t (org_id, dock_id, provider, provider_resource_id, last_seen_at, {cols}) \
           select $1, $2, $3, r.provider_resource_id, now(), {rcols} \
             from jsonb_to_recordset($4) as r(provider_resource_id text, {typed}) \
           on conflict (dock_id, provider_resource_id) do update set {sets}, last_seen_at = now() \
           where ({old}) is distinct from ({new}) \
           returning (xmax = 0) as inserted) \
         select count(*) filter (where inserted) as created, count(*) filter (where not inserted) as updated from w",
        cols = names.join(", "),
        rcols = names
            .iter()
            .map(|n| format!("r.{n}"))
            .collect::<Vec<_>>()
            .join(", "),
        typed = typed.join(", "),
        sets = sets.join(", "),
        old = old.join(", "),
        new = new.join(", "),
    )
}

/// Upserts one kind's records of a dock (all of one kind, unique ids), in chunks. `row` gives a
/// record's columns as a JSON object: `provider_resource_id` and the kind's columns (see
/// [`kind_columns`]), each under its column's name.
pub async fn upsert<R: Sync>(
    conn: &mut AsyncPgConnection,
    dock: (Uuid, Uuid, &str),
    kind: Kind,
    records: &[R],
    row: fn(&R) -> Value,
    chunk: usize,
) -> Result<Upserted, DbError> {
    let (org_id, dock_id, provider) = dock;
    let sql = upsert_sql(kind);
    let mut total = Upserted::default();
    for part in records.chunks(chunk.max(1)) {
        let rows = Value::Array(part.iter().map(row).collect());
        let done: Upserted = diesel::sql_query(&sql)
            .bind::<SqlUuid, _>(org_id)
            .bind::<SqlUuid, _>(dock_id)
            .bind::<Text, _>(provider)
            .bind::<Jsonb, _>(rows)
            .get_result(conn)
            .await?;
        total.created += done.created;
        total.updated += done.updated;
    }
    Ok(total)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct ProviderId {
    #[diesel(sql_type = Text)]
    provider_resource_id: String,
}

/// Marks `deleted` every live row of the dock of this kind whose id is not in `seen` (call only
/// after a complete listing); returns how many.
///
/// The difference is taken here, with a hash set, rather than in SQL: `not exists (… unnest($2)
/// …)` was planned as a nested loop over the array (estimated at 10 elements) and took seconds
/// per 25,000 rows. What remains is one indexed update of the vanished ids, usually none.
pub async fn sweep(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
    kind: Kind,
    seen: &[&str],
) -> Result<i64, DbError> {
    let (table, _) = kind_columns(kind);
    let live: Vec<ProviderId> = diesel::sql_query(format!(
        "select provider_resource_id from {table} where dock_id = $1 and status <> 'deleted'"
    ))
    .bind::<SqlUuid, _>(dock_id)
    .load(conn)
    .await?;
    let seen: HashSet<&str> = seen.iter().copied().collect();
    let vanished: Vec<String> = live
        .into_iter()
        .map(|r| r.provider_resource_id)
        .filter(|id| !seen.contains(id.as_str()))
        .collect();
    if vanished.is_empty() {
        return Ok(0);
    }
    let n = diesel::sql_query(format!(
        "update {table} set status = 'deleted' \
         where dock_id = $1 and status <> 'deleted' and provider_resource_id = any($2)"
    ))
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Array<Text>, _>(&vanished)
    .execute(conn)
    .await?;
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A run's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub created: i64,
    pub updated: i64,
    pub deleted: i64,
    pub unchanged: i64,
    pub pages: i64,
    pub requests: i64,
}

/// The provider's rate-limit state, as stored on the dock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateState {
    pub remaining: Option<i32>,
    pub reset_at: Option<DateTime<Utc>>,
}

fn int(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Records a run's outcome: counts, status and error on the run; sync state, back-off and rate
/// limits on the dock (`backoff` only for failures; success clears it and sets last_sync_at).
pub async fn finish_run(
    conn: &mut AsyncPgConnection,
    run: (Uuid, Uuid),
    counts: RunCounts,
    error: Option<&str>,
    backoff: Option<Duration>,
    rate: RateState,
) -> Result<(), DbError> {
    let (run_id, dock_id) = run;
    let status = if error.is_some() { "error" } else { "success" };
    diesel::sql_query(
        "update sync_runs set status = $2, finished_at = now(), created = $3, updated = $4, \
                deleted = $5, unchanged = $6, pages = $7, requests = $8, error = $9 where id = $1",
    )
    .bind::<SqlUuid, _>(run_id)
    .bind::<Text, _>(status)
    .bind::<Integer, _>(int(counts.created))
    .bind::<Integer, _>(int(counts.updated))
    .bind::<Integer, _>(int(counts.deleted))
    .bind::<Integer, _>(int(counts.unchanged))
    .bind::<Integer, _>(int(counts.pages))
    .bind::<Integer, _>(int(counts.requests))
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    let backoff_ms = backoff.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    diesel::sql_query(
        "update docks set last_sync_status = $2, last_sync_error = $3, \
                last_sync_at = case when $2 = 'success' then now() else last_sync_at end, \
                backoff_until = now() + $4 * interval '1 millisecond', \
                rate_limit_remaining = coalesce($5, rate_limit_remaining), \
                rate_limit_reset_at = coalesce($6, rate_limit_reset_at) \
         where id = $1",
    )
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Text, _>(status)
    .bind::<Nullable<Text>, _>(error)
    .bind::<Nullable<BigInt>, _>(backoff_ms)
    .bind::<Nullable<Integer>, _>(rate.remaining)
    .bind::<Nullable<Timestamptz>, _>(rate.reset_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Failed runs of the dock since its last successful one (the current failure not included).
pub async fn failures_since_success(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
) -> Result<i64, DbError> {
    let count: Count = diesel::sql_query(
        "select count(*) as n from sync_runs where dock_id = $1 and status = 'error' \
           and started_at > coalesce((select max(started_at) from sync_runs \
                                       where dock_id = $1 and status = 'success'), '-infinity')",
    )
    .bind::<SqlUuid, _>(dock_id)
    .get_result(conn)
    .await?;
    Ok(count.n)
}

/// A claimed dock.
#[derive(QueryableByName, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    #[diesel(sql_type = SqlUuid)]
    pub dock_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
}

/// Claims up to `limit` due docks of any organization for `owner` (outside any org scope).
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    owner: &str,
    lease: Duration,
    limit: i32,
) -> Result<Vec<Claim>, DbError> {
    Ok(diesel::sql_query(
        "select claimed_dock_id as dock_id, claimed_org_id as org_id \
           from stackgate_claim_due_docks($1, $2, $3)",
    )
    .bind::<Text, _>(owner)
    .bind::<Integer, _>(lease_seconds(lease))
    .bind::<Integer, _>(limit)
    .load(conn)
    .await?)
}

fn lease_seconds(lease: Duration) -> i32 {
    i32::try_from(lease.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// Takes the lease of one live dock now, due or not (a manual sync); false when another owner
/// holds an unexpired lease or the dock is gone.
pub async fn claim_dock(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
    owner: &str,
    lease: Duration,
) -> Result<bool, DbError> {
    let n = diesel::sql_query(
        "update docks set lease_owner = $2, lease_expires_at = now() + $3 * interval '1 second' \
         where id = $1 and deleted_at is null \
           and (lease_expires_at is null or lease_expires_at < now())",
    )
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Text, _>(owner)
    .bind::<Integer, _>(lease_seconds(lease))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Extends `owner`'s lease; false when it no longer holds it.
pub async fn renew_lease(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
    owner: &str,
    lease: Duration,
) -> Result<bool, DbError> {
    let n = diesel::sql_query(
        "update docks set lease_expires_at = now() + $3 * interval '1 second' \
         where id = $1 and lease_owner = $2",
    )
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Text, _>(owner)
    .bind::<Integer, _>(lease_seconds(lease))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Gives `owner`'s lease back.
pub async fn release_lease(
    conn: &mut AsyncPgConnection,
    dock_id: Uuid,
    owner: &str,
) -> Result<(), DbError> {
    diesel::sql_query(
        "update docks set lease_owner = null, lease_expires_at = null where id = $1 and lease_owner = $2",
    )
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Text, _>(owner)
    .execute(conn)
    .await?;
    Ok(())
}
