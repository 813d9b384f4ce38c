//! The probe scheduler's queries: claiming due probes across organizations, reading what to
//! probe, and recording a result on the resource row (`docs/health.md`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::resource::Kind;
use crate::db::DbError;

/// A claimed probe: which resource, in which organization, and its interval.
#[derive(diesel::QueryableByName, Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    #[diesel(sql_type = SqlUuid)]
    pub resource_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Integer)]
    pub interval_seconds: i32,
}

/// Claims up to `limit` due probes of any organization for `owner` (outside any org scope),
/// through `stackgate_claim_due_health_checks`.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    owner: &str,
    lease: Duration,
    limit: i32,
    default_interval: Duration,
) -> Result<Vec<Claim>, DbError> {
    Ok(diesel::sql_query(
        "select claimed_resource_id as resource_id, claimed_org_id as org_id, \
                claimed_kind as kind, claimed_interval_seconds as interval_seconds \
           from stackgate_claim_due_health_checks($1, $2, $3, $4)",
    )
    .bind::<Text, _>(owner)
    .bind::<Integer, _>(seconds(lease, 86_400))
    .bind::<Integer, _>(limit)
    .bind::<Integer, _>(seconds(default_interval, 604_800))
    .load(conn)
    .await?)
}

fn seconds(d: Duration, max: u64) -> i32 {
    i32::try_from(d.as_secs().clamp(1, max)).unwrap_or(i32::MAX)
}

/// What a resource row says to probe (the columns of its kind that name an address).
#[derive(diesel::QueryableByName, Clone, Debug)]
pub struct TargetRow {
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub provider: String,
    /// `production_url`, the server's IP (v4, else v6), `domain_name`, or the database's host.
    #[diesel(sql_type = Nullable<Text>)]
    pub address: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub port: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub engine: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub expires_at: Option<DateTime<Utc>>,
    /// For DigitalOcean apps: the parts of `full_api_data` that carry the provider's verdict.
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub provider_data: Option<serde_json::Value>,
}

/// The targets of the given resources of the scope's organization, one id list per kind in
/// [`Kind::ALL`] order: one statement.
pub async fn targets(
    conn: &mut AsyncPgConnection,
    ids: &[Vec<Uuid>; 4],
) -> Result<Vec<TargetRow>, DbError> {
    Ok(diesel::sql_query(
        "select 'server'::text as kind, id, name, provider, \
                coalesce(primary_ip_address, ipv6) as address, null::integer as port, \
                null::text as engine, null::timestamptz as expires_at, null::jsonb as provider_data \
           from servers where id = any($1) \
         union all \
         select 'web_service', id, name, provider, production_url, null, null, null, \
                case when provider = 'digitalocean' then jsonb_strip_nulls(jsonb_build_object( \
                    'active_deployment', full_api_data -> 'active_deployment', \
                    'app_health', full_api_data -> 'app_health', \
                    'health', full_api_data -> 'health')) end \
           from web_services where id = any($2) \
         union all \
         select 'domain', id, name, provider, domain_name, null, null, expires_at, null \
           from domains where id = any($3) \
         union all \
         select 'database', id, name, provider, host, port, engine, null, null \
           from databases where id = any($4)",
    )
    .bind::<Array<SqlUuid>, _>(&ids[0])
    .bind::<Array<SqlUuid>, _>(&ids[1])
    .bind::<Array<SqlUuid>, _>(&ids[2])
    .bind::<Array<SqlUuid>, _>(&ids[3])
    .load(conn)
    .await?)
}

/// A resource's confirmed health and hysteresis streak.
#[derive(diesel::QueryableByName, Clone, Debug)]
pub struct HealthRow {
    #[diesel(sql_type = SqlUuid)]
    pub dock_id: Uuid,
    #[diesel(sql_type = Text)]
    pub health_state: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub health_streak_state: Option<String>,
    #[diesel(sql_type = Integer)]
    pub health_streak_count: i32,
}

/// Locks the resource if `owner` still holds its probe lease, and reads its health state;
/// `None` when the lease was lost or the resource is gone.
pub async fn lock_leased(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    id: Uuid,
    owner: &str,
) -> Result<Option<HealthRow>, DbError> {
    let sql = format!(
        "select dock_id, health_state, health_streak_state, health_streak_count from {} \
          where id = $1 and health_lease_owner = $2 for update",
        kind.table()
    );
    let rows: Vec<HealthRow> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(owner)
        .load(conn)
        .await?;
    Ok(rows.into_iter().next())
}

/// One probe's result for the resource row.
#[derive(Clone, Debug)]
pub struct Recorded<'a> {
    pub confirmed: &'a str,
    pub checked_at: DateTime<Utc>,
    pub streak: Option<(&'a str, i32)>,
    pub next_check_at: DateTime<Utc>,
}

/// Writes the confirmed state, check time, streak and next check, and releases the lease.
pub async fn record_on_resource(
    conn: &mut AsyncPgConnection,
    kind: Kind,
    id: Uuid,
    r: &Recorded<'_>,
) -> Result<(), DbError> {
    let sql = format!(
        "update {} set health_state = $2, last_health_check_at = $3, health_streak_state = $4, \
                health_streak_count = $5, health_next_check_at = $6, \
                health_lease_owner = null, health_lease_expires_at = null \
          where id = $1",
        kind.table()
    );
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(r.confirmed)
        .bind::<Timestamptz, _>(r.checked_at)
        .bind::<Nullable<Text>, _>(r.streak.map(|s| s.0))
        .bind::<Integer, _>(r.streak.map_or(0, |s| s.1))
        .bind::<Timestamptz, _>(r.next_check_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Appends one probe result to `health_checks`.
pub async fn insert_check(
    conn: &mut AsyncPgConnection,
    (org_id, kind, id): (Uuid, Kind, Uuid),
    checked_at: DateTime<Utc>,
    (state, latency_ms, message): (&str, Option<i32>, &str),
) -> Result<(), DbError> {
    diesel::sql_query(
        "insert into health_checks (org_id, resource_kind, resource_id, checked_at, state, latency_ms, message) \
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind::<SqlUuid, _>(org_id)
    .bind::<Text, _>(kind.as_str())
    .bind::<SqlUuid, _>(id)
    .bind::<Timestamptz, _>(checked_at)
    .bind::<Text, _>(state)
    .bind::<Nullable<Integer>, _>(latency_ms)
    .bind::<Text, _>(message)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Pruned {
    #[diesel(sql_type = Integer)]
    n: i32,
}

/// Deletes up to `limit` checks older than `retention`, across organizations, through
/// `stackgate_prune_health_checks` (the app's role may not delete history itself).
pub async fn prune(
    conn: &mut AsyncPgConnection,
    retention: Duration,
    limit: i32,
) -> Result<i32, DbError> {
    let retention = i32::try_from(retention.as_secs().max(3600)).unwrap_or(i32::MAX);
    let pruned: Pruned = diesel::sql_query("select stackgate_prune_health_checks($1, $2) as n")
        .bind::<Integer, _>(retention)
        .bind::<Integer, _>(limit)
        .get_result(conn)
        .await?;
    Ok(pruned.n)
}
