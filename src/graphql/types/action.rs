//! `ActionRun`: one provider action asked for with `performResourceAction`, and how it went.
//! Visible with its resource: whoever may see the resource sees what was done to it.

pub mod load;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::resource::ResourceInterface;
use super::resource::load::ResourceKey;
use super::user::{UserNode, member};
use crate::graphql::context::load_one;
use crate::graphql::enums::{ActionRunStatus, ResourceAction};
use crate::graphql::ids;
use crate::sync::Action;
use load::ActionRunNode;

/// A provider action asked for with `performResourceAction`: what, on which resource, by whom,
/// and what the provider answered. Visible to whoever may see the resource.
#[Object(name = "ActionRun")]
impl ActionRunNode {
    /// The run's global id.
    pub async fn id(&self) -> ID {
        ids::encode("ActionRun", self.0.id)
    }
    /// What was asked.
    async fn action(&self) -> ResourceAction {
        Action::parse(&self.0.action)
            .unwrap_or(Action::Reboot)
            .into()
    }
    /// `RUNNING` while the provider is being asked, then `SUCCEEDED` (it accepted) or `FAILED`.
    async fn status(&self) -> ActionRunStatus {
        ActionRunStatus::from_word(&self.0.status)
    }
    /// The resource it was performed on; `null` once a sync found it gone.
    async fn resource(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<ResourceInterface>> {
        let Some(kind) = self.0.kind() else {
            return Ok(None);
        };
        Ok(load_one(ctx, ResourceKey(kind, self.0.resource_id))
            .await?
            .map(ResourceInterface::from_row))
    }
    /// Who asked; `null` once they left the organization.
    async fn requested_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        member(ctx, self.0.requested_by).await
    }
    /// The provider's answer in one line (ids and states, or why it failed); `null` while
    /// running.
    async fn summary(&self) -> Option<&str> {
        self.0.summary.as_deref()
    }
    /// When it was asked.
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// When the provider answered (or the run was given up); `null` while running.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}
