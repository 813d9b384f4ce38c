//! `audit_logs`: an append-only record of who did what (the app's role may only insert and read).

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;

/// Who acted, and from where.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub org_id: Uuid,
    pub user_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// One audited act.
#[derive(Clone, Debug)]
pub struct Entry<'a> {
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<Uuid>,
    /// `success`, `denied` or `error`.
    pub result: &'a str,
    pub message: Option<&'a str>,
    pub metadata: serde_json::Value,
}

/// Appends an entry (inside the caller's transaction, so it commits with what it records).
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    entry: &Entry<'_>,
) -> Result<(), DbError> {
    diesel::sql_query(
        "insert into audit_logs (org_id, user_id, api_key_id, action, target_type, target_id, result, message, \
                                 metadata, ip_address, user_agent) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::inet, $11)",
    )
    .bind::<SqlUuid, _>(actor.org_id)
    .bind::<Nullable<SqlUuid>, _>(actor.user_id)
    .bind::<Nullable<SqlUuid>, _>(actor.api_key_id)
    .bind::<Text, _>(entry.action)
    .bind::<Nullable<Text>, _>(entry.target_type)
    .bind::<Nullable<SqlUuid>, _>(entry.target_id)
    .bind::<Text, _>(entry.result)
    .bind::<Nullable<Text>, _>(entry.message)
    .bind::<Jsonb, _>(&entry.metadata)
    .bind::<Nullable<Text>, _>(actor.ip_address.as_deref())
    .bind::<Nullable<Text>, _>(actor.user_agent.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored entry.
#[derive(diesel::QueryableByName, Clone, Debug)]
pub struct AuditRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub user_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub api_key_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub target_type: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub target_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    pub result: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub message: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub metadata: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub ip_address: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_agent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// Filters of the audit log.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub actions: Option<Vec<String>>,
    pub user_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    /// Keyset position: entries strictly older than `(created_at, id)`.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Entries of `org_id`, newest first, filtered; with the filter's total.
pub async fn page(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    filter: &Filter,
) -> Result<(Vec<AuditRow>, i64), DbError> {
    let conditions = "org_id = $1 and ($2::text[] is null or action = any($2)) and ($3::uuid is null or user_id = $3) \
                      and ($4::timestamptz is null or created_at >= $4)";
    let rows: Vec<AuditRow> = diesel::sql_query(format!(
        "select id, user_id, api_key_id, action, target_type, target_id, result, message, metadata, \
                host(ip_address) as ip_address, user_agent, created_at \
         from audit_logs where {conditions} and ($5::timestamptz is null or (created_at, id) < ($5, $6)) \
         order by created_at desc, id desc limit $7"
    ))
    .bind::<SqlUuid, _>(org_id)
    .bind::<Nullable<Array<Text>>, _>(filter.actions.as_deref())
    .bind::<Nullable<SqlUuid>, _>(filter.user_id)
    .bind::<Nullable<Timestamptz>, _>(filter.since)
    .bind::<Nullable<Timestamptz>, _>(filter.after.map(|a| a.0))
    .bind::<Nullable<SqlUuid>, _>(filter.after.map(|a| a.1))
    .bind::<BigInt, _>(filter.limit)
    .load(conn)
    .await?;
    #[derive(diesel::QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let total: Total = diesel::sql_query(format!(
        "select count(*) as n from audit_logs where {conditions}"
    ))
    .bind::<SqlUuid, _>(org_id)
    .bind::<Nullable<Array<Text>>, _>(filter.actions.as_deref())
    .bind::<Nullable<SqlUuid>, _>(filter.user_id)
    .bind::<Nullable<Timestamptz>, _>(filter.since)
    .get_result(conn)
    .await?;
    Ok((rows, total.n))
}
