//! `memberships` and `roles`: who belongs to which organization, with which role.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::organization::Organization;
use crate::db::DbError;
use crate::db::schema::{memberships, organizations, roles};

/// One of a user's memberships: the organization, the role's name and its permissions.
#[derive(Clone, Debug)]
pub struct Membership {
    pub organization: Organization,
    pub role: String,
    pub permissions: serde_json::Value,
}

/// Every live organization `user_id` belongs to, ordered by slug.
pub async fn of_user(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Vec<Membership>, DbError> {
    let rows: Vec<(Organization, String, serde_json::Value)> = memberships::table
        .inner_join(organizations::table.on(organizations::id.eq(memberships::org_id)))
        .inner_join(roles::table.on(roles::id.eq(memberships::role_id)))
        .filter(memberships::user_id.eq(user_id))
        .filter(organizations::deleted_at.is_null())
        .order(organizations::slug.asc())
        .select((Organization::as_select(), roles::name, roles::permissions))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(organization, role, permissions)| Membership {
            organization,
            role,
            permissions,
        })
        .collect())
}

/// Makes `user_id` a member of `org_id` with the built-in role `role` (idempotent; seeding).
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
    role: &str,
) -> Result<(), DbError> {
    let role_id: Uuid = roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::name.eq(role))
        .select(roles::id)
        .first(conn)
        .await?;
    diesel::insert_into(memberships::table)
        .values((
            memberships::org_id.eq(org_id),
            memberships::user_id.eq(user_id),
            memberships::role_id.eq(role_id),
        ))
        .on_conflict((memberships::org_id, memberships::user_id))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}
