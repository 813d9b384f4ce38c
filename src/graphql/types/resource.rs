//! The `Resource` interface and its kinds: `Server`, `WebService`, `Domain`, `Database`.
//!
//! The four object types share every `Resource` field through one macro; each adds its kind's own.

pub mod load;

use std::sync::Arc;

use async_graphql::resolver_utils::enum_value;
use async_graphql::{Context, ID, Interface, Json, Object, ScalarType, SimpleObject, Value};
use chrono::{DateTime, Utc};
use futures_util::FutureExt;

use super::action::load::{ActionRunNode, runs_of};
use super::dock::load::{DockId, DockNode};
use super::project::load::{self as project_load, ProjectNode};
use crate::db::models::health::CheckRow;
use crate::db::models::resource::{Extra, Kind, Resource};
use crate::error::ApiError;
use crate::graphql::connection::{Window, connection, paginate};
use crate::graphql::context::{load_one, visibility};
use crate::graphql::enums::{HealthState, ResourceAction, ResourceKind, ResourceStatus};
use crate::graphql::ids;
use crate::graphql::serial::{self, Plain};
use load::{ApiDataKey, HealthHistoryKey, ProjectsOfKey};

/// A resource's latest health.
pub struct Health {
    resource: uuid::Uuid,
    state: HealthState,
    checked_at: Option<DateTime<Utc>>,
}

/// A resource's health as the monitor last confirmed it, and its latest probe.
#[Object(serial)]
impl Health {
    /// The confirmed state (it changes only once consecutive probes agree); `UNKNOWN` until the
    /// resource is first probed.
    async fn state(&self) -> HealthState {
        self.state
    }
    /// When the resource was last probed; `null` until it is.
    async fn checked_at(&self) -> Option<DateTime<Utc>> {
        self.checked_at
    }
    /// Latency of the latest check, in milliseconds; `null` when it measured none (a timeout, a
    /// failed lookup) or there is no check yet.
    async fn latency_ms(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<i32>> {
        Ok(latest_check(ctx, self.resource)
            .await?
            .and_then(|c| c.latency_ms))
    }
    /// What the latest check said (an error, a status code...); `null` when it said nothing.
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

impl Plain for Health {
    fn plain(&self, ctx: &Context<'_>) -> Option<Value> {
        Some(match ctx.item.node.name.node.as_str() {
            "state" => enum_value(self.state),
            "checkedAt" => time(self.checked_at),
            _ => return None,
        })
    }
}

/// A timestamp as its scalar serves it; `null` when there is none.
fn time(at: Option<DateTime<Utc>>) -> Value {
    at.as_ref().map_or(Value::Null, ScalarType::to_value)
}

/// One recorded health check: what a single probe observed.
#[derive(SimpleObject, Clone, Debug)]
pub struct HealthCheck {
    /// What this probe observed (before any confirmation over consecutive probes).
    pub state: HealthState,
    /// When the probe ran.
    pub checked_at: DateTime<Utc>,
    /// How long the probe took, in milliseconds; `null` when it measured none.
    pub latency_ms: Option<i32>,
    /// What the probe said (an error, a status code...); `null` when it said nothing.
    pub message: Option<String>,
}

connection!(
    HealthCheckConnection,
    HealthCheckEdge,
    HealthCheck,
    "HealthCheck"
);

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

/// Any synced resource: something a dock's provider account holds (a server, a web service, a
/// domain, a database), listed by syncs and probed by the health monitor.
#[expect(
    clippy::duplicated_attributes,
    reason = "each `field(...)` of the derive repeats `ty`"
)]
#[derive(Interface)]
#[graphql(
    name = "Resource",
    field(name = "id", ty = "ID", desc = "The resource's global id."),
    field(
        name = "kind",
        ty = "ResourceKind",
        desc = "Which kind of resource (and object type) this is."
    ),
    field(name = "name", ty = "&str", desc = "The name the provider gives it."),
    field(
        name = "provider",
        ty = "&str",
        desc = "The provider of its dock: `cloudflare`, `digitalocean`, `gridpane`, `linode` or `vercel`."
    ),
    field(
        name = "provider_resource_id",
        ty = "&str",
        desc = "The provider's own id for the resource."
    ),
    field(name = "status", ty = "ResourceStatus", desc = "Normalized status."),
    field(
        name = "provider_status",
        ty = "Option<&str>",
        desc = "The provider's own word for the status; `null` when it gives none."
    ),
    field(
        name = "region",
        ty = "Option<&str>",
        desc = "The provider's region slug; `null` when the resource has none."
    ),
    field(
        name = "tags",
        ty = "&[String]",
        desc = "Tags people gave it with `setResourceTags`, sorted; sync never changes them."
    ),
    field(
        name = "available_actions",
        ty = "Vec<ResourceAction>",
        desc = "What the viewer may ask its provider to do to it with `performResourceAction`: the actions its provider supports for its kind, or none without resources FULL on its dock."
    ),
    field(
        name = "action_runs",
        ty = "Vec<ActionRunNode>",
        desc = "Provider actions asked for on it, newest first.",
        arg(
            name = "first",
            ty = "Option<i32>",
            desc = "How many runs (default 20, at most 100)."
        )
    ),
    field(
        name = "health",
        ty = "Health",
        desc = "Latest health; `UNKNOWN` until first probed."
    ),
    field(
        name = "health_history",
        ty = "HealthCheckConnection",
        desc = "Recorded health checks, newest first.",
        arg(
            name = "first",
            ty = "Option<i32>",
            desc = "How many checks (default 50, at most 500)."
        ),
        arg(
            name = "after",
            ty = "Option<String>",
            desc = "A cursor of this list: the checks after it."
        )
    ),
    field(
        name = "dock",
        ty = "Option<serial::Serial<DockNode>>",
        desc = "The dock the resource was synced from; `null` when the viewer may not see that dock."
    ),
    field(
        name = "projects",
        ty = "Vec<ProjectNode>",
        desc = "Live projects the resource is linked to (those the viewer may see), by slug."
    ),
    field(
        name = "full_api_data",
        ty = "Option<Json<serde_json::Value>>",
        desc = "The provider's full record, secrets stripped; `null` without resources FULL."
    ),
    field(
        name = "last_seen_at",
        ty = "Option<DateTime<Utc>>",
        desc = "When a sync last wrote the provider's record of it (an unchanged listing leaves this as it was)."
    ),
    field(
        name = "created_at",
        ty = "DateTime<Utc>",
        desc = "When the resource was first recorded here."
    ),
    field(
        name = "updated_at",
        ty = "DateTime<Utc>",
        desc = "When the resource's record here last changed."
    )
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

/// The resource's dock, when the viewer may see it (a client-portal user sees linked resources,
/// not the docks they came from).
async fn dock_of(ctx: &Context<'_>, row: &Resource) -> async_graphql::Result<Option<DockNode>> {
    Ok(load_one(ctx, DockId(row.common.dock_id))
        .await?
        .map(DockNode))
}

/// [`dock_of`], answered in place when the dock's loader holds it already (a list of resources
/// primes the docks of its rows: `load::load_and_prime`); `None` when it is not loaded yet (the
/// field's resolver then waits for it) or selects a field that is not plain. A cached load is
/// ready at its first poll: nothing waits here.
fn dock_now(ctx: &Context<'_>, row: &Resource) -> Option<Value> {
    match dock_of(ctx, row).now_or_never()?.ok()? {
        Some(dock) => serial::now(ctx, &dock),
        None => Some(Value::Null),
    }
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
    project_load::prime(ctx, &nodes, &ctx.look_ahead()).await?;
    Ok(nodes)
}

async fn api_data_of(
    ctx: &Context<'_>,
    row: &Resource,
) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
    if !visibility(ctx)?.sees_api_data(row.common.dock_id) {
        return Ok(None);
    }
    let data = load_one(ctx, ApiDataKey(row.kind(), row.common.id)).await?;
    Ok(data.and_then(|d| d.as_ref().clone()).map(Json))
}

fn actions_of(ctx: &Context<'_>, row: &Resource) -> async_graphql::Result<Vec<ResourceAction>> {
    if !visibility(ctx)?.sees_api_data(row.common.dock_id) {
        return Ok(Vec::new());
    }
    let supported = crate::sync::supported_actions(&row.common.provider, row.kind());
    Ok(supported.iter().map(|&a| a.into()).collect())
}

fn health_of(row: &Resource) -> Health {
    Health {
        resource: row.common.id,
        state: HealthState::from_word(&row.common.health_state),
        checked_at: row.common.last_health_check_at,
    }
}

/// The plain fields every resource kind shares (`crate::graphql::serial`), as their resolvers
/// in `resource_object!` answer them.
fn common_plain(row: &Resource, type_name: &str, ctx: &Context<'_>) -> Option<Value> {
    let common = &row.common;
    Some(match ctx.item.node.name.node.as_str() {
        "id" => Value::String(ids::encode(type_name, common.id).0),
        "kind" => enum_value(ResourceKind::from(row.kind())),
        "name" => common.name.as_str().into(),
        "provider" => common.provider.as_str().into(),
        "providerResourceId" => common.provider_resource_id.as_str().into(),
        "status" => enum_value(ResourceStatus::from_word(&common.status)),
        "providerStatus" => common.provider_status.as_deref().into(),
        "region" => common.region.as_deref().into(),
        "tags" => common.tags.as_slice().into(),
        "health" => return serial::now(ctx, &health_of(row)),
        "dock" => return dock_now(ctx, row),
        "lastSeenAt" => time(common.last_seen_at),
        "createdAt" => time(Some(common.created_at)),
        "updatedAt" => time(Some(common.updated_at)),
        _ => return None,
    })
}

/// Defines a resource object type: the shared `Resource` fields, then the kind's own.
macro_rules! resource_object {
    ($node:ident, $gql:literal, $variant:ident, $extra:ident, $desc:literal => { $($fields:tt)* }) => {
        #[doc = concat!("A loaded resource row, served as the `", $gql, "` object type.")]
        pub struct $node(pub Arc<Resource>);

        impl $node {
            fn extra(&self) -> Option<&crate::db::models::resource::$extra> {
                match &self.0.extra {
                    Extra::$variant(extra) => Some(extra),
                    _ => None,
                }
            }
        }

        impl Plain for $node {
            fn plain(&self, ctx: &Context<'_>) -> Option<Value> {
                common_plain(&self.0, $gql, ctx).or_else(|| self.plain_extra(ctx))
            }
        }

        #[doc = $desc]
        #[Object(name = $gql)]
        impl $node {
            /// The resource's global id.
            pub async fn id(&self) -> ID {
                ids::encode($gql, self.0.common.id)
            }
            /// Which kind of resource this is.
            pub async fn kind(&self) -> ResourceKind {
                self.0.kind().into()
            }
            /// The name the provider gives it.
            pub async fn name(&self) -> &str {
                &self.0.common.name
            }
            /// The provider of its dock: `cloudflare`, `digitalocean`, `gridpane`, `linode` or `vercel`.
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
            /// The provider's own word for the status; `null` when it gives none.
            pub async fn provider_status(&self) -> Option<&str> {
                self.0.common.provider_status.as_deref()
            }
            /// The provider's region slug; `null` when the resource has none.
            pub async fn region(&self) -> Option<&str> {
                self.0.common.region.as_deref()
            }
            /// Tags people gave it with `setResourceTags`, sorted; sync never changes them.
            pub async fn tags(&self) -> &[String] {
                &self.0.common.tags
            }
            /// What the viewer may ask its provider to do to it with `performResourceAction`:
            /// the actions its provider supports for its kind, or none without resources FULL
            /// on its dock.
            pub async fn available_actions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ResourceAction>> {
                actions_of(ctx, &self.0)
            }
            /// Provider actions asked for on it, newest first.
            #[graphql(complexity = "first.unwrap_or(20).clamp(0, 100) as usize * child_complexity")]
            pub async fn action_runs(
                &self,
                ctx: &Context<'_>,
                #[graphql(desc = "How many runs (default 20, at most 100).")] first: Option<i32>,
            ) -> async_graphql::Result<Vec<ActionRunNode>> {
                // Boxed, like every field here that waits on the database: the object's field
                // futures are as large as its largest (`crate::graphql::serial`).
                Box::pin(runs_of(ctx, self.0.common.id, first)).await
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
                #[graphql(desc = "How many checks (default 50, at most 500).")] first: Option<i32>,
                #[graphql(desc = "A cursor of this list: the checks after it.")] after: Option<String>,
            ) -> async_graphql::Result<HealthCheckConnection> {
                Box::pin(history_of(ctx, &self.0, first, after)).await
            }
            /// The provider connection the resource was synced from; `null` when the viewer may
            /// not see that dock.
            pub async fn dock(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<serial::Serial<DockNode>>> {
                Ok(Box::pin(dock_of(ctx, &self.0)).await?.map(serial::Serial))
            }
            /// Live projects the resource is linked to (those the viewer may see), by slug.
            pub async fn projects(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ProjectNode>> {
                Box::pin(projects_of(ctx, &self.0)).await
            }
            /// The provider's full record, secrets stripped; `null` without resources FULL (org-wide,
            /// or through a team granted the resource's dock at `full`).
            pub async fn full_api_data(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Json<serde_json::Value>>> {
                Box::pin(api_data_of(ctx, &self.0)).await
            }
            /// When a sync last wrote the provider's record of it (an unchanged listing leaves this
            /// as it was).
            pub async fn last_seen_at(&self) -> Option<DateTime<Utc>> {
                self.0.common.last_seen_at
            }
            /// When the resource was first recorded here.
            pub async fn created_at(&self) -> DateTime<Utc> {
                self.0.common.created_at
            }
            /// When the resource's record here last changed.
            pub async fn updated_at(&self) -> DateTime<Utc> {
                self.0.common.updated_at
            }
            $($fields)*
        }
    };
}

resource_object!(ServerNode, "Server", Server, ServerColumns, "A virtual machine (a droplet, a linode). Probed by a TCP connect to its address." => {
    /// Its public IPv4 address; `null` when it has none (yet).
    async fn primary_ip_address(&self) -> Option<&str> {
        self.extra().and_then(|e| e.primary_ip_address.as_deref())
    }
    /// Its public IPv6 address; `null` when it has none.
    async fn ipv6(&self) -> Option<&str> {
        self.extra().and_then(|e| e.ipv6.as_deref())
    }
    /// Virtual CPUs; `null` when the provider does not say.
    async fn vcpus(&self) -> Option<i32> {
        self.extra().and_then(|e| e.vcpus)
    }
    /// Memory, in MiB; `null` when the provider does not say.
    async fn memory_mb(&self) -> Option<i32> {
        self.extra().and_then(|e| e.memory_mb)
    }
    /// Disk size, in GB; `null` when the provider does not say.
    async fn disk_gb(&self) -> Option<i32> {
        self.extra().and_then(|e| e.disk_gb)
    }
    /// The image (operating system) it was built from; `null` when the provider does not say.
    async fn image(&self) -> Option<&str> {
        self.extra().and_then(|e| e.image.as_deref())
    }
});

resource_object!(WebServiceNode, "WebService", WebService, WebServiceColumns, "A hosted application or site (a DigitalOcean app, a Vercel project). Probed by an HTTP GET of its `productionUrl`." => {
    /// The URL it serves production at; `null` when it has none (then it is not probed).
    async fn production_url(&self) -> Option<&str> {
        self.extra().and_then(|e| e.production_url.as_deref())
    }
    /// The provider's name for the deployment environment; `null` when it gives none.
    async fn environment(&self) -> Option<&str> {
        self.extra().and_then(|e| e.environment.as_deref())
    }
    /// The framework the provider detected; `null` when it names none.
    async fn framework(&self) -> Option<&str> {
        self.extra().and_then(|e| e.framework.as_deref())
    }
});

resource_object!(DomainNode, "Domain", Domain, DomainColumns, "A registered domain name. Probed by resolving it and by its expiry date." => {
    /// The domain name itself, e.g. `example.com`.
    async fn domain_name(&self) -> &str {
        self.extra().map_or("", |e| e.domain_name.as_str())
    }
    /// When the registration lapses; `null` when the provider does not say.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.extra().and_then(|e| e.expires_at)
    }
    /// Whether the registration renews itself; `null` when the provider does not say.
    async fn auto_renew(&self) -> Option<bool> {
        self.extra().and_then(|e| e.auto_renew)
    }
});

resource_object!(DatabaseNode, "Database", Database, DatabaseColumns, "A managed database cluster. Probed by a TCP connect to its host and port." => {
    /// The engine, e.g. `pg`, `mysql`, `redis`; `null` when the provider does not say.
    async fn engine(&self) -> Option<&str> {
        self.extra().and_then(|e| e.engine.as_deref())
    }
    /// The engine's version; `null` when the provider does not say.
    async fn version(&self) -> Option<&str> {
        self.extra().and_then(|e| e.version.as_deref())
    }
    /// The host it accepts connections at; `null` when the provider does not say.
    async fn host(&self) -> Option<&str> {
        self.extra().and_then(|e| e.host.as_deref())
    }
    /// The port it accepts connections at; `null` when the provider does not say (the
    /// engine's usual port is probed).
    async fn port(&self) -> Option<i32> {
        self.extra().and_then(|e| e.port)
    }
});

/// Each kind's own plain fields, as their resolvers above answer them.
impl ServerNode {
    fn plain_extra(&self, ctx: &Context<'_>) -> Option<Value> {
        let e = self.extra();
        Some(match ctx.item.node.name.node.as_str() {
            "primaryIpAddress" => e.and_then(|e| e.primary_ip_address.as_deref()).into(),
            "ipv6" => e.and_then(|e| e.ipv6.as_deref()).into(),
            "vcpus" => e.and_then(|e| e.vcpus).into(),
            "memoryMb" => e.and_then(|e| e.memory_mb).into(),
            "diskGb" => e.and_then(|e| e.disk_gb).into(),
            "image" => e.and_then(|e| e.image.as_deref()).into(),
            _ => return None,
        })
    }
}

impl WebServiceNode {
    fn plain_extra(&self, ctx: &Context<'_>) -> Option<Value> {
        let e = self.extra();
        Some(match ctx.item.node.name.node.as_str() {
            "productionUrl" => e.and_then(|e| e.production_url.as_deref()).into(),
            "environment" => e.and_then(|e| e.environment.as_deref()).into(),
            "framework" => e.and_then(|e| e.framework.as_deref()).into(),
            _ => return None,
        })
    }
}

impl DomainNode {
    fn plain_extra(&self, ctx: &Context<'_>) -> Option<Value> {
        let e = self.extra();
        Some(match ctx.item.node.name.node.as_str() {
            "domainName" => e.map_or("", |e| e.domain_name.as_str()).into(),
            "expiresAt" => time(e.and_then(|e| e.expires_at)),
            "autoRenew" => e.and_then(|e| e.auto_renew).into(),
            _ => return None,
        })
    }
}

impl DatabaseNode {
    fn plain_extra(&self, ctx: &Context<'_>) -> Option<Value> {
        let e = self.extra();
        Some(match ctx.item.node.name.node.as_str() {
            "engine" => e.and_then(|e| e.engine.as_deref()).into(),
            "version" => e.and_then(|e| e.version.as_deref()).into(),
            "host" => e.and_then(|e| e.host.as_deref()).into(),
            "port" => e.and_then(|e| e.port).into(),
            _ => return None,
        })
    }
}

/// The interface resolves its concrete object in place: its own resolver answers only the
/// interface's fields, not a fragment's on the kind.
impl Plain for ResourceInterface {
    fn plain(&self, _ctx: &Context<'_>) -> Option<Value> {
        None
    }

    async fn in_place<'a>(
        &'a self,
        ctx: &'a async_graphql::ContextSelectionSet<'a>,
    ) -> async_graphql::ServerResult<Value> {
        match self {
            Self::Server(node) => serial::in_place(ctx, node).await,
            Self::WebService(node) => serial::in_place(ctx, node).await,
            Self::Domain(node) => serial::in_place(ctx, node).await,
            Self::Database(node) => serial::in_place(ctx, node).await,
        }
    }
}
