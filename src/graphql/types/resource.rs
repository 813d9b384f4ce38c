//! The `Resource` interface and its kinds: `Server`, `WebService`, `Domain`, `Database`.
//!
//! The four object types share every `Resource` field through one macro; each adds its kind's own.

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::dock::DockNode;
use super::project::ProjectNode;
use crate::db::models::health::CheckRow;
use crate::db::models::resource::{Extra, Kind, Resource};
use crate::error::ApiError;
use crate::graphql::connection::{Window, connection, paginate};
use crate::graphql::context::{load_one, loaders, visibility};
use crate::graphql::enums::{HealthState, ResourceKind, ResourceStatus};
use crate::graphql::ids;
use crate::graphql::loaders::{ApiDataKey, DockId, HealthHistoryKey, ProjectsOfKey, ResourceKey};

/// A resource's latest health.
pub struct Health {
    resource: uuid::Uuid,
    state: HealthState,
    checked_at: Option<DateTime<Utc>>,
}

#[Object]
impl Health {
    /// `UNKNOWN` until the resource is first probed.
    async fn state(&self) -> HealthState {
        self.state
    }
    async fn checked_at(&self) -> Option<DateTime<Utc>> {
        self.checked_at
    }
    /// Latency of the latest check.
    async fn latency_ms(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i32>> {
        Ok(latest_check(ctx, self.resource)
            .await?
            .and_then(|c| c.latency_ms))
    }
    /// What the latest check said.
    async fn message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(latest_check(ctx, self.resource)
            .await?
            .and_then(|c| c.message))
    }
}

async fn latest_check(
    ctx: &Context<'_>,
    resource: uuid::Uuid,
) -> Result<Option<CheckRow>, ApiError> {
    let page = load_one(ctx, HealthHistoryKey::latest(resource))
        .await?
        .unwrap_or_default();
    Ok(page.0.first().cloned())
}

/// One recorded health check.
#[derive(SimpleObject, Clone, Debug)]
pub struct HealthCheck {
    pub state: HealthState,
    pub checked_at: DateTime<Utc>,
    pub latency_ms: Option<i32>,
    pub message: Option<String>,
}

connection!(HealthCheckConnection, HealthCheckEdge, HealthCheck);

async fn history_of(
    ctx: &Context<'_>,
    row: &Resource,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<HealthCheckConnection> {
    let window = Window::<(DateTime<Utc>, uuid::Uuid)>::new(first, after.as_deref())?;
    let key = HealthHistoryKey {
        resource: row.common.id,
        after: window.after,
        limit: window.limit(),
    };
    let page = load_one(ctx, key).await?.unwrap_or_default();
    let (edges, info) = paginate(page.0.clone(), window.first, window.after.is_some(), |c| {
        (c.checked_at, c.id)
    });
    let edges = edges
        .into_iter()
        .map(|(cursor, c)| {
            let check = HealthCheck {
                state: HealthState::from_word(&c.state),
                checked_at: c.checked_at,
                latency_ms: c.latency_ms,
                message: c.message,
            };
            (cursor, check)
        })
        .collect();
    Ok(HealthCheckConnection::new(edges, info, page.1))
}

/// Any synced resource.
#[expect(
    clippy::duplicated_attributes,
    reason = "each `field(...)` of the derive repeats `ty`"
)]
#[derive(Interface)]
#[graphql(
    name = "Resource",
    field(name = "id", ty = "ID"),
    field(name = "kind", ty = "ResourceKind"),
    field(name = "name", ty = "&str"),
    field(name = "provider", ty = "&str"),
    field(name = "provider_resource_id", ty = "&str"),
    field(name = "status", ty = "ResourceStatus"),
    field(name = "provider_status", ty = "Option<&str>"),
    field(name = "region", ty = "Option<&str>"),
    field(name = "health", ty = "Health"),
    field(
        name = "health_history",
        ty = "HealthCheckConnection",
        arg(name = "first", ty = "Option<i32>"),
        arg(name = "after", ty = "Option<String>")
    ),
    field(name = "dock", ty = "Option<DockNode>"),
    field(name = "projects", ty = "Vec<ProjectNode>"),
    field(name = "full_api_data", ty = "Option<Json<serde_json::Value>>"),
    field(name = "last_seen_at", ty = "Option<DateTime<Utc>>"),
    field(name = "created_at", ty = "DateTime<Utc>"),
    field(name = "updated_at", ty = "DateTime<Utc>")
)]
pub enum ResourceInterface {
    Server(ServerNode),
    WebService(WebServiceNode),
    Domain(DomainNode),
    Database(DatabaseNode),
}

impl ResourceInterface {
    /// Wraps a loaded row in the object type of its kind.
    pub fn from_row(row: Arc<Resource>) -> Self {
        match row.kind() {
            Kind::Server => Self::Server(ServerNode(row)),
            Kind::WebService => Self::WebService(WebServiceNode(row)),
            Kind::Domain => Self::Domain(DomainNode(row)),
            Kind::Database => Self::Database(DatabaseNode(row)),
        }
    }
}

/// The GraphQL type name of a kind (and of its global ids).
pub fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Server => "Server",
        Kind::WebService => "WebService",
        Kind::Domain => "Domain",
        Kind::Database => "Database",
    }
}

/// The kind whose GraphQL type is `name`.
pub fn kind_of_type(name: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| type_name(*k) == name)
}

/// The resource's dock, when the viewer may see it (a client-portal user sees linked resources,
/// not the docks they came from).
async fn dock_of(ctx: &Context<'_>, row: &Resource) -> async_graphql::Result<Option<DockNode>> {
    Ok(load_one(ctx, DockId(row.common.dock_id))
        .await?
        .map(DockNode))
}

async fn projects_of(ctx: &Context<'_>, row: &Resource) -> async_graphql::Result<Vec<ProjectNode>> {
    let projects = load_one(ctx, ProjectsOfKey(row.common.id))
        .await?
        .unwrap_or_default();
    let nodes: Vec<ProjectNode> = projects
        .iter()
        .cloned()
        .map(|p| ProjectNode(Arc::new(p)))
        .collect();
    super::project::prime(ctx, &nodes, &ctx.look_ahead()).await?;
    Ok(nodes)
}

async fn api_data_of(
    ctx: &Context<'_>,
    row: &Resource,
) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
    if !visibility(ctx)?.sees_api_data(row.common.dock_id) {
        return Ok(None);
    }
    let data = loaders(ctx)?
        .load_one(ApiDataKey(row.kind(), row.common.id))
        .await
        .map_err(ApiError::from)?;
    Ok(data.and_then(|d| d.as_ref().clone()).map(Json))
}

fn health_of(row: &Resource) -> Health {
    Health {
        resource: row.common.id,
        state: HealthState::from_word(&row.common.health_state),
        checked_at: row.common.last_health_check_at,
    }
}

/// Defines a resource object type: the shared `Resource` fields, then the kind's own.
macro_rules! resource_object {
    ($node:ident, $gql:literal, $variant:ident, $extra:ident => { $($fields:tt)* }) => {
        #[doc = concat!("A ", $gql, " resource.")]
        pub struct $node(pub Arc<Resource>);

        impl $node {
            fn extra(&self) -> Option<&crate::db::models::resource::$extra> {
                match &self.0.extra {
                    Extra::$variant(extra) => Some(extra),
                    _ => None,
                }
            }
        }

        #[Object(name = $gql)]
        impl $node {
            pub async fn id(&self) -> ID {
                ids::encode($gql, self.0.common.id)
            }
            pub async fn kind(&self) -> ResourceKind {
                self.0.kind().into()
            }
            pub async fn name(&self) -> &str {
                &self.0.common.name
            }
            pub async fn provider(&self) -> &str {
                &self.0.common.provider
            }
            /// The provider's own id for the resource.
            pub async fn provider_resource_id(&self) -> &str {
                &self.0.common.provider_resource_id
            }
            /// Normalized status.
            pub async fn status(&self) -> ResourceStatus {
                ResourceStatus::from_word(&self.0.common.status)
            }
            /// The provider's own word for the status.
            pub async fn provider_status(&self) -> Option<&str> {
                self.0.common.provider_status.as_deref()
            }
            pub async fn region(&self) -> Option<&str> {
                self.0.common.region.as_deref()
            }
            /// Latest health; `UNKNOWN` until first probed.
            pub async fn health(&self) -> Health {
                health_of(&self.0)
            }
            /// Recorded health checks, newest first.
            #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
            pub async fn health_history(
                &self,
                ctx: &Context<'_>,
                first: Option<i32>,
                after: Option<String>,
            ) -> async_graphql::Result<HealthCheckConnection> {
                history_of(ctx, &self.0, first, after).await
            }
            /// The provider connection the resource was synced from; `null` when the viewer may
            /// not see that dock.
            pub async fn dock(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DockNode>> {
                dock_of(ctx, &self.0).await
            }
            /// Live projects the resource is linked to, by slug.
            pub async fn projects(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProjectNode>> {
                projects_of(ctx, &self.0).await
            }
            /// The provider's full record, secrets stripped; `null` without resources FULL (org-wide,
            /// or through a team granted the resource's dock at `full`).
            pub async fn full_api_data(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
                api_data_of(ctx, &self.0).await
            }
            pub async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
                self.0.common.last_seen_at
            }
            pub async fn created_at(&self) -> DateTime<Utc> {
                self.0.common.created_at
            }
            pub async fn updated_at(&self) -> DateTime<Utc> {
                self.0.common.updated_at
            }
            $($fields)*
        }
    };
}

resource_object!(ServerNode, "Server", Server, ServerColumns => {
    async fn primary_ip_address(&self) -> Option<&str> {
        self.extra().and_then(|e| e.primary_ip_address.as_deref())
    }
    async fn ipv6(&self) -> Option<&str> {
        self.extra().and_then(|e| e.ipv6.as_deref())
    }
    async fn vcpus(&self) -> Option<i32> {
        self.extra().and_then(|e| e.vcpus)
    }
    async fn memory_mb(&self) -> Option<i32> {
        self.extra().and_then(|e| e.memory_mb)
    }
    async fn disk_gb(&self) -> Option<i32> {
        self.extra().and_then(|e| e.disk_gb)
    }
    async fn image(&self) -> Option<&str> {
        self.extra().and_then(|e| e.image.as_deref())
    }
});

resource_object!(WebServiceNode, "WebService", WebService, WebServiceColumns => {
    async fn production_url(&self) -> Option<&str> {
        self.extra().and_then(|e| e.production_url.as_deref())
    }
    async fn environment(&self) -> Option<&str> {
        self.extra().and_then(|e| e.environment.as_deref())
    }
    async fn framework(&self) -> Option<&str> {
        self.extra().and_then(|e| e.framework.as_deref())
    }
});

resource_object!(DomainNode, "Domain", Domain, DomainColumns => {
    async fn domain_name(&self) -> &str {
        self.extra().map_or("", |e| e.domain_name.as_str())
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.extra().and_then(|e| e.expires_at)
    }
    async fn auto_renew(&self) -> Option<bool> {
        self.extra().and_then(|e| e.auto_renew)
    }
});

resource_object!(DatabaseNode, "Database", Database, DatabaseColumns => {
    async fn engine(&self) -> Option<&str> {
        self.extra().and_then(|e| e.engine.as_deref())
    }
    async fn version(&self) -> Option<&str> {
        self.extra().and_then(|e| e.version.as_deref())
    }
    async fn host(&self) -> Option<&str> {
        self.extra().and_then(|e| e.host.as_deref())
    }
    async fn port(&self) -> Option<i32> {
        self.extra().and_then(|e| e.port)
    }
});

/// Loads resources by key in one batch (per kind), and primes what the selection `look` under
/// each of them asks for: docks, projects, provider data.
pub async fn load_and_prime(
    ctx: &Context<'_>,
    keys: Vec<ResourceKey>,
    looks: &[async_graphql::Lookahead<'_>],
) -> Result<std::collections::HashMap<ResourceKey, Arc<Resource>>, ApiError> {
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
