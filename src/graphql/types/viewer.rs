//! `Viewer`: the caller, their active organization, and the organizations they belong to.

use std::sync::Arc;

use async_graphql::{Context, Object, SimpleObject};

use super::invitation::InvitationNode;
use super::organization::OrganizationNode;
use super::user::UserNode;
use crate::auth::Viewer;
use crate::auth::permissions::{Area, Level};
use crate::db::models::invitation;
use crate::error::ApiError;
use crate::graphql::context::run;
use crate::graphql::enums::AccessLevel;

/// The caller's access level in each area of the active organization.
#[derive(SimpleObject)]
pub struct Permissions {
    /// Projects and their links.
    pub projects: AccessLevel,
    /// Resources (FULL shows `fullApiData`).
    pub resources: AccessLevel,
    /// Docks (FULL shows `apiKeyHint` and allows connecting and changing docks).
    pub docks: AccessLevel,
    /// Operations (a permission area roles carry; no field or mutation checks it yet).
    pub operations: AccessLevel,
    /// Members, teams, clients, roles, invitations and API keys.
    pub settings: AccessLevel,
    /// The audit log.
    pub audit: AccessLevel,
    /// Alerts and health check intervals.
    pub monitoring: AccessLevel,
}

/// One organization the caller reaches, with their role there.
#[derive(SimpleObject)]
pub struct OrganizationMembership {
    /// The organization (of any but the request's active one, only `id`, `name` and `slug`
    /// show).
    pub organization: OrganizationNode,
    /// The caller's org role there (`owner`, `admin`, `member`, `viewer` or a custom role's
    /// name), or `guest` where they reach it only through teams or clients.
    pub role: String,
}

/// The authenticated caller.
pub struct ViewerNode(pub Viewer);

/// The authenticated caller (a user's token, or an API key acting for its organization).
#[Object(name = "Viewer")]
impl ViewerNode {
    /// The person calling (for an API key, the user it acts as).
    async fn user(&self) -> UserNode {
        UserNode(self.0.user.clone())
    }
    /// The organization this request acts in (`FORBIDDEN` for a caller who belongs to none).
    async fn organization(&self) -> async_graphql::Result<OrganizationNode> {
        if !self.0.in_organization() {
            return Err(ApiError::Forbidden(
                "not a member of any organization: see `viewer { invitations }`".into(),
            )
            .into());
        }
        Ok(OrganizationNode(self.0.organization.clone()))
    }
    /// The most generous level per area over the caller's org, team and client roles here.
    async fn permissions(&self) -> Permissions {
        let effective = self.0.effective_permissions();
        let level = |area| match effective.level(area) {
            Level::None => AccessLevel::None,
            Level::Read => AccessLevel::Read,
            Level::Full => AccessLevel::Full,
        };
        Permissions {
            projects: level(Area::Projects),
            resources: level(Area::Resources),
            docks: level(Area::Docks),
            operations: level(Area::Operations),
            settings: level(Area::Settings),
            audit: level(Area::Audit),
            monitoring: level(Area::Monitoring),
        }
    }
    /// Pending invitations addressed to the caller's e-mail, from any organization, newest
    /// first (at most 100). Empty for requests authenticated by an API key: a key acts only in
    /// its own organization.
    async fn invitations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InvitationNode>> {
        if self.0.api_key_id.is_some() {
            return Ok(Vec::new());
        }
        let rows = run(ctx, async |conn| {
            invitation::of_current_user(conn, None).await
        })
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| InvitationNode(Arc::new(r)))
            .collect())
    }
    /// Every organization the caller is a member of, by slug.
    async fn organizations(&self) -> Vec<OrganizationNode> {
        self.0
            .organizations
            .iter()
            .cloned()
            .map(OrganizationNode)
            .collect()
    }
    /// Every organization the caller reaches, by slug, with their role in each: what a caller
    /// picks their active organization from (the token's `org` claim or `X-Org`).
    async fn memberships(&self) -> Vec<OrganizationMembership> {
        let viewer = &self.0;
        viewer
            .organizations
            .iter()
            .map(|org| OrganizationMembership {
                organization: OrganizationNode(org.clone()),
                role: (viewer.roles.iter())
                    .find(|(id, _)| *id == org.id)
                    .map_or_else(|| "guest".to_owned(), |(_, role)| role.clone()),
            })
            .collect()
    }
}
