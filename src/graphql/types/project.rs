//! `Project` and its resource connection (`ProjectResourceConnection`).

pub mod load;

use std::sync::Arc;

use async_graphql::resolver_utils::enum_value;
use async_graphql::{Context, ID, Object, ScalarType, SimpleObject, Value};
use chrono::{DateTime, Utc};

use super::directory::{ClientId, ClientNode, TeamId, TeamNode};
use super::operation::load::{OperationServiceId, OperationServiceNode, ProjectServicesKey};
use super::resource::ResourceInterface;
use super::resource::load::load_and_prime;
use super::resource_filter::{ListArgs, ResourceFilter};
use crate::db::models::keyset::Page;
use crate::db::models::link::LinkRow;
use crate::graphql::connection::{PageInfo, Window, encode_cursor, node_looks, page_of};
use crate::graphql::context::{load_one, loaders};
use crate::graphql::enums::{ResourceKind, ResourceStatus};
use crate::graphql::ids;
use crate::graphql::serial::{Plain, Serial};
use load::{HealthCounts, HealthKey, links_key, resource_key};

pub use load::ProjectNode;

/// How many of a project's linked resources are in each health state.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct HealthSummary {
    /// Linked resources whose health is `HEALTHY`.
    pub healthy: i64,
    /// Linked resources whose health is `DEGRADED`.
    pub degraded: i64,
    /// Linked resources whose health is `UNHEALTHY`.
    pub unhealthy: i64,
    /// Linked resources whose health is `UNKNOWN` (not probed yet).
    pub unknown: i64,
}

impl From<HealthCounts> for HealthSummary {
    fn from(c: HealthCounts) -> Self {
        Self {
            healthy: c.healthy,
            degraded: c.degraded,
            unhealthy: c.unhealthy,
            unknown: c.unknown,
        }
    }
}

/// Client work that resources are linked to. Visible with projects READ in the organization, or
/// as a project of one of the viewer's teams or clients.
#[Object(name = "Project")]
impl ProjectNode {
    /// The project's global id.
    pub async fn id(&self) -> ID {
        ids::encode("Project", self.0.id)
    }
    /// The project's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The project's short name, unique in the organization (lowercase letters, digits, dashes).
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// Free text about the project; `null` when none was given.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The client the work is for; `null` when none is set or the viewer may not see it.
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ClientNode>> {
        let Some(id) = self.0.client_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, ClientId(id)).await?.map(ClientNode))
    }
    /// The team that works on it; `null` when none is set or the viewer may not see it.
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TeamNode>> {
        let Some(id) = self.0.team_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, TeamId(id)).await?.map(TeamNode))
    }
    /// Linked resources, by name (`denormalizedName`, then link id), filtered by kind and by
    /// anything in `filter`.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn resources(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many resources (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the resources after it.")] after: Option<String>,
        #[graphql(desc = "Only resources of these kinds; all kinds when omitted.")] kinds: Option<
            Vec<ResourceKind>,
        >,
        #[graphql(desc = "Which linked resources to keep: status, health, tags, name and more.")]
        filter: Option<ResourceFilter>,
    ) -> async_graphql::Result<ProjectResourceConnection> {
        let args = ListArgs {
            first,
            after,
            kinds,
            filter,
            ..ListArgs::default()
        };
        let window = Window::<(String, uuid::Uuid)>::new(first, args.after.as_deref())?;
        let key = links_key(self.0.id, &window, &args)?;
        let page = load_one(ctx, key).await?.unwrap_or_default();
        let looks = node_looks(&ctx.look_ahead());
        let keys = page.rows.iter().filter_map(resource_key).collect();
        let resources = load_and_prime(ctx, keys, &looks).await?;
        let (len, page_info) =
            page_of(&page.rows, window.first, window.after.is_some(), cursor_key);
        let edges = (0..len)
            .filter_map(|index| {
                let row = resources.get(&resource_key(&page.rows[index])?)?.clone();
                Some(ProjectResourceEdge {
                    links: page.clone(),
                    index,
                    node: ResourceInterface::from_row(row),
                })
            })
            .collect();
        Ok(ProjectResourceConnection {
            edges,
            page_info,
            total_count: page.total,
        })
    }
    /// Linked operation services, by name (at most 500; those the viewer may see: all with
    /// operations READ, else those granted to their teams).
    async fn operation_services(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<OperationServiceNode>> {
        let ids = load_one(ctx, ProjectServicesKey(self.0.id))
            .await?
            .unwrap_or_default();
        let services = loaders(ctx)?
            .load_many(ids.iter().copied().map(OperationServiceId))
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| services.get(&OperationServiceId(*id)).cloned())
            .map(OperationServiceNode)
            .collect())
    }
    /// Counts per health state over every linked resource.
    async fn health_summary(&self, ctx: &Context<'_>) -> async_graphql::Result<HealthSummary> {
        Ok(load_one(ctx, HealthKey(self.0.id))
            .await?
            .unwrap_or_default()
            .into())
    }
    /// When the project was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the project was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A linked resource, with the link's own data: the `index`th link of a page, which the edges
/// share (the page as the loader loaded it: no copy of its rows), and its cursor encoded only
/// when a selection asks for it.
pub struct ProjectResourceEdge {
    links: Arc<Page<LinkRow>>,
    index: usize,
    node: ResourceInterface,
}

/// The key a link's cursor encodes (`denormalizedName`, then link id: the list's order).
fn cursor_key(link: &LinkRow) -> (String, uuid::Uuid) {
    (link.denormalized_name.clone(), link.id)
}

impl ProjectResourceEdge {
    /// An edge of one link alone (a mutation's answer).
    pub fn single(link: LinkRow, node: ResourceInterface) -> Self {
        let links = Page {
            rows: vec![link],
            total: 1,
        };
        Self {
            links: Arc::new(links),
            index: 0,
            node,
        }
    }

    fn link(&self) -> &LinkRow {
        &self.links.rows[self.index]
    }

    fn encoded_cursor(&self) -> String {
        encode_cursor(&cursor_key(self.link()))
    }
}

/// A resource linked to a project, with the link's own data.
#[Object(serial)]
impl ProjectResourceEdge {
    /// Opaque position of this item in the list: pass it as `after` to get the items that
    /// follow it.
    async fn cursor(&self) -> String {
        self.encoded_cursor()
    }
    /// The linked resource.
    async fn node(&self) -> Serial<&ResourceInterface> {
        Serial(&self.node)
    }
    /// When the resource was linked to the project.
    async fn linked_at(&self) -> DateTime<Utc> {
        self.link().linked_at
    }
    /// The resource's name, kept in step with it by the database.
    async fn denormalized_name(&self) -> &str {
        &self.link().denormalized_name
    }
    /// The resource's status, kept in step with it by the database.
    async fn denormalized_status(&self) -> ResourceStatus {
        ResourceStatus::from_word(&self.link().denormalized_status)
    }
}

impl Plain for ProjectResourceEdge {
    fn plain(&self, ctx: &Context<'_>) -> Option<Value> {
        Some(match ctx.item.node.name.node.as_str() {
            "cursor" => self.encoded_cursor().into(),
            "linkedAt" => self.link().linked_at.to_value(),
            "denormalizedName" => self.link().denormalized_name.as_str().into(),
            "denormalizedStatus" => {
                enum_value(ResourceStatus::from_word(&self.link().denormalized_status))
            }
            _ => return None,
        })
    }
}

/// A page of a project's linked resources.
pub struct ProjectResourceConnection {
    pub edges: Vec<ProjectResourceEdge>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

/// A page of a project's linked resources (Relay connection), by name (`denormalizedName`, then
/// link id). Ask for `first` items (default 50, at most 500) `after` a cursor.
#[Object]
impl ProjectResourceConnection {
    /// The page's links with their cursors, in order.
    async fn edges(&self) -> Vec<Serial<&ProjectResourceEdge>> {
        self.edges.iter().map(Serial).collect()
    }
    /// The page's resources, in order (`edges` without cursors and link data).
    async fn nodes(&self) -> Vec<Serial<&ResourceInterface>> {
        self.edges.iter().map(|e| Serial(&e.node)).collect()
    }
    /// Whether more items follow, and the cursors to page on.
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    /// How many resources are linked in all (all pages).
    async fn total_count(&self) -> i64 {
        self.total_count
    }
}
