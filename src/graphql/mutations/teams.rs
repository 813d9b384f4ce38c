//! Teams: `createTeam`, `updateTeam`, `deleteTeam`, `addTeamMember`, `removeTeamMember`. All
//! need settings FULL.
//!
//! A team's members get a role of the organization within the team; the role may not exceed
//! the caller's own ([`Grantor`]). Only people who already reach the organization are added;
//! anyone else is invited (`createInvitation`).

use std::sync::Arc;

use async_graphql::{Context, ID, Object};

use super::members::{find_person, person};
use super::roles::{Grantor, org_role};
use super::validate::{MAX_NAME, not_found, valid_name};
use super::{audited, org_full, refusal, settings_act};
use crate::auth::permissions::Area;
use crate::db::models::access;
use crate::db::models::directory;
use crate::graphql::context::viewer;
use crate::graphql::ids;
use crate::graphql::types::directory::TeamNode;

#[derive(Default)]
pub struct TeamMutations;

#[Object]
impl TeamMutations {
    /// Creates a team and returns it. Needs settings FULL. `CONFLICT` when the organization
    /// has a team of that name; `BAD_USER_INPUT` for a bad name.
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1–200 characters (trimmed), unique among the organization's teams.")]
        name: String,
    ) -> async_graphql::Result<TeamNode> {
        let org = viewer(ctx)?.organization.id;
        let name = valid_name(&name, MAX_NAME)?;
        let conflict = format!("a team named `{name}` exists");
        let act = settings_act("team.create", "Team", None);
        let team = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let team = access::create_team(conn, org, name)
                .await
                .map_err(|e| refusal(e, &conflict, "no such organization"))?;
            let id = team.id;
            Ok((team, Some(id)))
        })
        .await?;
        Ok(TeamNode(Arc::new(team)))
    }

    /// Adds a person, named by exactly one of `userId` and `email`, to a team with a role of
    /// the organization. They must already reach the organization (as a member, or through a
    /// team or client); anyone else is invited with `createInvitation`, and is answered the same
    /// `NOT_FOUND` whether their e-mail is known or not. The role may not exceed the caller's
    /// own (`FORBIDDEN`, audited). Returns the team. Needs settings FULL. `NOT_FOUND` for an
    /// unknown team or role, `CONFLICT` when the person is in the team already.
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's id.")] team_id: ID,
        #[graphql(desc = "The person's `User` id; give this or `email`, not both.")]
        user_id: Option<ID>,
        #[graphql(desc = "The person's e-mail (case-insensitive); give this or `userId`.")]
        email: Option<String>,
        #[graphql(desc = "A `Role` of the organization, held within the team only.")] role_id: ID,
    ) -> async_graphql::Result<TeamNode> {
        let org = viewer(ctx)?.organization.id;
        let team = ids::decode_as(&team_id, "Team")?;
        let role = ids::decode_as(&role_id, "Role")?;
        let person = person(user_id, email)?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("team.add_member", "Team", Some(team));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = directory::teams_by_ids(conn, &[team])
                .await?
                .into_iter()
                .find(|t| t.org_id == org)
                .ok_or_else(|| not_found("team"))?;
            let role = org_role(conn, org, role).await?;
            grantor.check(conn, org, &role).await?;
            let user = find_person(conn, org, &person).await?;
            access::add_team_member(conn, org, team, user.id, role.id)
                .await
                .map_err(|e| refusal(e, "the user is already in the team", "no such user"))?;
            Ok((row, None))
        })
        .await?;
        Ok(TeamNode(Arc::new(row)))
    }

    /// Renames a team and returns it. Needs settings FULL. `NOT_FOUND` for an unknown team,
    /// `CONFLICT` when the organization has a team of that name, `BAD_USER_INPUT` for a bad
    /// name.
    async fn update_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's id.")] id: ID,
        #[graphql(desc = "The new name: 1–200 characters (trimmed), unique among the teams.")]
        name: String,
    ) -> async_graphql::Result<TeamNode> {
        let org = viewer(ctx)?.organization.id;
        let team = ids::decode_as(&id, "Team")?;
        let name = valid_name(&name, MAX_NAME)?;
        let conflict = format!("a team named `{name}` exists");
        let act = settings_act("team.update", "Team", Some(team));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = access::rename_team(conn, org, team, name)
                .await
                .map_err(|e| refusal(e, &conflict, "no such team"))?
                .ok_or_else(|| not_found("team"))?;
            Ok((row, None))
        })
        .await?;
        Ok(TeamNode(Arc::new(row)))
    }

    /// Deletes a team: its members lose what they reached through it (at once, on every
    /// connection), its dock grants and pending invitations go, and its projects stay without a
    /// team. Returns its id. Needs settings FULL. `NOT_FOUND` for an unknown team.
    async fn delete_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let org = viewer(ctx)?.organization.id;
        let team = ids::decode_as(&id, "Team")?;
        let act = settings_act("team.delete", "Team", Some(team));
        audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            if !access::delete_team(conn, org, team).await? {
                return Err(not_found("team"));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }

    /// Takes a person out of a team: they lose the team's role over its projects and granted
    /// docks at once. Nobody takes away a team role above their own org role, and only owners
    /// an owner one (`FORBIDDEN`, audited). Returns the team. Needs settings FULL. `NOT_FOUND`
    /// for an unknown team or someone who is not in it.
    async fn remove_team_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The team's id.")] team_id: ID,
        #[graphql(desc = "The person's `User` id.")] user_id: ID,
    ) -> async_graphql::Result<TeamNode> {
        let org = viewer(ctx)?.organization.id;
        let team = ids::decode_as(&team_id, "Team")?;
        let user = ids::decode_as(&user_id, "User")?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("team.remove_member", "Team", Some(team));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = directory::teams_by_ids(conn, &[team])
                .await?
                .into_iter()
                .find(|t| t.org_id == org)
                .ok_or_else(|| not_found("team"))?;
            let role = access::team_member_role(conn, org, team, user)
                .await?
                .ok_or_else(|| not_found("team member"))?;
            grantor.check(conn, org, &role).await?;
            access::remove_team_member(conn, org, team, user).await?;
            Ok((row, None))
        })
        .await?;
        Ok(TeamNode(Arc::new(row)))
    }
}
