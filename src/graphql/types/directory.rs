//! `Team`, `Client`, `Member`, `Role`: the people side of an organization.

use std::sync::Arc;

use async_graphql::{ID, Json, Object};
use chrono::{DateTime, Utc};

use super::user::UserNode;
use crate::db::models::directory::{self, Client, Member, Role, Team};
use crate::graphql::ids;
use crate::graphql::loaders::by_id_loader;

by_id_loader!(
    /// Teams by id, as far as the viewer may see them.
    TeamId,
    Team,
    directory::teams_by_ids,
    |v, t| v.sees_team(t.id),
    // Teams and clients change only with an `access` event, which touches every result.
    |_, _, _| {}
);
by_id_loader!(
    /// Clients by id, as far as the viewer may see them.
    ClientId,
    Client,
    directory::clients_by_ids,
    |v, c| v.sees_client(c.id),
    |_, _, _| {}
);

/// A team: people who share projects and dock grants.
pub struct TeamNode(pub Arc<Team>);

/// A team: people who share projects and dock grants. Members of the organization see every
/// team; guests only their own.
#[Object(name = "Team")]
impl TeamNode {
    /// The team's global id.
    pub async fn id(&self) -> ID {
        ids::encode("Team", self.0.id)
    }
    /// The team's name, unique in the organization.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// When the team was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A client: whose projects these are (and who may see them in the client portal).
pub struct ClientNode(pub Arc<Client>);

/// A client: whose projects these are (and who may see them in the client portal). Members of
/// the organization see every client; guests only their own.
#[Object(name = "Client")]
impl ClientNode {
    /// The client's global id.
    pub async fn id(&self) -> ID {
        ids::encode("Client", self.0.id)
    }
    /// The client's name, unique in the organization.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// When the client was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A member of the organization and their role.
pub struct MemberNode(pub Member);

/// A member of the organization and their role (listed to members, not to guests).
#[Object(name = "Member")]
impl MemberNode {
    /// The person.
    async fn user(&self) -> UserNode {
        UserNode(self.0.user.clone())
    }
    /// The name of the member's role in this organization.
    async fn role(&self) -> &str {
        &self.0.role
    }
    /// When they joined the organization.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}

/// A role: a permission level per area.
pub struct RoleNode(pub Role);

/// A role: a permission level per area (`projects`, `resources`, `docks`, `operations`,
/// `settings`, `audit`, `monitoring`), granted in the organization, a team or a client.
#[Object(name = "Role")]
impl RoleNode {
    /// The role's id.
    async fn id(&self) -> ID {
        ids::encode("Role", self.0.id)
    }
    /// The role's name, unique in the organization (built-in: `owner`, `admin`, `member`,
    /// `viewer`).
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
