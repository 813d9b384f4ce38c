//! `health_checks`: the history of probe results per resource.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;

/// One recorded check, with its resource's total of checks.
#[derive(diesel::QueryableByName, Clone, Debug)]
pub struct CheckRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub resource_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    pub checked_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub latency_ms: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub message: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

/// Checks of each of `resources`, newest first (`checked_at desc, id desc`), after the keyset
/// position, at most `limit` each: one statement.
pub async fn history_page(
    conn: &mut AsyncPgConnection,
    resources: &[Uuid],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CheckRow>, DbError> {
    Ok(diesel::sql_query(
        "select id, resource_id, checked_at, state, latency_ms, message, total from ( \
           select c.*, row_number() over (partition by resource_id order by checked_at desc, id desc) as rn from ( \
             select id, resource_id, checked_at, state, latency_ms, message, \
                    count(*) over (partition by resource_id) as total \
             from health_checks where resource_id = any($1) \
           ) c where $2::timestamptz is null or (c.checked_at, c.id) < ($2, $3) \
         ) t where rn <= $4 order by resource_id, rn",
    )
    .bind::<Array<SqlUuid>, _>(resources)
    .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
    .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}
