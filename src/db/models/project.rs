//! `projects`: client work that resources are linked to.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::projects;

/// Inserts a project unless its slug exists in the org (idempotent; seeding).
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    name: &str,
    slug: &str,
    description: &str,
) -> Result<(), DbError> {
    let exists: i64 = projects::table
        .filter(projects::org_id.eq(org_id))
        .filter(projects::slug.eq(slug))
        .filter(projects::deleted_at.is_null())
        .count()
        .get_result(conn)
        .await?;
    if exists == 0 {
        diesel::insert_into(projects::table)
            .values((
                projects::org_id.eq(org_id),
                projects::name.eq(name),
                projects::slug.eq(slug),
                projects::description.eq(description),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}
