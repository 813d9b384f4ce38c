//! The `Node` interface and the `node(id:)` / `nodes(ids:)` lookups.
//!
//! What the viewer may not see does not exist for them: foreign and unknown ids both give `null`.
//! Rows are loaded through row-level security and the loaders, which apply each type's visibility
//! rule (the same rule every nested field meets), and checked against the viewer's organization
//! again. Of an organization other than the active one, only its id, name and slug show.

use std::collections::HashMap;

use async_graphql::{Context, ID, Interface};
use uuid::Uuid;

use super::context::{loaders, run, viewer};
use super::ids;
use super::types::action::load::{ActionRunId, ActionRunNode};
use super::types::alert::{AlertId, AlertNode};
use super::types::directory::{ClientId, ClientNode, TeamId, TeamNode};
use super::types::dock::SyncRunNode;
use super::types::dock::load::{DockId, DockNode, SyncRunId};
use super::types::invitation::InvitationNode;
use super::types::notification::{
    NotificationChannelId, NotificationChannelNode, NotificationDeliveryId,
    NotificationDeliveryNode,
};
use super::types::operation::load::{OperationServiceId, OperationServiceNode};
use super::types::organization::OrganizationNode;
use super::types::project::load::{ProjectId, ProjectNode};
use super::types::resource::load::ResourceKey;
use super::types::resource::{
    DatabaseNode, DomainNode, ResourceInterface, ServerNode, WebServiceNode,
};
use super::types::user::{MemberId, UserNode};
use crate::auth::permissions::{Area, Level};
use crate::db::models::invitation;
use crate::error::ApiError;

/// Anything with a global id (Relay's `Node`): fetch it again with `node(id:)`.
#[derive(Interface)]
#[graphql(
    name = "Node",
    field(
        name = "id",
        ty = "ID",
        desc = "The object's global id: opaque, stable, and unique across all types."
    )
)]
pub enum Node {
    Organization(OrganizationNode),
    User(UserNode),
    Project(ProjectNode),
    Dock(DockNode),
    SyncRun(SyncRunNode),
    Team(TeamNode),
    Client(ClientNode),
    Server(ServerNode),
    WebService(WebServiceNode),
    Domain(DomainNode),
    Database(DatabaseNode),
    Alert(AlertNode),
    Invitation(InvitationNode),
    OperationService(OperationServiceNode),
    NotificationChannel(NotificationChannelNode),
    NotificationDelivery(NotificationDeliveryNode),
    ActionRun(ActionRunNode),
}

/// Resolves many ids at once, in order, with at most one batch per type.
pub async fn resolve_nodes(
    ctx: &Context<'_>,
    raw_ids: &[ID],
) -> Result<Vec<Option<Node>>, ApiError> {
    let viewer = viewer(ctx)?;
    let org = viewer.organization.id;
    let decoded = raw_ids
        .iter()
        .map(|id| ids::decode(id))
        .collect::<Result<Vec<_>, _>>()?;
    let of_type = |name: &str| {
        decoded
            .iter()
            .filter(|(t, _)| t == name)
            .map(|(_, id)| *id)
            .collect::<Vec<Uuid>>()
    };
    let loaders = loaders(ctx)?;
    let users = loaders
        .load_many(of_type("User").into_iter().map(MemberId))
        .await?;
    let projects = loaders
        .load_many(of_type("Project").into_iter().map(ProjectId))
        .await?;
    let docks = loaders
        .load_many(of_type("Dock").into_iter().map(DockId))
        .await?;
    let runs = loaders
        .load_many(of_type("SyncRun").into_iter().map(SyncRunId))
        .await?;
    let teams = loaders
        .load_many(of_type("Team").into_iter().map(TeamId))
        .await?;
    let clients = loaders
        .load_many(of_type("Client").into_iter().map(ClientId))
        .await?;
    let alerts = loaders
        .load_many(of_type("Alert").into_iter().map(AlertId))
        .await?;
    let services = loaders
        .load_many(
            of_type("OperationService")
                .into_iter()
                .map(OperationServiceId),
        )
        .await?;
    let runs_of_actions = loaders
        .load_many(of_type("ActionRun").into_iter().map(ActionRunId))
        .await?;
    let invitations = invitations(ctx, &of_type("Invitation")).await?;
    // Channels and deliveries need monitoring READ; without it they are not even loaded.
    let monitors = viewer
        .effective_permissions()
        .allows(Area::Monitoring, Level::Read);
    let of_monitoring = |name: &str| match monitors {
        true => of_type(name),
        false => Vec::new(),
    };
    let channels = loaders
        .load_many(
            of_monitoring("NotificationChannel")
                .into_iter()
                .map(NotificationChannelId),
        )
        .await?;
    let deliveries = loaders
        .load_many(
            of_monitoring("NotificationDelivery")
                .into_iter()
                .map(NotificationDeliveryId),
        )
        .await?;
    let resource_keys: Vec<ResourceKey> = decoded
        .iter()
        .filter_map(|(t, id)| Some(ResourceKey(ids::kind_of_type(t)?, *id)))
        .chain(alerts.values().filter_map(|a| AlertNode::resource_key(a)))
        .collect();
    let resources = loaders.load_many(resource_keys).await?;
    let monitoring = !alerts.is_empty()
        && viewer
            .effective_permissions()
            .allows(Area::Monitoring, Level::Read);
    let pick = |name: &str, id: Uuid| -> Option<Node> {
        Some(match name {
            "Organization" => {
                Node::Organization(OrganizationNode(viewer.sees_organization(id)?.clone()))
            }
            "User" => Node::User(UserNode(users.get(&MemberId(id))?.as_ref().clone())),
            "Project" => Node::Project(ProjectNode(visible(&projects, ProjectId(id), |p| {
                p.org_id == org
            })?)),
            "Dock" => Node::Dock(DockNode(visible(&docks, DockId(id), |d| d.org_id == org)?)),
            "SyncRun" => Node::SyncRun(SyncRunNode(runs.get(&SyncRunId(id))?.clone())),
            "Team" => Node::Team(TeamNode(visible(&teams, TeamId(id), |t| t.org_id == org)?)),
            "Client" => Node::Client(ClientNode(visible(&clients, ClientId(id), |c| {
                c.org_id == org
            })?)),
            "Alert" => {
                let alert = alerts.get(&AlertId(id)).filter(|a| {
                    a.org_id == org
                        && monitoring
                        && AlertNode::resource_key(a).is_some_and(|k| resources.contains_key(&k))
                })?;
                Node::Alert(AlertNode(alert.clone()))
            }
            "Invitation" => Node::Invitation(invitations.get(&id)?.clone()),
            "OperationService" => Node::OperationService(OperationServiceNode(visible(
                &services,
                OperationServiceId(id),
                |s| s.org_id == org,
            )?)),
            "NotificationChannel" => Node::NotificationChannel(NotificationChannelNode(visible(
                &channels,
                NotificationChannelId(id),
                |c| c.org_id == org,
            )?)),
            "NotificationDelivery" => Node::NotificationDelivery(NotificationDeliveryNode(
                visible(&deliveries, NotificationDeliveryId(id), |d| d.org_id == org)?,
            )),
            "ActionRun" => Node::ActionRun(ActionRunNode(visible(
                &runs_of_actions,
                ActionRunId(id),
                |r| r.org_id == org,
            )?)),
            other => {
                let key = ResourceKey(ids::kind_of_type(other)?, id);
                let row = visible(&resources, key, |r| r.common.org_id == org)?;
                match ResourceInterface::from_row(row) {
                    ResourceInterface::Server(n) => Node::Server(n),
                    ResourceInterface::WebService(n) => Node::WebService(n),
                    ResourceInterface::Domain(n) => Node::Domain(n),
                    ResourceInterface::Database(n) => Node::Database(n),
                }
            }
        })
    };
    Ok(decoded.iter().map(|(name, id)| pick(name, *id)).collect())
}

/// The active organization's invitations among `ids`, for a viewer with settings READ (the
/// invitee's view of them is `viewer { invitations }`).
async fn invitations(
    ctx: &Context<'_>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, InvitationNode>, ApiError> {
    let viewer = viewer(ctx)?;
    if ids.is_empty() || !viewer.can(Area::Settings, Level::Read) {
        return Ok(HashMap::new());
    }
    let org = viewer.organization.id;
    let rows = run(ctx, async |conn| {
        invitation::of_org(conn, org, Some(ids), false).await
    })
    .await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.org_id == org)
        .map(|r| (r.invitation_id, InvitationNode(std::sync::Arc::new(r))))
        .collect())
}

fn visible<K: Eq + std::hash::Hash, V>(
    found: &HashMap<K, std::sync::Arc<V>>,
    key: K,
    ok: impl Fn(&V) -> bool,
) -> Option<std::sync::Arc<V>> {
    found.get(&key).filter(|v| ok(v)).cloned()
}
