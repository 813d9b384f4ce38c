//! `AuditLog`: who did what, when, from where, and how it ended.

use std::sync::Arc;

use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};

use super::user::UserNode;
use crate::db::models::audit::AuditRow;
use crate::graphql::connection::connection;
use crate::graphql::context::load_one;
use crate::graphql::ids;
use crate::graphql::loaders::MemberId;

/// One audited act.
pub struct AuditLogNode(pub Arc<AuditRow>);

#[Object(name = "AuditLog")]
impl AuditLogNode {
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
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }
    /// The GraphQL type of the target.
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }
    /// The target's global id.
    async fn target_id(&self) -> Option<ID> {
        Some(ids::encode(
            self.0.target_type.as_deref()?,
            self.0.target_id?,
        ))
    }
    /// The acting user, while they are a member of the organization.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        let Some(id) = self.0.user_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, MemberId(id))
            .await?
            .map(|u| UserNode(u.as_ref().clone())))
    }
    async fn api_key_id(&self) -> Option<ID> {
        self.0.api_key_id.map(|id| ids::encode("ApiKey", id))
    }
    async fn ip_address(&self) -> Option<&str> {
        self.0.ip_address.as_deref()
    }
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    async fn metadata(&self) -> Json<&serde_json::Value> {
        Json(&self.0.metadata)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

connection!(AuditLogConnection, AuditLogEdge, AuditLogNode);
