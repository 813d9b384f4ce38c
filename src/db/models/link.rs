//! `project_resources`: the polymorphic link between projects and resources.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::project::Project;
use super::resource::Kind;
use crate::db::DbError;
use crate::db::schema::{project_resources, projects};

/// One link, with the owning project's total of links matching the page's filter.
#[derive(QueryableByName, Clone, Debug)]
pub struct LinkRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub project_id: Uuid,
    #[diesel(sql_type = Text)]
    pub resource_kind: String,
    #[diesel(sql_type = SqlUuid)]
    pub resource_id: Uuid,
    #[diesel(sql_type = Text)]
    pub denormalized_name: String,
    #[diesel(sql_type = Text)]
    pub denormalized_status: String,
    #[diesel(sql_type = Timestamptz)]
    pub linked_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    /// False for the one row [`page`] gives a project none of whose links is on the page (a
    /// cursor past its last): it only carries the project's total.
    #[diesel(sql_type = Bool)]
    pub in_page: bool,
}

super::keyset::page_row!(LinkRow, project_id);

/// Filter and window of a page of links.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LinkFilter {
    pub kinds: Option<Vec<String>>,
    /// What the linked resources must match beyond their kind.
    pub matching: super::resource::Match,
    /// Keyset position: links strictly after `(denormalized_name, id)`.
    pub after: Option<(String, Uuid)>,
    pub limit: i64,
}

/// Links of each of `projects`, ordered by `(denormalized_name, id)`, at most `limit` each, with
/// each project's total (also when none of its links is on the page: see [`LinkRow::in_page`]):
/// one statement for every project.
pub async fn page(
    conn: &mut AsyncPgConnection,
    projects: &[Uuid],
    filter: &LinkFilter,
) -> Result<Vec<LinkRow>, DbError> {
    let (after_name, after_id) = match &filter.after {
        Some((n, i)) => (Some(n.as_str()), Some(*i)),
        None => (None, None),
    };
    let matching = if filter.matching.is_empty() {
        String::new()
    } else {
        filter.matching.ids_condition("pr.resource_id", 6)
    };
    let query = diesel::sql_query(super::keyset::pages_sql(
        "pr.id, pr.project_id, pr.resource_kind, pr.resource_id, pr.denormalized_name, \
         pr.denormalized_status, pr.linked_at",
        &format!(
            "from project_resources pr \
             where pr.project_id = any($1) and ($2::text[] is null or pr.resource_kind = any($2)){matching}"
        ),
        "project_id",
        "denormalized_name, id",
        "$3::text is null or (denormalized_name, id) > ($3, $4)",
        "$5",
    ))
    .into_boxed()
    .bind::<Array<SqlUuid>, _>(projects)
    .bind::<Nullable<Array<Text>>, _>(filter.kinds.as_deref())
    .bind::<Nullable<Text>, _>(after_name)
    .bind::<Nullable<SqlUuid>, _>(after_id)
    .bind::<BigInt, _>(filter.limit);
    Ok(filter.matching.bind(query).load(conn).await?)
}

/// Per project, how many linked resources are in each health state.
#[derive(QueryableByName, Clone, Debug)]
pub struct HealthCount {
    #[diesel(sql_type = SqlUuid)]
    pub project_id: Uuid,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Health counts over every resource linked to each of `projects`: one statement, over the
/// links alone (each link carries its resource's health state, kept exact by the database).
pub async fn health_counts(
    conn: &mut AsyncPgConnection,
    projects: &[Uuid],
) -> Result<Vec<HealthCount>, DbError> {
    Ok(diesel::sql_query(
        "select project_id, denormalized_health as state, count(*) as n \
         from project_resources \
         where project_id = any($1) and denormalized_status <> 'deleted' group by 1, 2",
    )
    .bind::<Array<SqlUuid>, _>(projects)
    .load(conn)
    .await?)
}

/// The ids of every resource linked to `project`.
pub async fn resource_ids_of(
    conn: &mut AsyncPgConnection,
    project: Uuid,
) -> Result<Vec<Uuid>, DbError> {
    Ok(project_resources::table
        .filter(project_resources::project_id.eq(project))
        .select(project_resources::resource_id)
        .load(conn)
        .await?)
}

/// The live projects each of `resources` is linked to, by slug.
pub async fn projects_of(
    conn: &mut AsyncPgConnection,
    resources: &[Uuid],
) -> Result<Vec<(Uuid, Project)>, DbError> {
    Ok(project_resources::table
        .inner_join(projects::table.on(projects::id.eq(project_resources::project_id)))
        .filter(project_resources::resource_id.eq_any(resources))
        .filter(projects::deleted_at.is_null())
        .order(projects::slug.asc())
        .select((project_resources::resource_id, Project::as_select()))
        .load(conn)
        .await?)
}

/// The column of the exclusive arc that holds a resource of `kind`.
fn insert_link(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    project_id: Uuid,
    kind: Kind,
    resource_id: Uuid,
    linked_by: Uuid,
) -> impl std::future::Future<Output = QueryResult<Uuid>> + Send + '_ {
    let base = (
        project_resources::org_id.eq(org_id),
        project_resources::project_id.eq(project_id),
        project_resources::resource_kind.eq(kind.as_str()),
        project_resources::denormalized_name.eq(""),
        project_resources::denormalized_status.eq("unknown"),
        project_resources::linked_by.eq(linked_by),
    );
    let some = Some(resource_id);
    let arc = match kind {
        Kind::Server => (
            project_resources::server_id.eq(some),
            project_resources::web_service_id.eq(None),
            project_resources::domain_id.eq(None),
            project_resources::database_id.eq(None),
        ),
        Kind::WebService => (
            project_resources::server_id.eq(None),
            project_resources::web_service_id.eq(some),
            project_resources::domain_id.eq(None),
            project_resources::database_id.eq(None),
        ),
        Kind::Domain => (
            project_resources::server_id.eq(None),
            project_resources::web_service_id.eq(None),
            project_resources::domain_id.eq(some),
            project_resources::database_id.eq(None),
        ),
        Kind::Database => (
            project_resources::server_id.eq(None),
            project_resources::web_service_id.eq(None),
            project_resources::domain_id.eq(None),
            project_resources::database_id.eq(some),
        ),
    };
    diesel::insert_into(project_resources::table)
        .values((base, arc))
        .returning(project_resources::id)
        .get_result(conn)
}

/// Links a resource to a project; the database fills the denormalized columns. Returns the
/// link's id, or `None` when the link exists already.
pub async fn link(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    project_id: Uuid,
    kind: Kind,
    resource_id: Uuid,
    linked_by: Uuid,
) -> Result<Option<Uuid>, DbError> {
    match insert_link(conn, org_id, project_id, kind, resource_id, linked_by).await {
        Ok(id) => Ok(Some(id)),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The link between a project and a resource, as a page row (total 1).
pub async fn find(
    conn: &mut AsyncPgConnection,
    project_id: Uuid,
    resource_id: Uuid,
) -> Result<Option<LinkRow>, DbError> {
    Ok(page(
        conn,
        &[project_id],
        &LinkFilter {
            limit: i64::MAX,
            ..LinkFilter::default()
        },
    )
    .await?
    .into_iter()
    .find(|l| l.resource_id == resource_id))
}

/// Removes a link; true when one was removed.
pub async fn unlink(
    conn: &mut AsyncPgConnection,
    project_id: Uuid,
    resource_id: Uuid,
) -> Result<bool, DbError> {
    let removed = diesel::delete(
        project_resources::table
            .filter(project_resources::project_id.eq(project_id))
            .filter(project_resources::resource_id.eq(resource_id)),
    )
    .execute(conn)
    .await?;
    Ok(removed > 0)
}
