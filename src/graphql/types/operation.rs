//! `OperationService` (backup buckets, CDN, DNS, monitoring…) and its team grants
//! (`OperationPermission`).

pub mod load;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::directory::{TeamId, TeamNode};
use super::project::load::{ProjectId, ProjectNode};
use crate::db::models::operation::Permission;
use crate::graphql::connection::connection;
use crate::graphql::context::{load_one, loaders, visibility};
use crate::graphql::enums::{AccessLevel, OperationServiceKind};
use crate::graphql::ids;
use load::{ServicePermissionsKey, ServiceProjectsKey};

pub use load::OperationServiceNode;

/// A service the organization runs its infrastructure with beside its docks: a backup bucket,
/// a CDN, a DNS or monitoring provider. Its configuration is stored encrypted and never shown.
/// Visible with operations READ in the organization, or when granted to one of the viewer's
/// teams; client-portal users see none.
#[Object(name = "OperationService")]
impl OperationServiceNode {
    /// The service's global id.
    pub async fn id(&self) -> ID {
        ids::encode("OperationService", self.0.id)
    }
    /// The service's name, unique in the organization.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the service does.
    async fn kind(&self) -> OperationServiceKind {
        OperationServiceKind::from_word(&self.0.kind)
    }
    /// Who provides it (free text, e.g. `backblaze`); `null` when none was given.
    async fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }
    /// The configuration's key names (sorted, comma-separated, e.g. `access_key, bucket`), never
    /// a value; `null` without a configuration, or without operations FULL (org-wide, or through
    /// a team granted this service at `FULL`).
    async fn config_hint(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(visibility(ctx)?
            .sees_config_hint(self.0.id)
            .then_some(())
            .and(self.0.config_hint.as_deref()))
    }
    /// The projects the service is linked to, by slug (at most 500; those the viewer may see).
    async fn projects(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProjectNode>> {
        let ids = load_one(ctx, ServiceProjectsKey(self.0.id))
            .await?
            .unwrap_or_default();
        let projects = loaders(ctx)?
            .load_many(ids.iter().copied().map(ProjectId))
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| projects.get(&ProjectId(*id)).cloned().map(ProjectNode))
            .collect())
    }
    /// The teams granted access to the service and their levels, by team (those the viewer may
    /// see).
    async fn permissions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<OperationPermissionNode>> {
        let grants = load_one(ctx, ServicePermissionsKey(self.0.id))
            .await?
            .unwrap_or_default();
        let teams = loaders(ctx)?
            .load_many(grants.iter().map(|g| TeamId(g.team_id)))
            .await?;
        Ok(grants
            .iter()
            .filter_map(|g| {
                let team = teams.get(&TeamId(g.team_id))?.clone();
                Some(OperationPermissionNode {
                    team: TeamNode(team),
                    grant: g.clone(),
                })
            })
            .collect())
    }
    /// When the service was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the service was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

connection!(
    OperationServiceConnection,
    OperationServiceEdge,
    OperationServiceNode,
    "OperationService"
);

/// A team's access to an operation service.
pub struct OperationPermissionNode {
    team: TeamNode,
    grant: Permission,
}

/// A team granted access to an operation service: its members see the service, and with `FULL`
/// and a team role with operations FULL, its configuration hint.
#[Object(name = "OperationPermission")]
impl OperationPermissionNode {
    /// The team granted.
    async fn team(&self) -> &TeamNode {
        &self.team
    }
    /// `READ` or `FULL`.
    async fn level(&self) -> AccessLevel {
        match self.grant.level.as_str() {
            "full" => AccessLevel::Full,
            _ => AccessLevel::Read,
        }
    }
    /// When the team was first granted access.
    async fn granted_at(&self) -> DateTime<Utc> {
        self.grant.created_at
    }
    /// When the level last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.grant.updated_at
    }
}
