//! `Invitation`: how someone who does not reach an organization yet is asked to join it.

use std::sync::Arc;

use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

use super::directory::{ClientNode, RoleNode, TeamNode};
use super::user::UserNode;
use crate::db::models::invitation::InvitationView;
use crate::graphql::ids;

/// An invitation to an organization, or to one of its teams or clients, with a role there. The
/// person whose e-mail it names accepts it (`acceptInvitation`); until then it grants nothing.
#[derive(Clone)]
pub struct InvitationNode(pub Arc<InvitationView>);

/// An invitation to an organization, or to one of its teams or clients, with a role there. The
/// person whose e-mail it names accepts it (`acceptInvitation`); until then it grants nothing.
/// Listed to its invitee (`viewer.invitations`) and, with settings READ, in its organization.
#[Object(name = "Invitation")]
impl InvitationNode {
    /// The invitation's global id.
    pub async fn id(&self) -> ID {
        ids::encode("Invitation", self.0.invitation_id)
    }
    /// The invitee's e-mail, lower-cased; whoever accepts must have it.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// The inviting organization's name (the invitee does not reach it yet).
    async fn organization_name(&self) -> &str {
        &self.0.org_name
    }
    /// The inviting organization's slug: after accepting, pick it with the `org` claim or
    /// `X-Org`.
    async fn organization_slug(&self) -> &str {
        &self.0.org_slug
    }
    /// The role granted: in the organization, or in `team` / `client` when one is named.
    async fn role(&self) -> RoleNode {
        RoleNode(self.0.role())
    }
    /// The team the invitee joins, for a team invitation.
    async fn team(&self) -> Option<TeamNode> {
        self.0.team().map(|t| TeamNode(Arc::new(t)))
    }
    /// The client whose portal the invitee joins, for a client invitation.
    async fn client(&self) -> Option<ClientNode> {
        self.0.client().map(|c| ClientNode(Arc::new(c)))
    }
    /// Who sent it; `null` once they are gone.
    async fn invited_by(&self) -> Option<UserNode> {
        self.0.inviter().map(UserNode)
    }
    /// When it lapses unaccepted.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// When it was accepted; `null` until it is.
    async fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.0.accepted_at
    }
    /// When it was revoked; `null` unless it was.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    /// When it was sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
