//! `teams`, `clients`, `roles` and the members of an organization: who is who.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::user::User;
use crate::db::DbError;
use crate::db::schema::{clients, memberships, roles, teams, users};

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = teams, check_for_backend(diesel::pg::Pg))]
pub struct Team {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = clients, check_for_backend(diesel::pg::Pg))]
pub struct Client {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = roles, check_for_backend(diesel::pg::Pg))]
pub struct Role {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub permissions: serde_json::Value,
    pub is_builtin: bool,
}

/// A member of an organization: the user and their role's name.
#[derive(Clone, Debug)]
pub struct Member {
    pub user: User,
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

pub async fn teams(conn: &mut AsyncPgConnection, org_id: Uuid) -> Result<Vec<Team>, DbError> {
    Ok(teams::table
        .filter(teams::org_id.eq(org_id))
        .order((teams::name, teams::id))
        .select(Team::as_select())
        .load(conn)
        .await?)
}

pub async fn teams_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<Team>, DbError> {
    Ok(teams::table
        .filter(teams::id.eq_any(ids))
        .select(Team::as_select())
        .load(conn)
        .await?)
}

pub async fn clients(conn: &mut AsyncPgConnection, org_id: Uuid) -> Result<Vec<Client>, DbError> {
    Ok(clients::table
        .filter(clients::org_id.eq(org_id))
        .order((clients::name, clients::id))
        .select(Client::as_select())
        .load(conn)
        .await?)
}

pub async fn clients_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<Client>, DbError> {
    Ok(clients::table
        .filter(clients::id.eq_any(ids))
        .select(Client::as_select())
        .load(conn)
        .await?)
}

pub async fn roles(conn: &mut AsyncPgConnection, org_id: Uuid) -> Result<Vec<Role>, DbError> {
    Ok(roles::table
        .filter(roles::org_id.eq(org_id))
        .order((roles::name, roles::id))
        .select(Role::as_select())
        .load(conn)
        .await?)
}

/// Every member of `org_id`, by name.
pub async fn members(conn: &mut AsyncPgConnection, org_id: Uuid) -> Result<Vec<Member>, DbError> {
    let rows: Vec<(User, String, DateTime<Utc>)> = memberships::table
        .inner_join(users::table.on(users::id.eq(memberships::user_id)))
        .inner_join(roles::table.on(roles::id.eq(memberships::role_id)))
        .filter(memberships::org_id.eq(org_id))
        .order((users::name, users::id))
        .select((User::as_select(), roles::name, memberships::created_at))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(user, role, joined_at)| Member {
            user,
            role,
            joined_at,
        })
        .collect())
}
