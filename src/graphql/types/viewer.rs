//! `Viewer`: the caller, their active organization, and the organizations they belong to.

use async_graphql::Object;

use super::organization::OrganizationNode;
use super::user::UserNode;
use crate::auth::Viewer;

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
