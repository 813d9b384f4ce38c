//! `organizations`: the tenants.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::organizations;

/// An organization row (live ones only are ever loaded).
#[derive(Queryable, Selectable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = organizations, check_for_backend(diesel::pg::Pg))]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Finds a live organization by slug, as far as row-level security lets the scope see it.
pub async fn find_by_slug(
    conn: &mut AsyncPgConnection,
    slug: &str,
) -> Result<Option<Organization>, DbError> {
    Ok(organizations::table
        .filter(organizations::slug.eq(slug))
        .filter(organizations::deleted_at.is_null())
        .select(Organization::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Inserts an organization unless its slug exists; returns the row either way (seeding).
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    name: &str,
    slug: &str,
) -> Result<Organization, DbError> {
    diesel::insert_into(organizations::table)
        .values((organizations::name.eq(name), organizations::slug.eq(slug)))
        .on_conflict(organizations::slug)
        .do_nothing()
        .execute(conn)
        .await?;
    find_by_slug(conn, slug)
        .await?
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}
