//! Per-request DataLoaders: every relation a query can nest is loaded here, in batches.
//!
//! One [`DbLoader`] implements [`Loader`] for each key type; all of them run on the request's
//! [`RequestDb`] transaction. List resolvers call each loader once with every key of the list
//! (see `prime` in the types), so a query costs statements per level, not per row.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use uuid::Uuid;

use crate::db::models::alert::{self, AlertRow};
use crate::db::models::directory::{self, Client, Team};
use crate::db::models::dock::{self, Dock, SyncRunRow};
use crate::db::models::link::{self, LinkFilter, LinkRow};
use crate::db::models::project::{self, Project};
use crate::db::models::resource::{self, Kind, PageRow, Parent, Resource};
use crate::db::models::user::{self, User};
use crate::db::models::visibility::Visibility;
use crate::db::{DbError, RequestDb};
use crate::error::ApiError;

/// The request's loaders (one cache per key type, shared by every resolver of the request).
pub type Loaders = DataLoader<DbLoader, HashMapCache>;

/// Builds the loaders of one request over its database handle.
pub fn loaders(db: Arc<RequestDb>) -> Arc<Loaders> {
    Arc::new(DataLoader::with_cache(
        DbLoader { db },
        tokio::spawn,
        HashMapCache::default(),
    ))
}

/// Forgets everything loaded: a subscription resolves each event afresh, like a new request.
pub fn clear_all(loaders: &Loaders) {
    loaders.clear::<ResourceKey>();
    loaders.clear::<ApiDataKey>();
    loaders.clear::<DockId>();
    loaders.clear::<ClientId>();
    loaders.clear::<TeamId>();
    loaders.clear::<ProjectId>();
    loaders.clear::<SyncRunId>();
    loaders.clear::<AlertId>();
    loaders.clear::<MemberId>();
    loaders.clear::<LinksKey>();
    loaders.clear::<HealthKey>();
    loaders.clear::<ProjectsOfKey>();
    loaders.clear::<ResourcePageKey>();
    loaders.clear::<SyncRunsKey>();
    loaders.clear::<HealthHistoryKey>();
}

/// Loads through the request's transaction.
pub struct DbLoader {
    db: Arc<RequestDb>,
}

/// A loader failure, cloneable as DataLoader requires.
pub type LoadError = Arc<DbError>;

impl From<LoadError> for ApiError {
    fn from(err: LoadError) -> Self {
        ApiError::internal(anyhow::anyhow!("{err}"))
    }
}

/// Groups keys by a part they share (a filter), preserving order of first appearance.
fn group_by<K, G: Eq + Hash + Clone>(keys: &[K], group: impl Fn(&K) -> G) -> Vec<(G, Vec<&K>)> {
    let mut groups: Vec<(G, Vec<&K>)> = Vec::new();
    for key in keys {
        let g = group(key);
        match groups.iter_mut().find(|(existing, _)| *existing == g) {
            Some((_, members)) => members.push(key),
            None => groups.push((g, vec![key])),
        }
    }
    groups
}

/// Identifies a resource: its kind and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceKey(pub Kind, pub Uuid);

impl Loader<ResourceKey> for DbLoader {
    type Value = Arc<Resource>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ResourceKey],
    ) -> Result<HashMap<ResourceKey, Arc<Resource>>, LoadError> {
        let groups = group_by(keys, |k| k.0);
        let visibility = self.db.visibility();
        self.db
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

/// A resource's `full_api_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ApiDataKey(pub Kind, pub Uuid);

impl Loader<ApiDataKey> for DbLoader {
    type Value = Arc<Option<serde_json::Value>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ApiDataKey],
    ) -> Result<HashMap<ApiDataKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| k.0);
        self.db
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

/// Defines a loader of rows by id behind a key newtype; `$sees` (visibility, row) is the type's
/// visibility rule, applied here so every path to a row (`node`, nested fields, events) agrees.
macro_rules! by_id_loader {
    ($key:ident, $value:ty, $load:path, $sees:expr) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for DbLoader {
            type Value = Arc<$value>;
            type Error = LoadError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Arc<$value>>, LoadError> {
                let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
                let rows = self
                    .db
                    .run(async |conn| $load(conn, &ids).await)
                    .await
                    .map_err(Arc::new)?;
                let sees: fn(&Visibility, &$value) -> bool = $sees;
                let visibility = self.db.visibility();
                Ok(rows
                    .into_iter()
                    .filter(|row| sees(&visibility, row))
                    .map(|row| ($key(row.id), Arc::new(row)))
                    .collect())
            }
        }
    };
}

by_id_loader!(DockId, Dock, dock::by_ids, |v, d| d.deleted_at.is_none()
    && v.sees_dock(d.id));
by_id_loader!(ClientId, Client, directory::clients_by_ids, |v, c| v
    .sees_client(c.id));
by_id_loader!(TeamId, Team, directory::teams_by_ids, |v, t| v
    .sees_team(t.id));

/// Live projects by id, as far as the viewer may see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProjectId(pub Uuid);

impl Loader<ProjectId> for DbLoader {
    type Value = Arc<Project>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ProjectId],
    ) -> Result<HashMap<ProjectId, Arc<Project>>, LoadError> {
        let visibility = self.db.visibility();
        let ids: Vec<Uuid> = keys
            .iter()
            .map(|k| k.0)
            .filter(|id| visibility.sees_project(*id))
            .collect();
        let rows = self
            .db
            .run(async |conn| project::by_ids(conn, &ids).await)
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|row| (ProjectId(row.id), Arc::new(row)))
            .collect())
    }
}
by_id_loader!(SyncRunId, SyncRunRow, dock::sync_runs_by_ids, |v, r| v
    .sees_dock(r.dock_id));
// An alert is visible with its resource (and monitoring READ): `node` decides, with both loaded.
by_id_loader!(AlertId, AlertRow, alert::by_ids, |_, _| true);

/// Users by id, as far as the viewer may see them: themself, and the members of the request's
/// organization when the viewer is a member too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberId(pub Uuid);

impl Loader<MemberId> for DbLoader {
    type Value = Arc<User>;
    type Error = LoadError;

    async fn load(&self, keys: &[MemberId]) -> Result<HashMap<MemberId, Arc<User>>, LoadError> {
        let visibility = self.db.visibility();
        let Some(org_id) = self.db.scope().org_id else {
            return Ok(HashMap::new());
        };
        let me = visibility.me;
        let others: Vec<Uuid> = keys
            .iter()
            .map(|k| k.0)
            .filter(|id| visibility.sees_user(*id, true) && *id != me)
            .collect();
        let with_me = keys.iter().any(|k| k.0 == me);
        let rows = self
            .db
            .run(async |conn| {
                let mut rows = user::find_members(conn, org_id, &others).await?;
                if with_me {
                    rows.extend(user::find_by_id(conn, me).await?);
                }
                Ok(rows)
            })
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|u| (MemberId(u.id), Arc::new(u)))
            .collect())
    }
}

/// A page of one project's links.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LinksKey {
    pub project: Uuid,
    pub filter: LinkFilter,
}

/// Links of one project (at most the filter's limit) and how many match in all.
#[derive(Clone, Debug, Default)]
pub struct LinkPage {
    pub rows: Vec<LinkRow>,
    pub total: i64,
}

impl Loader<LinksKey> for DbLoader {
    type Value = Arc<LinkPage>;
    type Error = LoadError;

    async fn load(&self, keys: &[LinksKey]) -> Result<HashMap<LinksKey, Arc<LinkPage>>, LoadError> {
        let groups = group_by(keys, |k| k.filter.clone());
        self.db
            .run(async |conn| {
                let mut found = HashMap::new();
                for (filter, members) in groups {
                    let projects: Vec<Uuid> = members.iter().map(|k| k.project).collect();
                    let mut pages: HashMap<Uuid, LinkPage> = HashMap::new();
                    for row in link::page(conn, &projects, &filter).await? {
                        let page = pages.entry(row.project_id).or_default();
                        page.total = row.total;
                        page.rows.push(row);
                    }
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

    async fn load(
        &self,
        keys: &[HealthKey],
    ) -> Result<HashMap<HealthKey, HealthCounts>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .db
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

/// The projects a resource is linked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProjectsOfKey(pub Uuid);

impl Loader<ProjectsOfKey> for DbLoader {
    type Value = Arc<Vec<Project>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ProjectsOfKey],
    ) -> Result<HashMap<ProjectsOfKey, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .db
            .run(async |conn| link::projects_of(conn, &ids).await)
            .await
            .map_err(Arc::new)?;
        let mut grouped: HashMap<Uuid, Vec<Project>> = HashMap::new();
        let visibility = self.db.visibility();
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

/// A page of resources under one parent (org or dock).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourcePageKey {
    pub parent: Parent,
    pub id: Uuid,
    pub filter: resource::Filter,
}

/// Ids of one page of resources, and how many match in all.
#[derive(Clone, Debug, Default)]
pub struct ResourcePage {
    pub rows: Vec<PageRow>,
    pub total: i64,
}

impl Loader<ResourcePageKey> for DbLoader {
    type Value = Arc<ResourcePage>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ResourcePageKey],
    ) -> Result<HashMap<ResourcePageKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| (k.parent, k.filter.clone()));
        self.db
            .run(async |conn| {
                let mut found = HashMap::new();
                for ((parent, filter), members) in groups {
                    let ids: Vec<Uuid> = members.iter().map(|k| k.id).collect();
                    let mut pages: HashMap<Uuid, ResourcePage> = HashMap::new();
                    let visibility = self.db.visibility();
                    let restricted = resource::Filter {
                        visible: visibility
                            .linked_resources
                            .clone()
                            .map(|linked| (visibility.dock_ids().unwrap_or_default(), linked)),
                        ..filter.clone()
                    };
                    for row in resource::page_ids(conn, parent, &ids, &restricted).await? {
                        let page = pages.entry(row.parent).or_default();
                        page.total = row.total;
                        page.rows.push(row);
                    }
                    for id in ids {
                        let page = pages.remove(&id).unwrap_or_default();
                        found.insert(
                            ResourcePageKey {
                                parent,
                                id,
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

/// A page of one dock's sync runs, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SyncRunsKey {
    pub dock: Uuid,
    pub after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    pub limit: i64,
}

impl Loader<SyncRunsKey> for DbLoader {
    type Value = Arc<(Vec<SyncRunRow>, i64)>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[SyncRunsKey],
    ) -> Result<HashMap<SyncRunsKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| (k.after, k.limit));
        self.db
            .run(async |conn| {
                let mut found = HashMap::new();
                for ((after, limit), members) in groups {
                    let docks: Vec<Uuid> = members.iter().map(|k| k.dock).collect();
                    let mut pages: HashMap<Uuid, (Vec<SyncRunRow>, i64)> = HashMap::new();
                    for row in dock::sync_runs_page(conn, &docks, after, limit).await? {
                        let page = pages.entry(row.dock_id).or_default();
                        page.1 = row.total;
                        page.0.push(row);
                    }
                    for dock in docks {
                        let page = pages.remove(&dock).unwrap_or_default();
                        found.insert(SyncRunsKey { dock, after, limit }, Arc::new(page));
                    }
                }
                Ok(found)
            })
            .await
            .map_err(Arc::new)
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

impl Loader<HealthHistoryKey> for DbLoader {
    type Value = Arc<(Vec<crate::db::models::health::CheckRow>, i64)>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[HealthHistoryKey],
    ) -> Result<HashMap<HealthHistoryKey, Self::Value>, LoadError> {
        use crate::db::models::health;
        let groups = group_by(keys, |k| (k.after, k.limit));
        self.db
            .run(async |conn| {
                let mut found = HashMap::new();
                for ((after, limit), members) in groups {
                    let resources: Vec<Uuid> = members.iter().map(|k| k.resource).collect();
                    let mut pages: HashMap<Uuid, (Vec<health::CheckRow>, i64)> = HashMap::new();
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
