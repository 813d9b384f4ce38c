//! `Team`, `Client`, `Member`, `Role`: the people side of an organization.

use std::sync::Arc;

use async_graphql::{ID, Json, Object};
use chrono::{DateTime, Utc};

use super::user::UserNode;
use crate::db::models::directory::{Client, Member, Role, Team};
use crate::graphql::ids;

/// A team: people who share projects and dock grants.
pub struct TeamNode(pub Arc<Team>);

#[Object(name = "Team")]
impl TeamNode {
    pub async fn id(&self) -> ID {
        ids::encode("Team", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A client: whose projects these are (and who may see them in the client portal).
pub struct ClientNode(pub Arc<Client>);

#[Object(name = "Client")]
impl ClientNode {
    pub async fn id(&self) -> ID {
        ids::encode("Client", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A member of the organization and their role.
pub struct MemberNode(pub Member);

#[Object(name = "Member")]
impl MemberNode {
    async fn user(&self) -> UserNode {
        UserNode(self.0.user.clone())
    }
    /// The name of the member's role in this organization.
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}

/// A role: a permission level per area.
pub struct RoleNode(pub Role);

#[Object(name = "Role")]
impl RoleNode {
    async fn id(&self) -> ID {
        ids::encode("Role", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `{ area: "read" | "full" }`; a missing area is none.
    async fn permissions(&self) -> Json<&serde_json::Value> {
        Json(&self.0.permissions)
    }
    /// True for the built-in roles every organization has.
    async fn is_builtin(&self) -> bool {
        self.0.is_builtin
    }
}
