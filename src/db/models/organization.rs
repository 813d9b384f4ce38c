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

/// Creates organization `id` (the transaction's `stackgate.org_id`, as row-level security
/// requires); its trigger adds the built-in roles. A slug in use is a unique violation.
pub async fn create(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    name: &str,
    slug: &str,
) -> Result<Organization, DbError> {
    Ok(diesel::insert_into(organizations::table)
        .values((
            organizations::id.eq(id),
            organizations::name.eq(name),
            organizations::slug.eq(slug),
        ))
        .returning(Organization::as_returning())
        .get_result(conn)
        .await?)
}

/// Renames the live organization `id` and/or changes its slug (`None`: unchanged); `None`
/// when it is not live or not visible. A slug in use is a unique violation.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    name: Option<&str>,
    slug: Option<&str>,
) -> Result<Option<Organization>, DbError> {
    let target = organizations::table
        .filter(organizations::id.eq(id))
        .filter(organizations::deleted_at.is_null());
    let changes = (
        name.map(|n| organizations::name.eq(n)),
        slug.map(|s| organizations::slug.eq(s)),
    );
    if name.is_none() && slug.is_none() {
        return Ok(target
            .select(Organization::as_select())
            .first(conn)
            .await
            .optional()?);
    }
    Ok(diesel::update(target)
        .set(changes)
        .returning(Organization::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Soft-deletes the live organization `id`; false when it is not live or not visible.
pub async fn soft_delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, DbError> {
    let n = diesel::update(
        organizations::table
            .filter(organizations::id.eq(id))
            .filter(organizations::deleted_at.is_null()),
    )
    .set(organizations::deleted_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(n == 1)
}
