//! `Viewer`: the caller, their active organization, and the organizations they belong to.

use async_graphql::{Object, SimpleObject};

use super::organization::OrganizationNode;
use super::user::UserNode;
use crate::auth::Viewer;
use crate::auth::permissions::{Area, Level};
use crate::graphql::enums::AccessLevel;

/// The caller's access level in each area of the active organization.
#[derive(SimpleObject)]
pub struct Permissions {
    pub projects: AccessLevel,
    pub resources: AccessLevel,
    pub docks: AccessLevel,
    pub operations: AccessLevel,
    pub settings: AccessLevel,
    pub audit: AccessLevel,
    pub monitoring: AccessLevel,
}

/// The authenticated caller.
pub struct ViewerNode(pub Viewer);

#[Object(name = "Viewer")]
impl ViewerNode {
    async fn user(&self) -> UserNode {
        UserNode(self.0.user.clone())
    }
    /// The organization this request acts in.
    async fn organization(&self) -> OrganizationNode {
        OrganizationNode(self.0.organization.clone())
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
    /// Every organization the caller is a member of, by slug.
    async fn organizations(&self) -> Vec<OrganizationNode> {
        self.0
            .organizations
            .iter()
            .cloned()
            .map(OrganizationNode)
            .collect()
    }
}
