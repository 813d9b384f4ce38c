//! `__diesel_schema_migrations`: which migrations the database has.

use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;

use crate::db::{DbError, Pool};

#[derive(diesel::QueryableByName)]
struct Latest {
    #[diesel(sql_type = Nullable<Text>)]
    version: Option<String>,
}

/// The newest applied migration version, if any (readiness).
pub async fn latest_applied(pool: &Pool) -> Result<Option<String>, DbError> {
    let mut conn = pool.get().await?;
    let row: Latest =
        diesel::sql_query("select max(version) as version from __diesel_schema_migrations")
            .get_result(&mut conn)
            .await?;
    Ok(row.version)
}
