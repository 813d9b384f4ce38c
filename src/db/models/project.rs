//! `projects`: client work that resources are linked to.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::projects;

/// A live project row.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = projects, check_for_backend(diesel::pg::Pg))]
pub struct Project {
    pub id: Uuid,
    pub org_id: Uuid,
    pub client_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `search` as an ILIKE pattern matching it anywhere, with wildcards escaped.
fn contains_pattern(search: &str) -> String {
    let escaped = search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A page of `org_id`'s live projects by slug, after `after`, matching `search` in name or slug.
pub async fn page(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    search: Option<&str>,
    visible: Option<&[Uuid]>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Project>, DbError> {
    let mut query = projects::table
        .filter(projects::org_id.eq(org_id))
        .filter(projects::deleted_at.is_null())
        .order(projects::slug.asc())
        .limit(limit)
        .select(Project::as_select())
        .into_boxed();
    if let Some(search) = search {
        let pattern = contains_pattern(search);
        query = query.filter(
            projects::name
                .ilike(pattern.clone())
                .or(projects::slug.ilike(pattern)),
        );
    }
    if let Some(after) = after {
        query = query.filter(projects::slug.gt(after.to_owned()));
    }
    if let Some(visible) = visible {
        query = query.filter(projects::id.eq_any(visible.to_vec()));
    }
    Ok(query.load(conn).await?)
}

/// How many live projects of `org_id` match `search`.
pub async fn count(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    search: Option<&str>,
    visible: Option<&[Uuid]>,
) -> Result<i64, DbError> {
    let mut query = projects::table
        .filter(projects::org_id.eq(org_id))
        .filter(projects::deleted_at.is_null())
        .count()
        .into_boxed();
    if let Some(search) = search {
        let pattern = contains_pattern(search);
        query = query.filter(
            projects::name
                .ilike(pattern.clone())
                .or(projects::slug.ilike(pattern)),
        );
    }
    if let Some(visible) = visible {
        query = query.filter(projects::id.eq_any(visible.to_vec()));
    }
    Ok(query.get_result(conn).await?)
}

/// Live projects by id.
pub async fn by_ids(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> Result<Vec<Project>, DbError> {
    Ok(projects::table
        .filter(projects::id.eq_any(ids))
        .filter(projects::deleted_at.is_null())
        .select(Project::as_select())
        .load(conn)
        .await?)
}

/// What a new project is made of.
pub struct NewProject<'a> {
    pub org_id: Uuid,
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    pub client_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub created_by: Uuid,
}

/// Inserts a project; a live project with the same slug makes it a unique violation.
pub async fn create(conn: &mut AsyncPgConnection, new: NewProject<'_>) -> Result<Project, DbError> {
    Ok(diesel::insert_into(projects::table)
        .values((
            projects::org_id.eq(new.org_id),
            projects::name.eq(new.name),
            projects::slug.eq(new.slug),
            projects::description.eq(new.description),
            projects::client_id.eq(new.client_id),
            projects::team_id.eq(new.team_id),
            projects::created_by.eq(new.created_by),
        ))
        .returning(Project::as_returning())
        .get_result(conn)
        .await?)
}

/// Changes to a project; `None` leaves a field as it is, `Some(None)` clears a nullable one.
#[derive(AsChangeset, Default)]
#[diesel(table_name = projects)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub description: Option<Option<String>>,
    pub client_id: Option<Option<Uuid>>,
    pub team_id: Option<Option<Uuid>>,
}

/// Applies `changes` to a live project; `None` when it does not exist (for the scope).
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: ProjectChanges,
) -> Result<Option<Project>, DbError> {
    let target = projects::table
        .filter(projects::id.eq(id))
        .filter(projects::deleted_at.is_null());
    let nothing = changes.name.is_none()
        && changes.slug.is_none()
        && changes.description.is_none()
        && changes.client_id.is_none()
        && changes.team_id.is_none();
    if nothing {
        return Ok(target
            .select(Project::as_select())
            .first(conn)
            .await
            .optional()?);
    }
    Ok(diesel::update(target)
        .set(changes)
        .returning(Project::as_returning())
        .get_result(conn)
        .await
        .optional()?)
}

/// Soft-deletes a live project; true when one was deleted.
pub async fn soft_delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, DbError> {
    let deleted = diesel::update(
        projects::table
            .filter(projects::id.eq(id))
            .filter(projects::deleted_at.is_null()),
    )
    .set(projects::deleted_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    Ok(deleted > 0)
}

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
