//! `docks` (provider connections) and their `sync_runs`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::docks;

/// A dock row without its encrypted key.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = docks, check_for_backend(diesel::pg::Pg))]
pub struct Dock {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub provider: String,
    pub api_key_hint: Option<String>,
    /// Base-URL override of the provider's API.
    pub endpoint: Option<String>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_status: String,
    pub last_sync_error: Option<String>,
    pub sync_interval_seconds: i32,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Docks by id, deleted ones included (their resources may still point at them).
pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<Dock>, DbError> {
    Ok(docks::table
        .filter(docks::id.eq_any(ids))
        .select(Dock::as_select())
        .load(conn)
        .await?)
}

/// A page of `org_id`'s live docks by `(name, id)`.
pub async fn page(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    visible: Option<&[Uuid]>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<Dock>, DbError> {
    let mut query = docks::table
        .filter(docks::org_id.eq(org_id))
        .filter(docks::deleted_at.is_null())
        .order((docks::name.asc(), docks::id.asc()))
        .limit(limit)
        .select(Dock::as_select())
        .into_boxed();
    if let Some((name, id)) = after {
        query = query.filter(
            docks::name
                .gt(name.clone())
                .or(docks::name.eq(name).and(docks::id.gt(id))),
        );
    }
    if let Some(visible) = visible {
        query = query.filter(docks::id.eq_any(visible.to_vec()));
    }
    Ok(query.load(conn).await?)
}

/// How many live docks `org_id` has.
pub async fn count(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    visible: Option<&[Uuid]>,
) -> Result<i64, DbError> {
    let mut query = docks::table
        .filter(docks::org_id.eq(org_id))
        .filter(docks::deleted_at.is_null())
        .count()
        .into_boxed();
    if let Some(visible) = visible {
        query = query.filter(docks::id.eq_any(visible.to_vec()));
    }
    Ok(query.get_result(conn).await?)
}

/// A sync run, with its dock's total of runs.
#[derive(QueryableByName, Clone, Debug)]
pub struct SyncRunRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub dock_id: Uuid,
    #[diesel(sql_type = Text)]
    pub trigger: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Timestamptz)]
    pub started_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Integer)]
    pub created: i32,
    #[diesel(sql_type = Integer)]
    pub updated: i32,
    #[diesel(sql_type = Integer)]
    pub deleted: i32,
    #[diesel(sql_type = Integer)]
    pub unchanged: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub error: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    /// False for the one row [`sync_runs_page`] gives a dock none of whose runs is on the page (a
    /// cursor past its oldest): it only carries the dock's total.
    #[diesel(sql_type = Bool)]
    pub in_page: bool,
}

super::keyset::page_row!(SyncRunRow, dock_id);

const SYNC_RUN_COLUMNS: &str = "id, dock_id, trigger, status, started_at, finished_at, created, \
     updated, deleted, unchanged, error";

/// Sync runs of each of `docks`, newest first (`started_at desc, id desc`), after the keyset
/// position, at most `limit` each, with each dock's total (also when none of its runs is on the
/// page: see [`SyncRunRow::in_page`]): one statement.
pub async fn sync_runs_page(
    conn: &mut AsyncPgConnection,
    docks: &[Uuid],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<SyncRunRow>, DbError> {
    Ok(diesel::sql_query(super::keyset::pages_sql(
        SYNC_RUN_COLUMNS,
        "from sync_runs where dock_id = any($1)",
        "dock_id",
        "started_at desc, id desc",
        "$2::timestamptz is null or (started_at, id) < ($2, $3)",
        "$4",
    ))
    .bind::<Array<SqlUuid>, _>(docks)
    .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
    .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// Sync runs by id.
pub async fn sync_runs_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<SyncRunRow>, DbError> {
    Ok(diesel::sql_query(format!(
        "select {SYNC_RUN_COLUMNS}, 1::bigint as total, true as in_page from sync_runs \
         where id = any($1)"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?)
}

/// Renames live dock `id` of `org_id` and/or sets its sync interval (`None`: unchanged);
/// false when there is no such live dock. A name in use is a unique violation.
pub async fn update_settings(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    name: Option<&str>,
    interval_seconds: Option<i32>,
) -> Result<bool, DbError> {
    if name.is_none() && interval_seconds.is_none() {
        let found: Option<Uuid> = docks::table
            .filter(docks::org_id.eq(org_id))
            .filter(docks::id.eq(id))
            .filter(docks::deleted_at.is_null())
            .select(docks::id)
            .first(conn)
            .await
            .optional()?;
        return Ok(found.is_some());
    }
    let n = diesel::update(
        docks::table
            .filter(docks::org_id.eq(org_id))
            .filter(docks::id.eq(id))
            .filter(docks::deleted_at.is_null()),
    )
    .set((
        name.map(|n| docks::name.eq(n)),
        interval_seconds.map(|s| docks::sync_interval_seconds.eq(s)),
    ))
    .execute(conn)
    .await?;
    Ok(n == 1)
}
