//! `operation_services` (backup buckets, CDN, DNS, monitoring…), their team grants
//! (`operation_permissions`) and their links to projects (`project_operation_services`).
//!
//! A service's configuration is encrypted by [`crate::crypto`], bound to its organization, row
//! and column, exactly as a dock's key is; it is written here and never read back by the API.
//! Beside it the row keeps a hint: the configuration's key names, never a value.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::SecretString;
use uuid::Uuid;

use crate::crypto::{self, Binding, Keyring};
use crate::db::DbError;
use crate::db::schema::{operation_permissions, operation_services, project_operation_services};

/// A service row without its encrypted configuration.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = operation_services, check_for_backend(diesel::pg::Pg))]
pub struct OperationService {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    /// `backup_bucket`, `cdn`, `dns`, `monitoring` or `other`.
    pub kind: String,
    pub provider: Option<String>,
    /// The configuration's key names, sorted and comma-separated; `None` without configuration.
    pub config_hint: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A configuration to store: the JSON text (secret) and its hint.
pub struct Config<'a> {
    pub text: &'a SecretString,
    pub hint: &'a str,
}

/// A service to create.
pub struct NewService<'a> {
    pub org_id: Uuid,
    pub name: &'a str,
    pub kind: &'a str,
    pub provider: Option<&'a str>,
    pub config: Option<Config<'a>>,
}

/// Changes to a service: `None` leaves a field; `Some(None)` clears the provider or the
/// configuration.
#[derive(Default)]
pub struct ServiceChanges<'a> {
    pub name: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub provider: Option<Option<&'a str>>,
    pub config: Option<Option<Config<'a>>>,
}

/// Services by id (of the scope's organization: row-level security).
pub async fn by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<OperationService>, DbError> {
    Ok(operation_services::table
        .filter(operation_services::id.eq_any(ids))
        .select(OperationService::as_select())
        .load(conn)
        .await?)
}

/// A page of `org_id`'s services by `(name, id)`, only `visible` ones when given.
pub async fn page(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    visible: Option<&[Uuid]>,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<OperationService>, DbError> {
    let mut query = operation_services::table
        .filter(operation_services::org_id.eq(org_id))
        .order((operation_services::name.asc(), operation_services::id.asc()))
        .limit(limit)
        .select(OperationService::as_select())
        .into_boxed();
    if let Some((name, id)) = after {
        query = query.filter(
            operation_services::name
                .gt(name.clone())
                .or(operation_services::name
                    .eq(name)
                    .and(operation_services::id.gt(id))),
        );
    }
    if let Some(visible) = visible {
        query = query.filter(operation_services::id.eq_any(visible.to_vec()));
    }
    Ok(query.load(conn).await?)
}

/// How many services `org_id` has (only `visible` ones when given).
pub async fn count(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    visible: Option<&[Uuid]>,
) -> Result<i64, DbError> {
    let mut query = operation_services::table
        .filter(operation_services::org_id.eq(org_id))
        .count()
        .into_boxed();
    if let Some(visible) = visible {
        query = query.filter(operation_services::id.eq_any(visible.to_vec()));
    }
    Ok(query.get_result(conn).await?)
}

fn seal(keyring: &Keyring, org_id: Uuid, id: Uuid, config: &Config<'_>) -> Vec<u8> {
    keyring.encrypt_str(
        config.text,
        Binding::new(org_id, id, crypto::OPERATION_CONFIG),
    )
}

/// Inserts a service, its configuration encrypted; returns the row. A name in use is a unique
/// violation.
pub async fn create(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    new: &NewService<'_>,
) -> Result<OperationService, DbError> {
    let id = Uuid::new_v4();
    let sealed = new
        .config
        .as_ref()
        .map(|c| seal(keyring, new.org_id, id, c));
    Ok(diesel::insert_into(operation_services::table)
        .values((
            operation_services::id.eq(id),
            operation_services::org_id.eq(new.org_id),
            operation_services::name.eq(new.name),
            operation_services::kind.eq(new.kind),
            operation_services::provider.eq(new.provider),
            operation_services::encrypted_config.eq(sealed),
            operation_services::config_hint.eq(new.config.as_ref().map(|c| c.hint)),
        ))
        .returning(OperationService::as_returning())
        .get_result(conn)
        .await?)
}

/// Applies `changes` to service `id` of `org_id`; the row, or `None` when there is no such
/// service.
pub async fn update(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    org_id: Uuid,
    id: Uuid,
    changes: &ServiceChanges<'_>,
) -> Result<Option<OperationService>, DbError> {
    let sealed = changes.config.as_ref().map(|config| {
        config
            .as_ref()
            .map(|c| (seal(keyring, org_id, id, c), c.hint.to_owned()))
    });
    // One statement: `coalesce` keeps what is not changed; a flag says whether to clear.
    let row = diesel::sql_query(
        "update operation_services set \
           name = coalesce($3, name), kind = coalesce($4, kind), \
           provider = case when $5 then $6 else provider end, \
           encrypted_config = case when $7 then $8 else encrypted_config end, \
           config_hint = case when $7 then $9 else config_hint end \
         where org_id = $1 and id = $2 \
         returning id, org_id, name, kind, provider, config_hint, created_at, updated_at",
    )
    .bind::<SqlUuid, _>(org_id)
    .bind::<SqlUuid, _>(id)
    .bind::<Nullable<Text>, _>(changes.name)
    .bind::<Nullable<Text>, _>(changes.kind)
    .bind::<diesel::sql_types::Bool, _>(changes.provider.is_some())
    .bind::<Nullable<Text>, _>(changes.provider.flatten())
    .bind::<diesel::sql_types::Bool, _>(sealed.is_some())
    .bind::<Nullable<Bytea>, _>(
        sealed
            .as_ref()
            .and_then(|s| s.as_ref().map(|s| s.0.clone())),
    )
    .bind::<Nullable<Text>, _>(
        sealed
            .as_ref()
            .and_then(|s| s.as_ref().map(|s| s.1.clone())),
    )
    .get_result::<ServiceRow>(conn)
    .await
    .optional()?;
    Ok(row.map(Into::into))
}

#[derive(QueryableByName)]
struct ServiceRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    org_id: Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    provider: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    config_hint: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    updated_at: DateTime<Utc>,
}

impl From<ServiceRow> for OperationService {
    fn from(r: ServiceRow) -> Self {
        Self {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            kind: r.kind,
            provider: r.provider,
            config_hint: r.config_hint,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Deletes a service with its grants and links; false when there was none.
pub async fn delete(conn: &mut AsyncPgConnection, org_id: Uuid, id: Uuid) -> Result<bool, DbError> {
    let n = diesel::delete(
        operation_services::table
            .filter(operation_services::org_id.eq(org_id))
            .filter(operation_services::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// One service linked to one project.
#[derive(QueryableByName, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkPair {
    #[diesel(sql_type = SqlUuid)]
    pub project_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub operation_service_id: Uuid,
}

/// The services linked to each of `projects` (only `visible` ones when given), by service name,
/// at most `limit` per project: one statement.
pub async fn services_of_projects(
    conn: &mut AsyncPgConnection,
    projects: &[Uuid],
    visible: Option<&[Uuid]>,
    limit: i64,
) -> Result<Vec<LinkPair>, DbError> {
    Ok(diesel::sql_query(
        "select project_id, operation_service_id from ( \
           select l.project_id, l.operation_service_id, row_number() over ( \
                    partition by l.project_id order by s.name, s.id) as rn \
             from project_operation_services l \
             join operation_services s on s.org_id = l.org_id and s.id = l.operation_service_id \
            where l.project_id = any($1) and ($2::uuid[] is null or s.id = any($2)) \
         ) t where rn <= $3 order by project_id, rn",
    )
    .bind::<Array<SqlUuid>, _>(projects)
    .bind::<Nullable<Array<SqlUuid>>, _>(visible)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// The live projects each of `services` is linked to (only `visible` ones when given), by
/// project slug, at most `limit` per service: one statement.
pub async fn projects_of_services(
    conn: &mut AsyncPgConnection,
    services: &[Uuid],
    visible: Option<&[Uuid]>,
    limit: i64,
) -> Result<Vec<LinkPair>, DbError> {
    Ok(diesel::sql_query(
        "select project_id, operation_service_id from ( \
           select l.project_id, l.operation_service_id, row_number() over ( \
                    partition by l.operation_service_id order by p.slug, p.id) as rn \
             from project_operation_services l \
             join projects p on p.org_id = l.org_id and p.id = l.project_id \
            where l.operation_service_id = any($1) and p.deleted_at is null \
              and ($2::uuid[] is null or p.id = any($2)) \
         ) t where rn <= $3 order by operation_service_id, rn",
    )
    .bind::<Array<SqlUuid>, _>(services)
    .bind::<Nullable<Array<SqlUuid>>, _>(visible)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// Links a service to a project; false when they were linked already.
pub async fn link(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    project_id: Uuid,
    service_id: Uuid,
    linked_by: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::insert_into(project_operation_services::table)
        .values((
            project_operation_services::org_id.eq(org_id),
            project_operation_services::project_id.eq(project_id),
            project_operation_services::operation_service_id.eq(service_id),
            project_operation_services::linked_by.eq(linked_by),
        ))
        .on_conflict((
            project_operation_services::org_id,
            project_operation_services::project_id,
            project_operation_services::operation_service_id,
        ))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// Unlinks a service from a project; false when they were not linked.
pub async fn unlink(
    conn: &mut AsyncPgConnection,
    project_id: Uuid,
    service_id: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        project_operation_services::table
            .filter(project_operation_services::project_id.eq(project_id))
            .filter(project_operation_services::operation_service_id.eq(service_id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}

/// A team's grant on a service.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = operation_permissions, check_for_backend(diesel::pg::Pg))]
pub struct Permission {
    pub operation_service_id: Uuid,
    pub team_id: Uuid,
    /// `read` or `full`.
    pub level: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The grants on each of `services`, by service then team: one statement.
pub async fn permissions_of(
    conn: &mut AsyncPgConnection,
    services: &[Uuid],
) -> Result<Vec<Permission>, DbError> {
    Ok(operation_permissions::table
        .filter(operation_permissions::operation_service_id.eq_any(services))
        .order((
            operation_permissions::operation_service_id.asc(),
            operation_permissions::team_id.asc(),
        ))
        .select(Permission::as_select())
        .load(conn)
        .await?)
}

/// The grants of `teams` (what their members reach).
pub async fn permissions_of_teams(
    conn: &mut AsyncPgConnection,
    teams: &[Uuid],
) -> Result<Vec<Permission>, DbError> {
    Ok(operation_permissions::table
        .filter(operation_permissions::team_id.eq_any(teams))
        .select(Permission::as_select())
        .load(conn)
        .await?)
}

/// Grants `team` `level` (`read` or `full`) on a service, replacing the level it had.
pub async fn grant(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    service_id: Uuid,
    team_id: Uuid,
    level: &str,
) -> Result<(), DbError> {
    diesel::insert_into(operation_permissions::table)
        .values((
            operation_permissions::org_id.eq(org_id),
            operation_permissions::operation_service_id.eq(service_id),
            operation_permissions::team_id.eq(team_id),
            operation_permissions::level.eq(level),
        ))
        .on_conflict((
            operation_permissions::org_id,
            operation_permissions::operation_service_id,
            operation_permissions::team_id,
        ))
        .do_update()
        .set(operation_permissions::level.eq(level))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes `team`'s grant on a service; false when it had none.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    service_id: Uuid,
    team_id: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        operation_permissions::table
            .filter(operation_permissions::org_id.eq(org_id))
            .filter(operation_permissions::operation_service_id.eq(service_id))
            .filter(operation_permissions::team_id.eq(team_id)),
    )
    .execute(conn)
    .await?;
    Ok(n > 0)
}
