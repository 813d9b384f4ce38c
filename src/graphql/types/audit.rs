//! `AuditLog`: who did what, when, from where, and how it ended.

use std::sync::Arc;

use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};

use super::user::{MemberId, UserNode};
use crate::db::models::audit::AuditRow;
use crate::graphql::connection::connection;
use crate::graphql::context::load_one;
use crate::graphql::ids;

/// One audited act.
pub struct AuditLogNode(pub Arc<AuditRow>);

/// One audited act in the organization (visible with audit READ): who did what, when, from
/// where, and how it ended.
#[Object(name = "AuditLog")]
impl AuditLogNode {
    /// The entry's id.
    async fn id(&self) -> ID {
        ids::encode("AuditLog", self.0.id)
    }
    /// e.g. `project.create`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// `success`, `denied` or `error`.
    async fn result(&self) -> &str {
        &self.0.result
    }
    /// What went wrong, or a note on what was done; `null` when there is none.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// The GraphQL type of the target; `null` for acts on no object.
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }
    /// The target's global id; `null` for acts on no object.
    async fn target_id(&self) -> Option<ID> {
        Some(ids::encode(
            self.0.target_type.as_deref()?,
            self.0.target_id?,
        ))
    }
    /// The acting user, while they are a member of the organization; `null` otherwise, or for
    /// acts of an API key alone.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        let Some(id) = self.0.user_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, MemberId(id))
            .await?
            .map(|u| UserNode(u.as_ref().clone())))
    }
    /// The API key the act was authenticated with; `null` for a user's token.
    async fn api_key_id(&self) -> Option<ID> {
        self.0.api_key_id.map(|id| ids::encode("ApiKey", id))
    }
    /// The address the request came from; `null` when unknown.
    async fn ip_address(&self) -> Option<&str> {
        self.0.ip_address.as_deref()
    }
    /// The client's `User-Agent`; `null` when it sent none.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    /// Details of the act, by action (never a secret); `{}` when there are none.
    async fn metadata(&self) -> Json<&serde_json::Value> {
        Json(&self.0.metadata)
    }
    /// When the act happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(AuditLogConnection, AuditLogEdge, AuditLogNode, "AuditLog");
