//! `Project` and its resource connection (`ProjectResourceConnection`).

use std::sync::Arc;

use async_graphql::{Context, ID, Lookahead, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::directory::{ClientNode, TeamNode};
use super::resource::{ResourceInterface, load_and_prime};
use crate::db::models::link::{LinkFilter, LinkRow};
use crate::db::models::project::Project;
use crate::db::models::resource::Kind;
use crate::error::ApiError;
use crate::graphql::connection::{PageInfo, Window, paginate};
use crate::graphql::context::{load_one, loaders};
use crate::graphql::enums::{ResourceKind, ResourceStatus, words};
use crate::graphql::ids;
use crate::graphql::loaders::{ClientId, HealthCounts, HealthKey, LinksKey, ResourceKey, TeamId};

/// Client work that resources are linked to.
#[derive(Clone)]
pub struct ProjectNode(pub Arc<Project>);

/// How many of a project's linked resources are in each health state.
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct HealthSummary {
    pub healthy: i64,
    pub degraded: i64,
    pub unhealthy: i64,
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

#[Object(name = "Project")]
impl ProjectNode {
    pub async fn id(&self) -> ID {
        ids::encode("Project", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ClientNode>> {
        let Some(id) = self.0.client_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, ClientId(id)).await?.map(ClientNode))
    }
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TeamNode>> {
        let Some(id) = self.0.team_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, TeamId(id)).await?.map(TeamNode))
    }
    /// Linked resources, by name (`denormalizedName`, then link id).
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn resources(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        kinds: Option<Vec<ResourceKind>>,
    ) -> async_graphql::Result<ProjectResourceConnection> {
        let window = Window::<(String, uuid::Uuid)>::new(first, after.as_deref())?;
        let key = links_key(self.0.id, &window, kinds.as_deref());
        let page = load_one(ctx, key).await?.unwrap_or_default();
        let looks = node_looks(&ctx.look_ahead());
        let keys = page.rows.iter().filter_map(resource_key).collect();
        let resources = load_and_prime(ctx, keys, &looks).await?;
        let (edges, page_info) = paginate(
            page.rows.clone(),
            window.first,
            window.after.is_some(),
            |l| (l.denormalized_name.clone(), l.id),
        );
        let edges = edges
            .into_iter()
            .filter_map(|(cursor, link)| {
                let row = resources.get(&resource_key(&link)?)?.clone();
                Some(ProjectResourceEdge {
                    cursor,
                    link,
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
    /// Counts per health state over every linked resource.
    async fn health_summary(&self, ctx: &Context<'_>) -> async_graphql::Result<HealthSummary> {
        Ok(load_one(ctx, HealthKey(self.0.id))
            .await?
            .unwrap_or_default()
            .into())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

fn links_key(
    project: uuid::Uuid,
    window: &Window<(String, uuid::Uuid)>,
    kinds: Option<&[ResourceKind]>,
) -> LinksKey {
    let kinds = kinds.map(|k| words(k, |kind| Kind::from(kind).as_str()));
    LinksKey {
        project,
        filter: LinkFilter {
            kinds,
            after: window.after.clone(),
            limit: window.limit(),
        },
    }
}

fn resource_key(link: &LinkRow) -> Option<ResourceKey> {
    Some(ResourceKey(
        Kind::parse(&link.resource_kind)?,
        link.resource_id,
    ))
}

/// The selections that apply to each node of a connection (`edges.node` and `nodes`).
pub fn node_looks<'a>(connection: &Lookahead<'a>) -> Vec<Lookahead<'a>> {
    vec![
        connection.field("edges").field("node"),
        connection.field("nodes"),
    ]
}

/// A linked resource, with the link's own data.
pub struct ProjectResourceEdge {
    pub cursor: String,
    pub link: LinkRow,
    pub node: ResourceInterface,
}

#[Object]
impl ProjectResourceEdge {
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn node(&self) -> &ResourceInterface {
        &self.node
    }
    async fn linked_at(&self) -> DateTime<Utc> {
        self.link.linked_at
    }
    /// The resource's name, kept in step with it by the database.
    async fn denormalized_name(&self) -> &str {
        &self.link.denormalized_name
    }
    /// The resource's status, kept in step with it by the database.
    async fn denormalized_status(&self) -> ResourceStatus {
        ResourceStatus::from_word(&self.link.denormalized_status)
    }
}

/// A page of a project's linked resources.
pub struct ProjectResourceConnection {
    pub edges: Vec<ProjectResourceEdge>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[Object]
impl ProjectResourceConnection {
    async fn edges(&self) -> &[ProjectResourceEdge] {
        &self.edges
    }
    async fn nodes(&self) -> Vec<&ResourceInterface> {
        self.edges.iter().map(|e| &e.node).collect()
    }
    async fn page_info(&self) -> &PageInfo {
        &self.page_info
    }
    async fn total_count(&self) -> i64 {
        self.total_count
    }
}

/// Loads, for every project of a list at once, what `look` (the selection on each project) asks
/// for: clients, teams, health summaries, and each `resources` page with its resources, so the
/// per-project resolvers find everything cached.
pub async fn prime(
    ctx: &Context<'_>,
    projects: &[ProjectNode],
    look: &Lookahead<'_>,
) -> Result<(), ApiError> {
    if projects.is_empty() {
        return Ok(());
    }
    let loaders = loaders(ctx)?;
    let clients = async {
        if look.field("client").exists() {
            loaders
                .load_many(projects.iter().filter_map(|p| p.0.client_id.map(ClientId)))
                .await?;
        }
        Ok::<_, ApiError>(())
    };
    let teams = async {
        if look.field("team").exists() {
            loaders
                .load_many(projects.iter().filter_map(|p| p.0.team_id.map(TeamId)))
                .await?;
        }
        Ok::<_, ApiError>(())
    };
    let health = async {
        if look.field("healthSummary").exists() {
            loaders
                .load_many(projects.iter().map(|p| HealthKey(p.0.id)))
                .await?;
        }
        Ok::<_, ApiError>(())
    };
    let resources = prime_resources(ctx, projects, look);
    futures_util::try_join!(clients, teams, health, resources)?;
    Ok(())
}

async fn prime_resources(
    ctx: &Context<'_>,
    projects: &[ProjectNode],
    look: &Lookahead<'_>,
) -> Result<(), ApiError> {
    let loaders = loaders(ctx)?;
    let field = look.field("resources");
    for selection in field.selection_fields() {
        let Some(args) = resource_args(&selection) else {
            continue;
        };
        let Ok(window) = Window::<(String, uuid::Uuid)>::new(args.0, args.1.as_deref()) else {
            continue;
        };
        let keys = projects
            .iter()
            .map(|p| links_key(p.0.id, &window, args.2.as_deref()));
        let pages = loaders.load_many(keys).await?;
        let resource_keys = pages
            .values()
            .flat_map(|page| page.rows.iter().filter_map(resource_key))
            .collect();
        load_and_prime(ctx, resource_keys, &node_looks(&field)).await?;
    }
    Ok(())
}

/// `first`, `after` and `kinds` of a `resources` field.
type ResourceArgs = (Option<i32>, Option<String>, Option<Vec<ResourceKind>>);

/// `first`, `after` and `kinds` of a `resources` selection, as its resolver will read them.
fn resource_args(selection: &async_graphql::SelectionField<'_>) -> Option<ResourceArgs> {
    use async_graphql::{InputType, Value};
    let mut args = (None, None, None);
    for (name, value) in selection.arguments().ok()? {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            ("first", value) => args.0 = Some(i32::parse(Some(value)).ok()?),
            ("after", value) => args.1 = Some(String::parse(Some(value)).ok()?),
            ("kinds", value) => args.2 = Some(Vec::<ResourceKind>::parse(Some(value)).ok()?),
            _ => {}
        }
    }
    Some(args)
}
