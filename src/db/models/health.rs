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
/// position, at most `limit` each: one statement. Each resource's page is read from the
/// `(resource_id, checked_at desc)` index, so a long history is not sorted per request.
pub async fn history_page(
    conn: &mut AsyncPgConnection,
    resources: &[Uuid],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CheckRow>, DbError> {
    Ok(diesel::sql_query(
        "select c.id, r.id as resource_id, c.checked_at, c.state, c.latency_ms, c.message, t.total \
         from unnest($1::uuid[]) as r(id) \
         cross join lateral (select count(*) as total from health_checks h where h.resource_id = r.id) t \
         cross join lateral ( \
           select h.id, h.checked_at, h.state, h.latency_ms, h.message from health_checks h \
            where h.resource_id = r.id \
              and ($2::timestamptz is null or (h.checked_at, h.id) < ($2, $3)) \
            order by h.checked_at desc, h.id desc limit $4 \
         ) c \
         order by r.id, c.checked_at desc, c.id desc",
    )
    .bind::<Array<SqlUuid>, _>(resources)
    .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
    .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}
