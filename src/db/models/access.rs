//! Changing who may do what: teams, clients and their members, roles, org memberships and dock
//! grants. Every query names its organization, and row-level security checks it again.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::directory::{Client, Member, Role, Team};
use super::user::User;
use crate::db::DbError;
use crate::db::schema::{
    client_memberships, clients, dock_permissions, docks, memberships, roles, team_memberships,
    teams, users,
};

/// Who a dock is granted to: exactly one team or one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grantee {
    Team(Uuid),
    Client(Uuid),
}

pub async fn create_team(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    name: &str,
) -> Result<Team, DbError> {
    Ok(diesel::insert_into(teams::table)
        .values((teams::org_id.eq(org_id), teams::name.eq(name)))
        .returning(Team::as_returning())
        .get_result(conn)
        .await?)
}

pub async fn create_client(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    name: &str,
) -> Result<Client, DbError> {
    Ok(diesel::insert_into(clients::table)
        .values((clients::org_id.eq(org_id), clients::name.eq(name)))
        .returning(Client::as_returning())
        .get_result(conn)
        .await?)
}

/// Creates a custom (not built-in) role; the caller validates `permissions`.
pub async fn create_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    name: &str,
    permissions: &serde_json::Value,
) -> Result<Role, DbError> {
    Ok(diesel::insert_into(roles::table)
        .values((
            roles::org_id.eq(org_id),
            roles::name.eq(name),
            roles::permissions.eq(permissions),
        ))
        .returning(Role::as_returning())
        .get_result(conn)
        .await?)
}

/// A role of `org_id` by id.
pub async fn role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<Role>, DbError> {
    Ok(roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::id.eq(id))
        .select(Role::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The built-in role `name` of `org_id`.
pub async fn builtin_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    name: &str,
) -> Result<Option<Role>, DbError> {
    Ok(roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::name.eq(name))
        .filter(roles::is_builtin)
        .select(Role::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Whom a mutation names: a user id, or an e-mail (matched case-insensitively).
#[derive(Clone, Copy, Debug)]
pub enum PersonRef<'a> {
    Id(Uuid),
    Email(&'a str),
}

diesel::define_sql_function!(fn lower(x: Text) -> Text);

/// The user `who` names if they already reach `org_id` (a member, or in one of its teams or
/// clients); anyone else, known elsewhere or unknown, is `None` alike.
pub async fn person_reaching(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    who: PersonRef<'_>,
) -> Result<Option<User>, DbError> {
    let member = memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(users::id));
    let in_team = team_memberships::table
        .filter(team_memberships::org_id.eq(org_id))
        .filter(team_memberships::user_id.eq(users::id));
    let in_client = client_memberships::table
        .filter(client_memberships::org_id.eq(org_id))
        .filter(client_memberships::user_id.eq(users::id));
    let mut query = users::table
        .filter(
            diesel::dsl::exists(member)
                .or(diesel::dsl::exists(in_team))
                .or(diesel::dsl::exists(in_client)),
        )
        .select(User::as_select())
        .into_boxed();
    query = match who {
        PersonRef::Id(id) => query.filter(users::id.eq(id)),
        PersonRef::Email(email) => query.filter(lower(users::email).eq(email.to_lowercase())),
    };
    Ok(query.first(conn).await.optional()?)
}

/// The role of `user_id`'s membership of `org_id`, if they are a member.
pub async fn member_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Role>, DbError> {
    Ok(memberships::table
        .inner_join(roles::table.on(roles::id.eq(memberships::role_id)))
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .select(Role::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Makes `user_id` a member of `org_id` with a role (a unique violation when they are one).
pub async fn add_member(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<(), DbError> {
    diesel::insert_into(memberships::table)
        .values((
            memberships::org_id.eq(org_id),
            memberships::user_id.eq(user_id),
            memberships::role_id.eq(role_id),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds `user_id` to a team with a role (a unique violation when already in it).
pub async fn add_team_member(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    team_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<(), DbError> {
    diesel::insert_into(team_memberships::table)
        .values((
            team_memberships::org_id.eq(org_id),
            team_memberships::team_id.eq(team_id),
            team_memberships::user_id.eq(user_id),
            team_memberships::role_id.eq(role_id),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds `user_id` to a client with a role (a unique violation when already in it).
pub async fn add_client_member(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    client_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<(), DbError> {
    diesel::insert_into(client_memberships::table)
        .values((
            client_memberships::org_id.eq(org_id),
            client_memberships::client_id.eq(client_id),
            client_memberships::user_id.eq(user_id),
            client_memberships::role_id.eq(role_id),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the memberships holding `org_id`'s built-in `owner` role (`for update`, in id order)
/// and returns their users. Until the transaction ends no one else can demote or remove an
/// owner, so a count taken here stays true; call it before locking any single membership.
pub async fn lock_owners(conn: &mut AsyncPgConnection, org_id: Uuid) -> Result<Vec<Uuid>, DbError> {
    let owner_role = roles::table
        .filter(roles::org_id.eq(org_id))
        .filter(roles::name.eq("owner"))
        .filter(roles::is_builtin)
        .select(roles::id)
        .single_value();
    Ok(memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::role_id.nullable().eq(owner_role))
        .order(memberships::id)
        .select(memberships::user_id)
        .for_update()
        .load(conn)
        .await?)
}

/// Locks `user_id`'s membership of `org_id` and returns its role id.
pub async fn lock_membership(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Uuid>, DbError> {
    Ok(memberships::table
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .select(memberships::role_id)
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn set_member_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
    role_id: Uuid,
) -> Result<(), DbError> {
    diesel::update(memberships::table)
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .set(memberships::role_id.eq(role_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// One member of `org_id` with their role's name.
pub async fn member(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Member>, DbError> {
    let row: Option<(User, String, DateTime<Utc>)> = memberships::table
        .inner_join(users::table.on(users::id.eq(memberships::user_id)))
        .inner_join(roles::table.on(roles::id.eq(memberships::role_id)))
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .select((User::as_select(), roles::name, memberships::created_at))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(|(user, role, joined_at)| Member {
        user,
        role,
        joined_at,
    }))
}

/// Removes `user_id` from `org_id`: their membership and every team and client membership
/// there. False when they had none.
pub async fn remove_member(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    user_id: Uuid,
) -> Result<bool, DbError> {
    let org = diesel::delete(memberships::table)
        .filter(memberships::org_id.eq(org_id))
        .filter(memberships::user_id.eq(user_id))
        .execute(conn)
        .await?;
    let teams = diesel::delete(team_memberships::table)
        .filter(team_memberships::org_id.eq(org_id))
        .filter(team_memberships::user_id.eq(user_id))
        .execute(conn)
        .await?;
    let clients = diesel::delete(client_memberships::table)
        .filter(client_memberships::org_id.eq(org_id))
        .filter(client_memberships::user_id.eq(user_id))
        .execute(conn)
        .await?;
    Ok(org + teams + clients > 0)
}

/// True when `dock_id` is a live dock of `org_id`.
pub async fn live_dock(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    dock_id: Uuid,
) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        docks::table
            .filter(docks::org_id.eq(org_id))
            .filter(docks::id.eq(dock_id))
            .filter(docks::deleted_at.is_null()),
    ))
    .get_result(conn)
    .await?)
}

/// Grants `level` (`read` or `full`) on a dock, replacing the grantee's previous level.
pub async fn grant_dock(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    dock_id: Uuid,
    grantee: Grantee,
    level: &str,
) -> Result<(), DbError> {
    let (team, client) = match grantee {
        Grantee::Team(id) => (Some(id), None),
        Grantee::Client(id) => (None, Some(id)),
    };
    let insert = diesel::insert_into(dock_permissions::table).values((
        dock_permissions::org_id.eq(org_id),
        dock_permissions::dock_id.eq(dock_id),
        dock_permissions::team_id.eq(team),
        dock_permissions::client_id.eq(client),
        dock_permissions::level.eq(level),
    ));
    let set_level = dock_permissions::level.eq(level);
    match grantee {
        Grantee::Team(_) => {
            insert
                .on_conflict((
                    dock_permissions::org_id,
                    dock_permissions::dock_id,
                    dock_permissions::team_id,
                ))
                .do_update()
                .set(set_level)
                .execute(conn)
                .await?
        }
        Grantee::Client(_) => {
            insert
                .on_conflict((
                    dock_permissions::org_id,
                    dock_permissions::dock_id,
                    dock_permissions::client_id,
                ))
                .do_update()
                .set(set_level)
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// Removes the grantee's grant on a dock; false when there was none.
pub async fn revoke_dock(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    dock_id: Uuid,
    grantee: Grantee,
) -> Result<bool, DbError> {
    let grants = dock_permissions::table
        .filter(dock_permissions::org_id.eq(org_id))
        .filter(dock_permissions::dock_id.eq(dock_id));
    let removed = match grantee {
        Grantee::Team(id) => {
            diesel::delete(grants.filter(dock_permissions::team_id.eq(id)))
                .execute(conn)
                .await?
        }
        Grantee::Client(id) => {
            diesel::delete(grants.filter(dock_permissions::client_id.eq(id)))
                .execute(conn)
                .await?
        }
    };
    Ok(removed > 0)
}

/// Renames team `id` of `org_id`; `None` when there is no such team. A name in use is a
/// unique violation.
pub async fn rename_team(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<Option<Team>, DbError> {
    Ok(diesel::update(
        teams::table
            .filter(teams::org_id.eq(org_id))
            .filter(teams::id.eq(id)),
    )
    .set(teams::name.eq(name))
    .returning(Team::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Deletes team `id` of `org_id` with its memberships, dock grants and pending invitations;
/// its projects stay, without a team. False when there is no such team.
pub async fn delete_team(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        teams::table
            .filter(teams::org_id.eq(org_id))
            .filter(teams::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Takes `user_id` out of team `team_id`; false when they were not in it.
pub async fn remove_team_member(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    team_id: Uuid,
    user_id: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        team_memberships::table
            .filter(team_memberships::org_id.eq(org_id))
            .filter(team_memberships::team_id.eq(team_id))
            .filter(team_memberships::user_id.eq(user_id)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Renames client `id` of `org_id`; `None` when there is no such client.
pub async fn rename_client(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<Option<Client>, DbError> {
    Ok(diesel::update(
        clients::table
            .filter(clients::org_id.eq(org_id))
            .filter(clients::id.eq(id)),
    )
    .set(clients::name.eq(name))
    .returning(Client::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// Deletes client `id` of `org_id` with its memberships, dock grants and pending invitations;
/// its projects stay, without a client. False when there is no such client.
pub async fn delete_client(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        clients::table
            .filter(clients::org_id.eq(org_id))
            .filter(clients::id.eq(id)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Takes `user_id` out of client `client_id`'s portal; false when they were not in it.
pub async fn remove_client_member(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    client_id: Uuid,
    user_id: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        client_memberships::table
            .filter(client_memberships::org_id.eq(org_id))
            .filter(client_memberships::client_id.eq(client_id))
            .filter(client_memberships::user_id.eq(user_id)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Renames the custom role `id` of `org_id` (built-in roles are left alone: `None`, as for no
/// such role). A name in use is a unique violation.
pub async fn rename_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<Option<Role>, DbError> {
    Ok(diesel::update(
        roles::table
            .filter(roles::org_id.eq(org_id))
            .filter(roles::id.eq(id))
            .filter(roles::is_builtin.eq(false)),
    )
    .set(roles::name.eq(name))
    .returning(Role::as_returning())
    .get_result(conn)
    .await
    .optional()?)
}

/// True when someone holds role `id` of `org_id`: in the organization, a team or a client.
pub async fn role_in_use(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<bool, DbError> {
    use diesel::dsl::exists;
    let members = exists(
        memberships::table
            .filter(memberships::org_id.eq(org_id))
            .filter(memberships::role_id.eq(id)),
    );
    let teams = exists(
        team_memberships::table
            .filter(team_memberships::org_id.eq(org_id))
            .filter(team_memberships::role_id.eq(id)),
    );
    let clients = exists(
        client_memberships::table
            .filter(client_memberships::org_id.eq(org_id))
            .filter(client_memberships::role_id.eq(id)),
    );
    Ok(diesel::select(members.or(teams).or(clients))
        .get_result(conn)
        .await?)
}

/// Deletes the custom role `id` of `org_id`; false when there is no such custom role. A role
/// someone holds, or that an invitation names, is a foreign key violation.
pub async fn delete_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<bool, DbError> {
    let n = diesel::delete(
        roles::table
            .filter(roles::org_id.eq(org_id))
            .filter(roles::id.eq(id))
            .filter(roles::is_builtin.eq(false)),
    )
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// The role `user_id` holds in team `team_id`, if they are in it.
pub async fn team_member_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    team_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Role>, DbError> {
    Ok(team_memberships::table
        .inner_join(roles::table.on(roles::id.eq(team_memberships::role_id)))
        .filter(team_memberships::org_id.eq(org_id))
        .filter(team_memberships::team_id.eq(team_id))
        .filter(team_memberships::user_id.eq(user_id))
        .select(Role::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The role `user_id` holds in client `client_id`'s portal, if they are in it.
pub async fn client_member_role(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    client_id: Uuid,
    user_id: Uuid,
) -> Result<Option<Role>, DbError> {
    Ok(client_memberships::table
        .inner_join(roles::table.on(roles::id.eq(client_memberships::role_id)))
        .filter(client_memberships::org_id.eq(org_id))
        .filter(client_memberships::client_id.eq(client_id))
        .filter(client_memberships::user_id.eq(user_id))
        .select(Role::as_select())
        .first(conn)
        .await
        .optional()?)
}
