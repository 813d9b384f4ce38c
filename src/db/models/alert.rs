//! `alerts`: opened when a resource's confirmed health turns bad, resolved when it recovers.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::resource::Kind;
use crate::db::DbError;

/// One alert.
#[derive(diesel::QueryableByName, Clone, Debug)]
pub struct AlertRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = Text)]
    pub resource_kind: String,
    #[diesel(sql_type = SqlUuid)]
    pub resource_id: Uuid,
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Text)]
    pub message: String,
    #[diesel(sql_type = Timestamptz)]
    pub opened_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub acknowledged_by: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub acknowledgement_note: Option<String>,
    /// Who resolved it by hand; `None` when the monitor did (or while open).
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub resolved_by: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub resolution_note: Option<String>,
}

const COLUMNS: &str = "a.id, a.org_id, a.resource_kind, a.resource_id, a.severity, a.message, a.opened_at, \
     a.resolved_at, a.acknowledged_at, a.acknowledged_by, a.acknowledgement_note, a.resolved_by, a.resolution_note";

/// Opens an alert on a resource (at most one may be open: resolve the last one first).
pub async fn open(
    conn: &mut AsyncPgConnection,
    (org_id, kind, resource_id): (Uuid, Kind, Uuid),
    severity: &str,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::sql_query(
        "insert into alerts (org_id, resource_kind, resource_id, severity, message, opened_at) \
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<SqlUuid, _>(org_id)
    .bind::<Text, _>(kind.as_str())
    .bind::<SqlUuid, _>(resource_id)
    .bind::<Text, _>(severity)
    .bind::<Text, _>(message)
    .bind::<Timestamptz, _>(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Resolves the resource's open alert, if any; returns how many were resolved.
pub async fn resolve_open(
    conn: &mut AsyncPgConnection,
    resource_id: Uuid,
    at: DateTime<Utc>,
) -> Result<usize, DbError> {
    Ok(diesel::sql_query(
        "update alerts set resolved_at = $2 where resource_id = $1 and resolved_at is null",
    )
    .bind::<SqlUuid, _>(resource_id)
    .bind::<Timestamptz, _>(at)
    .execute(conn)
    .await?)
}

/// Which alerts of an organization to list.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `Some(true)`: open only; `Some(false)`: resolved only.
    pub open: Option<bool>,
    /// For restricted viewers: only alerts of resources on these docks or with these ids.
    pub visible: Option<(Vec<Uuid>, Vec<Uuid>)>,
    /// Keyset position: alerts strictly older than `(opened_at, id)`.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Alerts whose resource still exists (and is visible), with their resource's dock.
const FROM: &str = "from alerts a join lateral ( \
       select s.dock_id from servers s where a.resource_kind = 'server' and s.id = a.resource_id \
       union all select w.dock_id from web_services w where a.resource_kind = 'web_service' and w.id = a.resource_id \
       union all select d.dock_id from domains d where a.resource_kind = 'domain' and d.id = a.resource_id \
       union all select b.dock_id from databases b where a.resource_kind = 'database' and b.id = a.resource_id \
     ) r on true \
     where a.org_id = $1 and ($2::boolean is null or (a.resolved_at is null) = $2) \
       and ($3::uuid[] is null or r.dock_id = any($3) or a.resource_id = any($4))";

/// A page of the organization's alerts, newest first (`opened_at desc, id desc`).
pub async fn page(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    filter: &Filter,
) -> Result<Vec<AlertRow>, DbError> {
    let sql = format!(
        "select {COLUMNS} {FROM} and ($5::timestamptz is null or (a.opened_at, a.id) < ($5, $6)) \
         order by a.opened_at desc, a.id desc limit $7"
    );
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(org_id)
        .bind::<Nullable<Bool>, _>(filter.open)
        .bind::<Nullable<Array<SqlUuid>>, _>(filter.visible.as_ref().map(|v| &v.0))
        .bind::<Array<SqlUuid>, _>(filter.visible.as_ref().map_or(&[][..], |v| &v.1[..]))
        .bind::<Nullable<Timestamptz>, _>(filter.after.map(|a| a.0))
        .bind::<Nullable<SqlUuid>, _>(filter.after.map(|a| a.1))
        .bind::<BigInt, _>(filter.limit)
        .load(conn)
        .await?)
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many alerts the filter matches in all (the window aside).
pub async fn count(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    filter: &Filter,
) -> Result<i64, DbError> {
    let count: Count = diesel::sql_query(format!("select count(*) as n {FROM}"))
        .bind::<SqlUuid, _>(org_id)
        .bind::<Nullable<Bool>, _>(filter.open)
        .bind::<Nullable<Array<SqlUuid>>, _>(filter.visible.as_ref().map(|v| &v.0))
        .bind::<Array<SqlUuid>, _>(filter.visible.as_ref().map_or(&[][..], |v| &v.1[..]))
        .get_result(conn)
        .await?;
    Ok(count.n)
}

/// Alerts by id (of the scope's organization).
pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<AlertRow>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(format!(
        "select {COLUMNS} from alerts a where a.id = any($1)"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?)
}

/// What a person did to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handling {
    Acknowledge,
    Resolve,
}

/// Why an alert could not be acknowledged or resolved.
#[derive(Debug, thiserror::Error)]
pub enum HandlingError {
    #[error("no such alert")]
    NotFound,
    #[error("the alert is already resolved")]
    Resolved,
    #[error("the alert is already acknowledged")]
    Acknowledged,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for HandlingError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e.into())
    }
}

#[derive(diesel::QueryableByName)]
struct OpenState {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    acknowledged_at: Option<DateTime<Utc>>,
}

/// Acknowledges or resolves the open alert `id` (of the scope's organization) as `user` with
/// `note`, under the row's lock. Resolving an acknowledged alert is allowed; acknowledging twice,
/// or handling a resolved alert, is not.
pub async fn handle(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    user: Uuid,
    how: Handling,
    note: Option<&str>,
) -> Result<(), HandlingError> {
    let state: Option<OpenState> = diesel::sql_query(
        "select resolved_at, acknowledged_at from alerts where id = $1 for update",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .map(Some)
    .or_else(|e| match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e),
    })?;
    let state = state.ok_or(HandlingError::NotFound)?;
    if state.resolved_at.is_some() {
        return Err(HandlingError::Resolved);
    }
    let sql = match how {
        Handling::Acknowledge if state.acknowledged_at.is_some() => {
            return Err(HandlingError::Acknowledged);
        }
        Handling::Acknowledge => {
            "update alerts set acknowledged_at = now(), acknowledged_by = $2, \
             acknowledgement_note = $3 where id = $1"
        }
        Handling::Resolve => {
            "update alerts set resolved_at = now(), resolved_by = $2, resolution_note = $3 \
             where id = $1"
        }
    };
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(user)
        .bind::<Nullable<Text>, _>(note)
        .execute(conn)
        .await?;
    Ok(())
}
