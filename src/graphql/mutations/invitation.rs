//! `createInvitation`, `revokeInvitation`, `acceptInvitation`: the only way someone who does not
//! reach an organization joins it, by their own act.
//!
//! Creating and revoking need settings FULL and obey the role hierarchy ([`Grantor`]). Creating
//! looks nobody up, so known and unknown e-mails get the same answer. Accepting is the invitee's
//! act (the authenticated user whose e-mail matches, case-insensitively; anyone else gets
//! `NOT_FOUND`), audited in the inviting organization; it creates the membership and marks the
//! invitation accepted in one transaction, and only while its sender could still grant the role.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::roles::{Grantor, Standing, org_role};
use super::validate::{not_found, optional_id, valid_email};
use super::{Act, audited, audited_in, org_full, pool, refusal, settings_act};
use crate::auth::permissions::Area;
use crate::db::Scope;
use crate::db::models::access;
use crate::db::models::directory;
use crate::db::models::invitation::{self, Invitation, InvitationView, NewInvitation};
use crate::error::ApiError;
use crate::graphql::context::{caller, viewer};
use crate::graphql::ids;
use crate::graphql::types::invitation::InvitationNode;

/// How long an invitation stays open unless `expiresAt` says otherwise.
const DEFAULT_TTL_DAYS: i64 = 7;
/// The furthest `expiresAt` may be.
const MAX_TTL_DAYS: i64 = 30;

/// What `createInvitation` takes.
#[derive(InputObject)]
pub struct CreateInvitationInput {
    /// Whom to invite. Whoever accepts must have this e-mail (compared case-insensitively).
    pub email: String,
    /// The role to grant: in the organization, or in `teamId`'s team or `clientId`'s client.
    /// Defaults to the built-in `member` (`viewer` for a client). It may not exceed the
    /// caller's own role; only owners invite owners.
    pub role_id: Option<ID>,
    /// Invite into this team only (at most one of `teamId` and `clientId`).
    pub team_id: Option<ID>,
    /// Invite into this client's portal only.
    pub client_id: Option<ID>,
    /// When it lapses: in the future and at most 30 days ahead; 7 days by default.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where an invitation leads.
#[derive(Clone, Copy)]
enum Target {
    Organization,
    Team(Uuid),
    Client(Uuid),
}

#[derive(Default)]
pub struct InvitationMutations;

#[Object]
impl InvitationMutations {
    /// Invites someone by e-mail into the organization, or into one of its teams or clients,
    /// with a role. The answer is the same whether anyone has that e-mail or not. Needs
    /// settings FULL; refused (`FORBIDDEN`, audited) for a role above the caller's own, an owner
    /// role from a non-owner, and platform admins outside their own organizations. Returns the
    /// invitation; `NOT_FOUND` for an unknown team, client or role, `CONFLICT` when the same
    /// invitation is pending, `BAD_USER_INPUT` for a bad field.
    async fn create_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom to invite, where, and with which role.")]
        input: CreateInvitationInput,
    ) -> async_graphql::Result<InvitationNode> {
        let viewer = viewer(ctx)?;
        let (org, grantor) = (viewer.organization.id, Grantor::of(viewer));
        let email = valid_email(&input.email)?.to_lowercase();
        let target = target(input.team_id, input.client_id)?;
        let role = optional_id(input.role_id.as_ref(), "Role")?;
        let expires_at = expiry(input.expires_at, Utc::now())?;
        let act = settings_act("invitation.create", "Invitation", None);
        let view = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            if grantor.platform_admin {
                return Err(ApiError::Forbidden(
                    "invitations are sent by members of the organization".into(),
                ));
            }
            check_target(conn, org, target).await?;
            let role = match role {
                Some(id) => org_role(conn, org, id).await?,
                None => default_role(conn, org, target).await?,
            };
            grantor.check(conn, org, &role).await?;
            let (team_id, client_id) = match target {
                Target::Organization => (None, None),
                Target::Team(id) => (Some(id), None),
                Target::Client(id) => (None, Some(id)),
            };
            let new = NewInvitation {
                org_id: org,
                email: &email,
                role_id: role.id,
                team_id,
                client_id,
                invited_by: grantor.user,
                expires_at,
            };
            let row = invitation::create(conn, new)
                .await
                .map_err(|e| refusal(e, "the invitation exists", "no such role"))?;
            Ok((view_of(conn, org, row.id).await?, Some(row.id)))
        })
        .await?;
        Ok(InvitationNode(Arc::new(view)))
    }

    /// Revokes a pending invitation of the organization; false when it was already revoked,
    /// `BAD_USER_INPUT` once accepted, `NOT_FOUND` for an unknown one; true when revoked now.
    /// Needs settings FULL and the right to grant its role (`FORBIDDEN`, audited).
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's id.")] id: ID,
    ) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx)?;
        let (org, grantor) = (viewer.organization.id, Grantor::of(viewer));
        let id = ids::decode_as(&id, "Invitation")?;
        let act = invitation_act("invitation.revoke", id);
        Ok(
            audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
                let row = invitation::lock(conn, org, id)
                    .await?
                    .ok_or_else(|| not_found("invitation"))?;
                if row.accepted_at.is_some() {
                    return Err(ApiError::BadUserInput(
                        "the invitation was accepted: remove the member instead".into(),
                    ));
                }
                if row.revoked_at.is_some() {
                    return Ok((false, None));
                }
                let role = org_role(conn, org, row.role_id).await?;
                grantor.check(conn, org, &role).await?;
                invitation::revoke(conn, org, id).await?;
                Ok((true, None))
            })
            .await?,
        )
    }

    /// Accepts an invitation addressed to the caller's e-mail: they become a member of its
    /// organization (or of its team or client) with its role, in one transaction. Someone
    /// else's invitation is `NOT_FOUND`; an accepted, revoked or expired one, or one whose
    /// sender may no longer grant its role, is `BAD_USER_INPUT`; `CONFLICT` when the caller is
    /// a member already. Works for callers who belong to no organization yet. Not with an API
    /// key (`FORBIDDEN`).
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The invitation's id, as `viewer { invitations }` lists it.")] id: ID,
    ) -> async_graphql::Result<InvitationNode> {
        let caller = caller(ctx)?;
        let (me, email, by_key) = (
            caller.user.id,
            caller.user.email.to_lowercase(),
            caller.api_key_id.is_some(),
        );
        let id = ids::decode_as(&id, "Invitation")?;
        let lookup = Scope {
            user_id: Some(me),
            ..Scope::default()
        };
        let found = lookup
            .transaction(pool(ctx).await?, async |conn| {
                invitation::of_current_user(conn, Some(id)).await
            })
            .await?;
        let org = found
            .first()
            .map(|i| i.org_id)
            .ok_or_else(|| not_found("invitation"))?;
        let act = invitation_act("invitation.accept", id);
        let view = audited_in(ctx, org, act, async |conn| {
            if by_key {
                return Err(ApiError::Forbidden(
                    "invitations are accepted with your own sign-in, not with an API key".into(),
                ));
            }
            let row = invitation::lock(conn, org, id)
                .await?
                .filter(|row| row.email == email)
                .ok_or_else(|| not_found("invitation"))?;
            if let Some(why) = row.closed(Utc::now()) {
                return Err(ApiError::BadUserInput(why.into()));
            }
            still_grantable(conn, &row).await?;
            join(conn, &row, me).await?;
            invitation::mark_accepted(conn, org, id).await?;
            Ok((view_of(conn, org, id).await?, None))
        })
        .await?;
        Ok(InvitationNode(Arc::new(view)))
    }
}

fn invitation_act(action: &str, id: Uuid) -> Act<'_> {
    Act {
        area: Area::Settings,
        action,
        target_type: "Invitation",
        target_id: Some(id),
    }
}

/// At most one of `teamId` and `clientId`.
fn target(team_id: Option<ID>, client_id: Option<ID>) -> Result<Target, ApiError> {
    match (team_id, client_id) {
        (None, None) => Ok(Target::Organization),
        (Some(team), None) => Ok(Target::Team(ids::decode_as(&team, "Team")?)),
        (None, Some(client)) => Ok(Target::Client(ids::decode_as(&client, "Client")?)),
        (Some(_), Some(_)) => Err(ApiError::BadUserInput(
            "give at most one of `teamId` and `clientId`".into(),
        )),
    }
}

/// `expiresAt`, or the default; in the future and at most [`MAX_TTL_DAYS`] ahead of `now`.
fn expiry(wanted: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let at = wanted.unwrap_or(now + Duration::days(DEFAULT_TTL_DAYS));
    if at <= now || at > now + Duration::days(MAX_TTL_DAYS) {
        return Err(ApiError::BadUserInput(format!(
            "`expiresAt` must be in the future and at most {MAX_TTL_DAYS} days ahead"
        )));
    }
    Ok(at)
}

/// Checks that the team or client exists in the organization.
async fn check_target(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    target: Target,
) -> Result<(), ApiError> {
    let exists = match target {
        Target::Organization => true,
        Target::Team(id) => directory::teams_by_ids(conn, &[id])
            .await?
            .iter()
            .any(|t| t.org_id == org),
        Target::Client(id) => directory::clients_by_ids(conn, &[id])
            .await?
            .iter()
            .any(|c| c.org_id == org),
    };
    match (exists, target) {
        (true, _) => Ok(()),
        (false, Target::Client(_)) => Err(not_found("client")),
        (false, _) => Err(not_found("team")),
    }
}

/// The built-in role an invitation grants when it names none.
async fn default_role(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    target: Target,
) -> Result<directory::Role, ApiError> {
    let name = match target {
        Target::Client(_) => "viewer",
        _ => "member",
    };
    access::builtin_role(conn, org, name)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no built-in {name} role")))
}

/// Refuses an invitation its sender could no longer send: they left the organization, or
/// their role no longer covers the one it grants.
async fn still_grantable(conn: &mut AsyncPgConnection, row: &Invitation) -> Result<(), ApiError> {
    let invalid = || {
        ApiError::BadUserInput(
            "the invitation is no longer valid: its sender may no longer grant its role; ask for a new one"
                .into(),
        )
    };
    let Some(sender) = row.invited_by else {
        return Err(invalid());
    };
    let sender_role = access::member_role(conn, row.org_id, sender)
        .await?
        .ok_or_else(invalid)?;
    let role = org_role(conn, row.org_id, row.role_id).await?;
    Standing::of(Some(&sender_role))
        .check(&role)
        .map_err(|_| invalid())
}

/// Creates the membership the invitation grants (`CONFLICT` when the caller already has it; an
/// existing membership is never changed by an invitation).
async fn join(conn: &mut AsyncPgConnection, row: &Invitation, me: Uuid) -> Result<(), ApiError> {
    let (org, role) = (row.org_id, row.role_id);
    let missing = "the invitation's team, client or role is gone";
    match (row.team_id, row.client_id) {
        (Some(team), _) => access::add_team_member(conn, org, team, me, role)
            .await
            .map_err(|e| refusal(e, "you are in the team already", missing)),
        (None, Some(client)) => access::add_client_member(conn, org, client, me, role)
            .await
            .map_err(|e| refusal(e, "you are in the client already", missing)),
        (None, None) => access::add_member(conn, org, me, role)
            .await
            .map_err(|e| refusal(e, "you are a member of the organization already", missing)),
    }
}

/// One invitation of `org` as the organization sees it.
async fn view_of(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    id: Uuid,
) -> Result<InvitationView, ApiError> {
    invitation::of_org(conn, org, Some(&[id]), false)
        .await?
        .pop()
        .ok_or_else(|| not_found("invitation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_in_the_future_and_bounded() {
        let now = Utc::now();
        assert_eq!(
            expiry(None, now).ok(),
            Some(now + Duration::days(DEFAULT_TTL_DAYS))
        );
        let soon = now + Duration::hours(1);
        assert_eq!(expiry(Some(soon), now).ok(), Some(soon));
        for bad in [now, now - Duration::hours(1), now + Duration::days(31)] {
            assert!(expiry(Some(bad), now).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_invitation_names_at_most_one_target() {
        let team = ids::encode("Team", Uuid::new_v4());
        let client = ids::encode("Client", Uuid::new_v4());
        assert!(matches!(target(None, None), Ok(Target::Organization)));
        assert!(matches!(
            target(Some(team.clone()), None),
            Ok(Target::Team(_))
        ));
        assert!(matches!(
            target(None, Some(client.clone())),
            Ok(Target::Client(_))
        ));
        assert!(matches!(
            target(Some(team), Some(client)),
            Err(ApiError::BadUserInput(_))
        ));
    }
}
