//! `Alert`: a resource's health went bad (opened) and, later, recovered (resolved).

use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::resource::ResourceInterface;
use super::resource::load::{ResourceKey, load_and_prime};
use super::user::{UserNode, member};
use crate::auth::permissions::{Area, Level};
use crate::db::models::alert::{self, AlertRow};
use crate::db::models::resource::Kind;
use crate::error::ApiError;
use crate::graphql::connection::{Window, connection, node_looks, paginate};
use crate::graphql::context::{load_one, run, viewer, visibility};
use crate::graphql::ids;
use crate::graphql::loaders::by_id_loader;

// An alert is visible with its resource (and monitoring READ): `node` decides, with both loaded.
by_id_loader!(
    /// Alerts by id.
    AlertId,
    AlertRow,
    alert::by_ids,
    |_, _| true,
    // Alerts are written beside health transitions and by people: read as anything.
    |_, _, reads| reads.add(crate::events::Topic::Everything)
);

/// An alert on a resource.
pub struct AlertNode(pub Arc<AlertRow>);

connection!(AlertConnection, AlertEdge, AlertNode, "Alert");

impl AlertNode {
    /// The key of the alert's resource.
    pub fn resource_key(row: &AlertRow) -> Option<ResourceKey> {
        Some(ResourceKey(
            Kind::parse(&row.resource_kind)?,
            row.resource_id,
        ))
    }
}

/// An alert: a resource's confirmed health went bad (`UNHEALTHY` or `DEGRADED`), and, once it
/// changed again, resolved. Visible with monitoring READ, with its resource.
#[Object(name = "Alert")]
impl AlertNode {
    /// The alert's global id.
    pub async fn id(&self) -> ID {
        ids::encode("Alert", self.0.id)
    }
    /// The resource whose health the alert is about.
    async fn resource(&self, ctx: &Context<'_>) -> async_graphql::Result<ResourceInterface> {
        let key = Self::resource_key(&self.0);
        let row = match key {
            Some(key) => load_one(ctx, key).await?,
            None => None,
        };
        let row = row.ok_or_else(|| ApiError::NotFound("the alert's resource is gone".into()))?;
        Ok(ResourceInterface::from_row(row))
    }
    /// `critical` (UNHEALTHY) or `warning` (DEGRADED).
    async fn severity(&self) -> &str {
        &self.0.severity
    }
    /// What the probe that confirmed the state said.
    async fn message(&self) -> &str {
        &self.0.message
    }
    /// When the bad state was confirmed.
    async fn opened_at(&self) -> DateTime<Utc> {
        self.0.opened_at
    }
    /// When the resource's health changed again, or someone resolved it (`resolveAlert`);
    /// `null` while open.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at
    }
    /// Who resolved it with `resolveAlert`; `null` while open, when the monitor resolved it, or
    /// once they left the organization.
    async fn resolved_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        member(ctx, self.0.resolved_by).await
    }
    /// The note given with `resolveAlert`, if any.
    async fn resolution_note(&self) -> Option<&str> {
        self.0.resolution_note.as_deref()
    }
    /// When someone acknowledged it (`acknowledgeAlert`); `null` until then.
    async fn acknowledged_at(&self) -> Option<DateTime<Utc>> {
        self.0.acknowledged_at
    }
    /// Who acknowledged it; `null` until then, or once they left the organization.
    async fn acknowledged_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<UserNode>> {
        member(ctx, self.0.acknowledged_by).await
    }
    /// The note given with `acknowledgeAlert`, if any.
    async fn acknowledgement_note(&self) -> Option<&str> {
        self.0.acknowledgement_note.as_deref()
    }
}

/// `Organization.alerts`: newest first, needs monitoring READ (from the org role or a team role;
/// client roles grant only projects and resources), only alerts of resources the viewer sees;
/// resources are loaded for the whole page at once.
pub async fn alerts_of(
    ctx: &Context<'_>,
    org: Uuid,
    (first, after): (Option<i32>, Option<&str>),
    open: Option<bool>,
) -> Result<AlertConnection, ApiError> {
    let viewer = viewer(ctx)?;
    if !viewer
        .effective_permissions()
        .allows(Area::Monitoring, Level::Read)
    {
        return Err(ApiError::Forbidden("alerts need monitoring READ".into()));
    }
    let window = Window::<(DateTime<Utc>, Uuid)>::new(first, after)?;
    let visibility = visibility(ctx)?;
    let filter = alert::Filter {
        open,
        visible: visibility
            .linked_resources
            .clone()
            .map(|linked| (visibility.dock_ids().unwrap_or_default(), linked)),
        after: window.after,
        limit: window.limit(),
    };
    let look = ctx.look_ahead();
    let counted = look.field("totalCount").exists();
    let (rows, total) = run(ctx, async |conn| {
        let rows = alert::page(conn, org, &filter).await?;
        let total = match counted {
            true => alert::count(conn, org, &filter).await?,
            false => 0,
        };
        Ok((rows, total))
    })
    .await?;
    let nodes: Vec<AlertNode> = rows.into_iter().map(|r| AlertNode(Arc::new(r))).collect();
    let (edges, info) = paginate(nodes, window.first, window.after.is_some(), |a| {
        (a.0.opened_at, a.0.id)
    });
    let keys = edges
        .iter()
        .filter_map(|(_, a)| AlertNode::resource_key(&a.0))
        .collect();
    let looks: Vec<_> = node_looks(&look)
        .iter()
        .map(|l| l.field("resource"))
        .collect();
    load_and_prime(ctx, keys, &looks).await?;
    Ok(AlertConnection::new(edges, info, total))
}
