//! How resources are loaded: by kind and id, with their provider data, their latest health
//! checks and the projects they are linked to; and [`load_and_prime`], which loads a list of
//! resources and everything its selection asks of them in one batch per relation.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::db::models::health::{self, CheckRow};
use crate::db::models::link;
use crate::db::models::project::Project;
use crate::db::models::resource::{self, Kind, Resource};
use crate::error::ApiError;
use crate::events::{Reads, Topic};
use crate::graphql::context::{loaders, visibility};
use crate::graphql::loaders::{DbLoader, LoadError, Recorded, group_by};
use crate::graphql::types::dock::load::DockId;

/// Identifies a resource: its kind and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceKey(pub Kind, pub Uuid);

impl Loader<ResourceKey> for DbLoader {
    type Value = Arc<Resource>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ResourceKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ResourceKey],
    ) -> Result<HashMap<ResourceKey, Arc<Resource>>, LoadError> {
        let groups = group_by(keys, |k| k.0);
        let visibility = self.db().visibility();
        self.db()
            .run(async |conn| {
                let mut found = HashMap::new();
                for (kind, members) in groups {
                    let ids: Vec<Uuid> = members.iter().map(|k| k.1).collect();
                    for row in resource::by_ids(conn, kind, &ids).await? {
                        if visibility.sees_resource(row.common.id, row.common.dock_id) {
                            found.insert(ResourceKey(kind, row.common.id), Arc::new(row));
                        }
                    }
                }
                Ok(found)
            })
            .await
            .map_err(Arc::new)
    }
}

impl Recorded for ResourceKey {
    fn record(&self, value: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::Resource(self.1));
        // A sync of its dock rewrites the row without naming it.
        reads.extend(value.map(|row| Topic::Dock(row.common.dock_id)));
    }
}

/// A resource's `full_api_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ApiDataKey(pub Kind, pub Uuid);

impl Loader<ApiDataKey> for DbLoader {
    type Value = Arc<Option<serde_json::Value>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ApiDataKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ApiDataKey],
    ) -> Result<HashMap<ApiDataKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| k.0);
        self.db()
            .run(async |conn| {
                let mut found = HashMap::new();
                for (kind, members) in groups {
                    let ids: Vec<Uuid> = members.iter().map(|k| k.1).collect();
                    for (id, data) in resource::api_data(conn, kind, &ids).await? {
                        found.insert(ApiDataKey(kind, id), Arc::new(data));
                    }
                }
                Ok(found)
            })
            .await
            .map_err(Arc::new)
    }
}

impl Recorded for ApiDataKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        // Loaded for a resource already loaded (and recorded with its dock) by `ResourceKey`.
        reads.add(Topic::Resource(self.1));
    }
}

/// The projects a resource is linked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProjectsOfKey(pub Uuid);

impl Loader<ProjectsOfKey> for DbLoader {
    type Value = Arc<Vec<Project>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ProjectsOfKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ProjectsOfKey],
    ) -> Result<HashMap<ProjectsOfKey, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .db()
            .run(async |conn| link::projects_of(conn, &ids).await)
            .await
            .map_err(Arc::new)?;
        let mut grouped: HashMap<Uuid, Vec<Project>> = HashMap::new();
        let visibility = self.db().visibility();
        for (resource, project) in rows {
            if visibility.sees_project(project.id) {
                grouped.entry(resource).or_default().push(project);
            }
        }
        Ok(keys
            .iter()
            .map(|k| (*k, Arc::new(grouped.remove(&k.0).unwrap_or_default())))
            .collect())
    }
}

impl Recorded for ProjectsOfKey {
    fn record(&self, value: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::Resource(self.0));
        for project in value.map(|p| p.iter()).into_iter().flatten() {
            reads.add(Topic::Project(project.id));
        }
    }
}

/// A page of one resource's health checks, newest first (`limit` 1: the latest check).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HealthHistoryKey {
    pub resource: Uuid,
    pub after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    pub limit: i64,
}

impl HealthHistoryKey {
    /// The key of a resource's latest check.
    pub fn latest(resource: Uuid) -> Self {
        Self {
            resource,
            after: None,
            limit: 1,
        }
    }
}

impl Recorded for HealthHistoryKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::Resource(self.resource));
    }
}

impl Loader<HealthHistoryKey> for DbLoader {
    type Value = Arc<(Vec<CheckRow>, i64)>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load HealthHistoryKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[HealthHistoryKey],
    ) -> Result<HashMap<HealthHistoryKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| (k.after, k.limit));
        self.db()
            .run(async |conn| {
                let mut found = HashMap::new();
                for ((after, limit), members) in groups {
                    let resources: Vec<Uuid> = members.iter().map(|k| k.resource).collect();
                    let mut pages: HashMap<Uuid, (Vec<CheckRow>, i64)> = HashMap::new();
                    for row in health::history_page(conn, &resources, after, limit).await? {
                        let page = pages.entry(row.resource_id).or_default();
                        page.1 = row.total;
                        page.0.push(row);
                    }
                    for resource in resources {
                        let page = pages.remove(&resource).unwrap_or_default();
                        found.insert(
                            HealthHistoryKey {
                                resource,
                                after,
                                limit,
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

/// Loads resources by key in one batch (per kind), and primes what the selection `look` under
/// each of them asks for: docks, projects, provider data.
pub async fn load_and_prime(
    ctx: &Context<'_>,
    keys: Vec<ResourceKey>,
    looks: &[async_graphql::Lookahead<'_>],
) -> Result<HashMap<ResourceKey, Arc<Resource>>, ApiError> {
    let loaders = loaders(ctx)?;
    let found = loaders.load_many(keys).await?;
    let wants = |field: &str| looks.iter().any(|l| l.field(field).exists());
    let rows = || found.values();
    let docks = async {
        if wants("dock") {
            loaders
                .load_many(rows().map(|r| DockId(r.common.dock_id)))
                .await?;
        }
        Ok::<_, ApiError>(())
    };
    let projects = async {
        if wants("projects") {
            loaders
                .load_many(rows().map(|r| ProjectsOfKey(r.common.id)))
                .await?;
        }
        Ok::<_, ApiError>(())
    };
    let health = async {
        let latest = looks.iter().any(|l| {
            let health = l.field("health");
            health.field("latencyMs").exists() || health.field("message").exists()
        });
        if latest {
            loaders
                .load_many(rows().map(|r| HealthHistoryKey::latest(r.common.id)))
                .await?;
        }
        Ok::<_, ApiError>(())
    };
    let api_data = async {
        if wants("fullApiData") {
            let visible = visibility(ctx)?;
            let keys = rows()
                .filter(|r| visible.sees_api_data(r.common.dock_id))
                .map(|r| ApiDataKey(r.kind(), r.common.id));
            loaders.load_many(keys).await?;
        }
        Ok::<_, ApiError>(())
    };
    futures_util::try_join!(docks, projects, health, api_data)?;
    Ok(found)
}
