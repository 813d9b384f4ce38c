//! How projects are loaded: the `Project` object's value ([`ProjectNode`]), projects by id, pages
//! of a project's links, its health counts; and [`prime`], which loads what a list of projects'
//! selection asks for in one batch per relation. Apart from the project's fields
//! (`types/project.rs`) so that resources, which list their projects, need not import them.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Lookahead};
use uuid::Uuid;

use crate::db::models::keyset;
use crate::db::models::link::{self, LinkFilter, LinkRow};
use crate::db::models::project::{self, Project};
use crate::db::models::resource::Kind;
use crate::error::ApiError;
use crate::events::{Reads, Topic};
use crate::graphql::connection::{Window, node_looks};
use crate::graphql::context::loaders;
use crate::graphql::loaders::{DbLoader, LoadError, Recorded, group_by};
use crate::graphql::types::directory::{ClientId, TeamId};
use crate::graphql::types::operation::load as operation;
use crate::graphql::types::resource::load::{ResourceKey, load_and_prime};
use crate::graphql::types::resource_filter::ListArgs;

/// A loaded project: the value of the `Project` object type (its fields are in
/// `types/project.rs`).
#[derive(Clone)]
pub struct ProjectNode(pub Arc<Project>);

/// Live projects by id, as far as the viewer may see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProjectId(pub Uuid);

impl Loader<ProjectId> for DbLoader {
    type Value = Arc<Project>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ProjectId", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ProjectId],
    ) -> Result<HashMap<ProjectId, Arc<Project>>, LoadError> {
        let visibility = self.db().visibility();
        let ids: Vec<Uuid> = keys
            .iter()
            .map(|k| k.0)
            .filter(|id| visibility.sees_project(*id))
            .collect();
        let rows = self
            .db()
            .run(async |conn| project::by_ids(conn, &ids).await)
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|row| (ProjectId(row.id), Arc::new(row)))
            .collect())
    }
}

impl Recorded for ProjectId {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::Project(self.0));
    }
}

/// A page of one project's links.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinksKey {
    pub project: Uuid,
    pub filter: LinkFilter,
}

/// Links of one project (at most the filter's limit) and how many match in all.
pub type LinkPage = keyset::Page<LinkRow>;

impl Loader<LinksKey> for DbLoader {
    type Value = Arc<LinkPage>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load LinksKey", loader.keys = keys.len()))]
    async fn load(&self, keys: &[LinksKey]) -> Result<HashMap<LinksKey, Arc<LinkPage>>, LoadError> {
        let groups = group_by(keys, |k| k.filter.clone());
        self.db()
            .run(async |conn| {
                let mut found = HashMap::new();
                for (filter, members) in groups {
                    let projects: Vec<Uuid> = members.iter().map(|k| k.project).collect();
                    let mut pages = keyset::pages(link::page(conn, &projects, &filter).await?);
                    for project in projects {
                        let page = pages.remove(&project).unwrap_or_default();
                        found.insert(
                            LinksKey {
                                project,
                                filter: filter.clone(),
                            },
                            Arc::new(page),
                        );
                    }
                }
                Ok(found)
            })
            .await
            .map_err(Arc::new)
    }
}

impl Recorded for LinksKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::Project(self.project));
        // Filtered by what the resources are: any resource's change may move it in or out.
        if !self.filter.matching.is_empty() {
            reads.add(Topic::Resources);
            if self.filter.matching.reads_health() {
                reads.add(Topic::Health);
            }
        }
    }
}

/// A project's health counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HealthKey(pub Uuid);

/// How many linked resources are in each health state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthCounts {
    pub healthy: i64,
    pub degraded: i64,
    pub unhealthy: i64,
    pub unknown: i64,
}

impl Loader<HealthKey> for DbLoader {
    type Value = HealthCounts;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load HealthKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[HealthKey],
    ) -> Result<HashMap<HealthKey, HealthCounts>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .db()
            .run(async |conn| link::health_counts(conn, &ids).await)
            .await
            .map_err(Arc::new)?;
        let mut found: HashMap<HealthKey, HealthCounts> =
            keys.iter().map(|k| (*k, HealthCounts::default())).collect();
        for row in rows {
            let counts = found.entry(HealthKey(row.project_id)).or_default();
            match row.state.as_str() {
                "healthy" => counts.healthy += row.n,
                "degraded" => counts.degraded += row.n,
                "unhealthy" => counts.unhealthy += row.n,
                _ => counts.unknown += row.n,
            }
        }
        Ok(found)
    }
}

impl Recorded for HealthKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.extend([Topic::Project(self.0), Topic::Health]);
    }
}

/// The key of a project's `resources` page for `window` and the list's arguments.
pub fn links_key(
    project: Uuid,
    window: &Window<(String, Uuid)>,
    args: &ListArgs,
) -> Result<LinksKey, ApiError> {
    let (kinds, matching) = args.matching()?;
    Ok(LinksKey {
        project,
        filter: LinkFilter {
            kinds,
            matching,
            after: window.after.clone(),
            limit: window.limit(),
        },
    })
}

/// The key of a link's resource.
pub fn resource_key(link: &LinkRow) -> Option<ResourceKey> {
    Some(ResourceKey(
        Kind::parse(&link.resource_kind)?,
        link.resource_id,
    ))
}

/// Loads, for every project of a list at once, what `look` (the selection on each project) asks
/// for: clients, teams, health summaries, operation services, and each `resources` page with
/// its resources, so the per-project resolvers find everything cached.
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
    let services = async {
        let field = look.field("operationServices");
        if field.exists() {
            let ids: Vec<Uuid> = projects.iter().map(|p| p.0.id).collect();
            operation::prime_of_projects(ctx, &ids, &field).await?;
        }
        Ok::<_, ApiError>(())
    };
    let resources = prime_resources(ctx, projects, look);
    futures_util::try_join!(clients, teams, health, services, resources)?;
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
        let Some(args) = ListArgs::of_selection(&selection) else {
            continue;
        };
        let Ok(window) = Window::<(String, Uuid)>::new(args.first, args.after.as_deref()) else {
            continue;
        };
        let Ok(keys) = projects
            .iter()
            .map(|p| links_key(p.0.id, &window, &args))
            .collect::<Result<Vec<_>, _>>()
        else {
            continue;
        };
        let pages = loaders.load_many(keys).await?;
        let resource_keys = pages
            .values()
            .flat_map(|page| page.rows.iter().filter_map(resource_key))
            .collect();
        load_and_prime(ctx, resource_keys, &node_looks(&field)).await?;
    }
    Ok(())
}
