//! Teams: `createTeam`, `addTeamMember`. Both need settings FULL.
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
}
