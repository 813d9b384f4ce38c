//! What subscriptions deliver: `SyncEvent`, `ProjectResourceEvent` and `HealthEvent`.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use super::dock::{DockNode, SyncRunNode};
use super::project::load::{ProjectId, ProjectNode};
use super::resource::ResourceInterface;
use super::resource::load::ResourceKey;
use crate::db::Pool;
use crate::db::models::resource::{Kind, Resource};
use crate::error::ApiError;
use crate::events::Envelope;
use crate::events::health::HealthEvent;
use crate::events::link::LinkEvent;
use crate::events::sync::SyncEvent;
use crate::graphql::context::load_one;
use crate::graphql::enums::{HealthState, ResourceStatus};
use crate::graphql::ids;

/// Where a sync run is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::events::sync::Phase")]
pub enum SyncPhase {
    /// A run began.
    Started,
    /// A page of the provider's listing arrived (`itemsFetched` = resources so far).
    Page,
    /// The listing was written (`itemsFetched` = resources in it).
    Applied,
    /// The run finished.
    Succeeded,
    /// The run failed and wrote nothing (`message` says why).
    Failed,
}

/// One step of a dock's sync, live.
pub struct SyncEventNode {
    pub envelope: Arc<Envelope>,
    pub event: SyncEvent,
    pub dock: Arc<crate::db::models::dock::Dock>,
}

/// One step of a dock's sync, live (`dockSyncStatus`, `syncEvents`).
#[Object(name = "SyncEvent")]
impl SyncEventNode {
    /// The dock being synced, as it is now.
    async fn dock(&self) -> DockNode {
        DockNode(self.dock.clone())
    }
    /// The run (`null` only for events outside a run).
    async fn run(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<SyncRunNode>> {
        let pool = ctx
            .data::<Pool>()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("no pool")))?;
        let (_, run) = self
            .envelope
            .sync_objects(pool)
            .await
            .map_err(ApiError::from)?;
        Ok(run.map(SyncRunNode))
    }
    /// Which step this is.
    async fn phase(&self) -> SyncPhase {
        self.event.phase.into()
    }
    /// Resources fetched so far (`PAGE`) or applied (`APPLIED`).
    async fn items_fetched(&self) -> Option<i32> {
        self.event
            .items
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX))
    }
    /// Why a run failed (never a secret).
    async fn message(&self) -> Option<&str> {
        self.event.message.as_deref()
    }
    /// When the step happened.
    async fn at(&self) -> DateTime<Utc> {
        self.event.at
    }
}

/// What changed about a project's resource.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::events::link::LinkChange")]
pub enum ProjectResourceChange {
    /// The resource was linked to the project.
    Linked,
    /// The resource was unlinked from the project.
    Unlinked,
    /// The linked resource's status changed.
    StatusChanged,
    /// The linked resource was renamed.
    Renamed,
}

/// A change to a project's resources, live.
pub struct ProjectResourceEventNode(pub LinkEvent);

/// A change to a project's resources, live (`projectResourcesChanged`).
#[Object(name = "ProjectResourceEvent")]
impl ProjectResourceEventNode {
    /// The project (`null` if it was deleted since).
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProjectNode>> {
        Ok(load_one(ctx, ProjectId(self.0.project_id))
            .await?
            .map(ProjectNode))
    }
    /// What changed.
    async fn change(&self) -> ProjectResourceChange {
        self.0.change.into()
    }
    /// The resource's global id (also when it can no longer be loaded).
    async fn resource_id(&self) -> ID {
        let kind = Kind::parse(&self.0.kind).unwrap_or(Kind::Server);
        ids::encode(ids::type_name(kind), self.0.resource_id)
    }
    /// The resource now (`null` when it is gone, or the viewer may no longer see it).
    async fn resource(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<ResourceInterface>> {
        let Some(kind) = Kind::parse(&self.0.kind) else {
            return Ok(None);
        };
        Ok(load_one(ctx, ResourceKey(kind, self.0.resource_id))
            .await?
            .map(ResourceInterface::from_row))
    }
    /// The link's status: the resource's after the change (before it, for `UNLINKED`).
    async fn status(&self) -> ResourceStatus {
        ResourceStatus::from_word(&self.0.status)
    }
    /// When the change was committed.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
}

/// A confirmed change of a resource's health, live.
pub struct HealthEventNode {
    pub event: HealthEvent,
    pub resource: Arc<Resource>,
}

/// A confirmed change of a resource's health, live (`resourceHealth`): the monitor reports a
/// state only once consecutive probes agree on it.
#[Object(name = "HealthEvent")]
impl HealthEventNode {
    /// The resource, as it is after the change.
    async fn resource(&self) -> ResourceInterface {
        ResourceInterface::from_row(self.resource.clone())
    }
    /// The state before.
    async fn previous(&self) -> HealthState {
        HealthState::from_word(&self.event.previous)
    }
    /// The state now.
    async fn current(&self) -> HealthState {
        HealthState::from_word(&self.event.current)
    }
    /// When the change was confirmed.
    async fn at(&self) -> DateTime<Utc> {
        self.event.at
    }
}
