//! `invitations`: how people who do not reach an organization yet join it, with their consent.
//!
//! The organization's side reads them under row-level security like any tenant table. The
//! invitee's side cannot (they live in organizations the invitee does not reach yet) and goes
//! through `stackgate_invitations_of_current_user`, which returns only invitations addressed to
//! the e-mail of the transaction's `stackgate.user_id`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::directory::{Client, Role, Team};
use super::user::User;
use crate::db::DbError;
use crate::db::schema::invitations;

/// An invitation row.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = invitations, check_for_backend(diesel::pg::Pg))]
pub struct Invitation {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub role_id: Uuid,
    pub team_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub invited_by: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Invitation {
    /// Why it can no longer be accepted, if it cannot.
    pub fn closed(&self, now: DateTime<Utc>) -> Option<&'static str> {
        if self.accepted_at.is_some() {
            Some("the invitation was already accepted")
        } else if self.revoked_at.is_some() {
            Some("the invitation was revoked")
        } else if self.expires_at <= now {
            Some("the invitation has expired: ask for a new one")
        } else {
            None
        }
    }
}

/// A new invitation; `email` is already lower-cased.
pub struct NewInvitation<'a> {
    pub org_id: Uuid,
    pub email: &'a str,
    pub role_id: Uuid,
    pub team_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// An invitation with what it shows: its organization's name, its role, team, client and
/// inviter. The same columns come from the organization's side and from the invitee's function.
#[derive(QueryableByName, Clone, Debug)]
pub struct InvitationView {
    #[diesel(sql_type = SqlUuid)]
    pub invitation_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = Text)]
    pub org_name: String,
    #[diesel(sql_type = Text)]
    pub org_slug: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = SqlUuid)]
    role_id: Uuid,
    #[diesel(sql_type = Text)]
    role_name: String,
    #[diesel(sql_type = Jsonb)]
    role_permissions: serde_json::Value,
    #[diesel(sql_type = Bool)]
    role_is_builtin: bool,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    team_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    team_name: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    team_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    client_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    client_name: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    client_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    invited_by: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    inviter_email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    inviter_name: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    inviter_created_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub expires_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub accepted_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub revoked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

impl InvitationView {
    pub fn role(&self) -> Role {
        Role {
            id: self.role_id,
            org_id: self.org_id,
            name: self.role_name.clone(),
            permissions: self.role_permissions.clone(),
            is_builtin: self.role_is_builtin,
        }
    }

    pub fn team(&self) -> Option<Team> {
        Some(Team {
            id: self.team_id?,
            org_id: self.org_id,
            name: self.team_name.clone()?,
            created_at: self.team_created_at?,
        })
    }

    pub fn client(&self) -> Option<Client> {
        Some(Client {
            id: self.client_id?,
            org_id: self.org_id,
            name: self.client_name.clone()?,
            created_at: self.client_created_at?,
        })
    }

    /// Who sent it, as far as a `User` shows a person (id, e-mail, name): the invitee may not
    /// read the inviter's row, so the rest is left blank. `None` once the inviter is gone or no
    /// longer visible.
    pub fn inviter(&self) -> Option<User> {
        let created_at = self.inviter_created_at?;
        Some(User {
            id: self.invited_by?,
            external_id: String::new(),
            email: self.inviter_email.clone()?,
            name: self.inviter_name.clone()?,
            is_platform_admin: false,
            created_at,
            updated_at: created_at,
        })
    }
}

/// The organization's side: its invitations among `ids` (every one when `None`), pending ones
/// only when `pending`; newest first, at most 500.
const OF_ORG: &str = "select i.id as invitation_id, i.org_id, o.name as org_name, o.slug as org_slug, i.email, \
        r.id as role_id, r.name as role_name, r.permissions as role_permissions, \
        r.is_builtin as role_is_builtin, \
        t.id as team_id, t.name as team_name, t.created_at as team_created_at, \
        c.id as client_id, c.name as client_name, c.created_at as client_created_at, \
        i.invited_by, u.email as inviter_email, u.name as inviter_name, \
        u.created_at as inviter_created_at, \
        i.expires_at, i.accepted_at, i.revoked_at, i.created_at \
    from invitations i \
    join organizations o on o.id = i.org_id \
    join roles r on r.org_id = i.org_id and r.id = i.role_id \
    left join teams t on t.org_id = i.org_id and t.id = i.team_id \
    left join clients c on c.org_id = i.org_id and c.id = i.client_id \
    left join users u on u.id = i.invited_by \
    where i.org_id = $1 \
      and ($2::uuid[] is null or i.id = any($2)) \
      and (not $3 or (i.accepted_at is null and i.revoked_at is null and i.expires_at > now())) \
    order by i.created_at desc, i.id desc \
    limit 500";

/// Invitations of `org_id` (see [`OF_ORG`]).
pub async fn of_org(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    ids: Option<&[Uuid]>,
    pending: bool,
) -> Result<Vec<InvitationView>, DbError> {
    Ok(diesel::sql_query(OF_ORG)
        .bind::<SqlUuid, _>(org_id)
        .bind::<Nullable<Array<SqlUuid>>, _>(ids)
        .bind::<Bool, _>(pending)
        .load(conn)
        .await?)
}

/// The invitee's side: invitations addressed to the transaction's user — the one with `id` in
/// any state, or the 100 newest pending ones when `id` is `None`.
pub async fn of_current_user(
    conn: &mut AsyncPgConnection,
    id: Option<Uuid>,
) -> Result<Vec<InvitationView>, DbError> {
    Ok(
        diesel::sql_query("select * from stackgate_invitations_of_current_user($1)")
            .bind::<Nullable<SqlUuid>, _>(id)
            .load(conn)
            .await?,
    )
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    new: NewInvitation<'_>,
) -> Result<Invitation, DbError> {
    Ok(diesel::insert_into(invitations::table)
        .values((
            invitations::org_id.eq(new.org_id),
            invitations::email.eq(new.email),
            invitations::role_id.eq(new.role_id),
            invitations::team_id.eq(new.team_id),
            invitations::client_id.eq(new.client_id),
            invitations::invited_by.eq(new.invited_by),
            invitations::expires_at.eq(new.expires_at),
        ))
        .returning(Invitation::as_returning())
        .get_result(conn)
        .await?)
}

/// Locks an invitation of `org_id` (`for update`) so that accepting and revoking it serialize.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<Option<Invitation>, DbError> {
    Ok(invitations::table
        .filter(invitations::org_id.eq(org_id))
        .filter(invitations::id.eq(id))
        .select(Invitation::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

pub async fn revoke(conn: &mut AsyncPgConnection, org_id: Uuid, id: Uuid) -> Result<(), DbError> {
    diesel::update(invitations::table)
        .filter(invitations::org_id.eq(org_id))
        .filter(invitations::id.eq(id))
        .set(invitations::revoked_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_accepted(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    id: Uuid,
) -> Result<(), DbError> {
    diesel::update(invitations::table)
        .filter(invitations::org_id.eq(org_id))
        .filter(invitations::id.eq(id))
        .set(invitations::accepted_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}
