//! `users`: people, identified by their identity provider's subject (`external_id`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::{memberships, users};

/// A user row.
#[derive(Queryable, Selectable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: Uuid,
    pub external_id: String,
    pub email: String,
    pub name: String,
    pub is_platform_admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Finds the user a token's subject names.
pub async fn find_by_external_id(
    conn: &mut AsyncPgConnection,
    external_id: &str,
) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::external_id.eq(external_id))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The users among `ids` who are members of `org_id`.
pub async fn find_members(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    ids: &[Uuid],
) -> Result<Vec<User>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(users::table
        .inner_join(memberships::table.on(memberships::user_id.eq(users::id)))
        .filter(memberships::org_id.eq(org_id))
        .filter(users::id.eq_any(ids))
        .select(User::as_select())
        .load(conn)
        .await?)
}

/// Inserts a user unless the external id exists; returns the row either way (seeding).
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    external_id: &str,
    email: &str,
    name: &str,
) -> Result<User, DbError> {
    diesel::insert_into(users::table)
        .values((
            users::external_id.eq(external_id),
            users::email.eq(email),
            users::name.eq(name),
        ))
        .on_conflict(users::external_id)
        .do_nothing()
        .execute(conn)
        .await?;
    find_by_external_id(conn, external_id)
        .await?
        .ok_or(DbError::Query(diesel::result::Error::NotFound))
}

/// Finds a user by id (as far as row-level security shows them).
pub async fn find_by_id(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::id.eq(id))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Creates the user the transaction's `stackgate.external_id` names (a verified token's
/// subject), unless it exists: returns its id, or `None` when another user has `email`
/// (compared case-insensitively), which is never taken over. Concurrent calls for one subject
/// create one user (see the `onboarding_management` migration).
pub async fn provision(
    conn: &mut AsyncPgConnection,
    email: &str,
    name: &str,
) -> Result<Option<Uuid>, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Provisioned {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
        id: Option<Uuid>,
    }
    let row: Provisioned = diesel::sql_query("select stackgate_provision_user($1, $2) as id")
        .bind::<diesel::sql_types::Text, _>(email)
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result(conn)
        .await?;
    Ok(row.id)
}

/// Counts one more organization created by `user_id`, unless they have created `max` already:
/// false then. Locks the user's row, so concurrent creations by one user are counted one by one.
pub async fn count_created_organization(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    max: u32,
) -> Result<bool, DbError> {
    let updated = diesel::update(users::table)
        .filter(users::id.eq(user_id))
        .filter(users::organizations_created.lt(i32::try_from(max).unwrap_or(i32::MAX)))
        .set(users::organizations_created.eq(users::organizations_created + 1))
        .execute(conn)
        .await?;
    Ok(updated == 1)
}
