//! `Dock` (a provider connection) and `SyncRun`.

pub mod load;

use std::sync::Arc;

use async_graphql::resolver_utils::enum_value;
use async_graphql::{Context, ID, Object, ScalarType, Value};
use chrono::{DateTime, Utc};

use super::resource_filter::{ListArgs, ResourceFilter};
use super::resource_list::{ResourceConnection, prime_pages, resource_page};
use crate::db::models::dock::SyncRunRow;
use crate::db::models::resource::Parent;
use crate::error::ApiError;
use crate::graphql::connection::{Window, connection, paginate};
use crate::graphql::context::{load_one, loaders, visibility};
use crate::graphql::enums::{ResourceKind, SyncStatus};
use crate::graphql::ids;
use crate::graphql::serial::Plain;
use load::{DockId, SyncRunsKey};

pub use load::DockNode;

impl Plain for DockNode {
    fn plain(&self, ctx: &Context<'_>) -> Option<Value> {
        let dock = &self.0;
        Some(match ctx.item.node.name.node.as_str() {
            "id" => Value::String(ids::encode("Dock", dock.id).0),
            "name" => dock.name.as_str().into(),
            "provider" => dock.provider.as_str().into(),
            "lastSyncAt" => dock
                .last_sync_at
                .as_ref()
                .map_or(Value::Null, ScalarType::to_value),
            "lastSyncStatus" => enum_value(SyncStatus::from_word(&dock.last_sync_status)),
            "lastSyncError" => dock.last_sync_error.as_deref().into(),
            "syncIntervalSeconds" => dock.sync_interval_seconds.into(),
            _ => return None,
        })
    }
}

/// A provider account connected to the organization (a "dock"): its resources are synced from
/// the provider on a schedule. Visible with docks READ in the organization, or when granted to
/// one of the viewer's teams or clients.
#[Object(name = "Dock", serial)]
impl DockNode {
    /// The dock's global id.
    pub async fn id(&self) -> ID {
        ids::encode("Dock", self.0.id)
    }
    /// The dock's name, unique in the organization.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The provider: `cloudflare`, `digitalocean`, `gridpane`, `linode` or `vercel`.
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// The key's last four characters; `null` without docks FULL (org-wide, or through a team
    /// granted this dock at `full`). The key itself is never shown.
    async fn api_key_hint(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(visibility(ctx)?
            .sees_key_hint(self.0.id)
            .then_some(())
            .and(self.0.api_key_hint.as_deref()))
    }
    /// When the latest sync finished; `null` before the first.
    async fn last_sync_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_sync_at
    }
    /// How the latest sync went (`PENDING` before the first).
    async fn last_sync_status(&self) -> SyncStatus {
        SyncStatus::from_word(&self.0.last_sync_status)
    }
    /// Why the latest sync failed (never a secret); `null` unless it did.
    async fn last_sync_error(&self) -> Option<&str> {
        self.0.last_sync_error.as_deref()
    }
    /// True while a replica holds an unexpired sync lease on the dock.
    async fn sync_in_progress(&self) -> bool {
        self.0.lease_expires_at.is_some_and(|at| at > Utc::now())
    }
    /// Seconds between scheduled syncs.
    async fn sync_interval_seconds(&self) -> i32 {
        self.0.sync_interval_seconds
    }
    /// The dock's resources, by name (then kind, then id).
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn resources(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many resources (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the resources after it.")] after: Option<String>,
        #[graphql(desc = "Only resources of these kinds; all kinds when omitted.")] kinds: Option<
            Vec<ResourceKind>,
        >,
        #[graphql(desc = "Which resources to keep: status, health, tags, name and more.")]
        filter: Option<ResourceFilter>,
    ) -> async_graphql::Result<ResourceConnection> {
        let args = ListArgs {
            first,
            after,
            kinds,
            filter,
            ..ListArgs::default()
        };
        // Boxed, like every field here that waits on the database: the object's field futures
        // are as large as its largest, and each is moved onto the heap (`crate::graphql::serial`).
        Ok(Box::pin(resource_page(
            ctx,
            Parent::Dock,
            self.0.id,
            args.page_filter()?,
            first,
            args.after.as_deref(),
        ))
        .await?)
    }
    /// Sync runs, newest first.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn sync_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many runs (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the runs after it.")] after: Option<String>,
    ) -> async_graphql::Result<SyncRunConnection> {
        let window = Window::<(DateTime<Utc>, uuid::Uuid)>::new(first, after.as_deref())?;
        let key = SyncRunsKey {
            dock: self.0.id,
            after: window.after,
            limit: window.limit(),
        };
        let page = Box::pin(load_one(ctx, key)).await?.unwrap_or_default();
        let rows: Vec<SyncRunNode> = page
            .rows
            .iter()
            .cloned()
            .map(|r| SyncRunNode(Arc::new(r)))
            .collect();
        let (edges, info) = paginate(rows, window.first, window.after.is_some(), |r| {
            (r.0.started_at, r.0.id)
        });
        Ok(SyncRunConnection::new(edges, info, page.total))
    }
}

connection!(DockConnection, DockEdge, DockNode, "Dock");

/// One sync of a dock.
pub struct SyncRunNode(pub Arc<SyncRunRow>);

/// One sync of a dock: when it ran, how it ended, and what it changed.
#[Object(name = "SyncRun")]
impl SyncRunNode {
    /// The run's global id.
    pub async fn id(&self) -> ID {
        ids::encode("SyncRun", self.0.id)
    }
    /// The dock synced; `null` once it is deleted.
    async fn dock(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DockNode>> {
        Ok(load_one(ctx, DockId(self.0.dock_id)).await?.map(DockNode))
    }
    /// `schedule` or `manual`.
    async fn trigger(&self) -> &str {
        &self.0.trigger
    }
    /// How the run went (`SYNCING` while it runs).
    async fn status(&self) -> SyncStatus {
        SyncStatus::from_word(&self.0.status)
    }
    /// When the run began.
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    /// When the run ended; `null` while it runs.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// Resources the run found for the first time.
    async fn created(&self) -> i32 {
        self.0.created
    }
    /// Resources whose provider record changed.
    async fn updated(&self) -> i32 {
        self.0.updated
    }
    /// Resources missing from the provider's listing, marked `DELETED`.
    async fn deleted(&self) -> i32 {
        self.0.deleted
    }
    /// Resources the listing showed unchanged.
    async fn unchanged(&self) -> i32 {
        self.0.unchanged
    }
    /// Why the run failed (never a secret); `null` unless it did.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}

connection!(SyncRunConnection, SyncRunEdge, SyncRunNode, "SyncRun");

/// Loads, for every dock of a list at once, the `resources` and `syncRuns` pages `look` (the
/// selection on each dock) asks for.
pub async fn prime(
    ctx: &Context<'_>,
    docks: &[DockNode],
    look: &async_graphql::Lookahead<'_>,
) -> Result<(), ApiError> {
    use async_graphql::InputType;
    let ids: Vec<uuid::Uuid> = docks.iter().map(|d| d.0.id).collect();
    prime_pages(ctx, Parent::Dock, &ids, look).await?;
    for selection in look.field("syncRuns").selection_fields() {
        let (mut first, mut after) = (None, None);
        for (name, value) in selection.arguments().unwrap_or_default() {
            match name.as_str() {
                "first" => first = Option::<i32>::parse(Some(value)).ok().flatten(),
                "after" => after = Option::<String>::parse(Some(value)).ok().flatten(),
                _ => {}
            }
        }
        let Ok(window) = Window::<(DateTime<Utc>, uuid::Uuid)>::new(first, after.as_deref()) else {
            continue;
        };
        let keys = ids.iter().map(|dock| SyncRunsKey {
            dock: *dock,
            after: window.after,
            limit: window.limit(),
        });
        loaders(ctx)?.load_many(keys).await?;
    }
    Ok(())
}
