//! The GraphQL schema: where every query field starts.
//!
//! `Query` holds the roots; each type lives in [`types`], mutations in [`mutations`], live events
//! in [`subscription`]. The schema is built once at start-up with the pool as data. Every
//! operation, from HTTP or WebSocket, runs through [`pipeline::Pipeline`], which authenticates its
//! caller and attaches the per-request [`crate::auth::Viewer`], transaction and loaders
//! ([`loaders::LoaderSlot`]). Resolvers read those through [`context`], and rows by key only
//! through the loaders. [`ids`], [`enums`] and [`connection`] are leaves every type uses.

pub mod connection;
pub mod context;
pub mod enums;
pub mod ids;
pub mod json;
pub mod loaders;
pub mod mutations;
pub mod node;
pub mod pipeline;
pub mod serial;
pub mod subscription;
pub mod types;

use async_graphql::{Context, ID, Object, Schema, SchemaBuilder};

use std::sync::Arc;

use crate::auth::cache::ViewerCache;
use crate::db::Pool;
use crate::events::EventBus;
use crate::sync::scheduler::Scheduler;
use mutations::Mutation;
use node::Node;
use pipeline::limits::Limits;
use subscription::Subscription;
use types::viewer::ViewerNode;

/// The served schema type.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The query roots.
pub struct Query;

/// Where every read starts: the caller (`viewer`), and objects by global id (`node`, `nodes`).
#[Object]
impl Query {
    /// The caller and their active organization (a caller who belongs to no organization yet
    /// may read only `user` and `invitations`).
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<ViewerNode> {
        let caller = context::caller(ctx)?;
        // Only the organization and the permissions are the same for viewers with the same
        // permissions; any other field (the user, their invitations and organizations, and any
        // field added later) is the viewer's own.
        let shared = ["organization", "permissions", "__typename"];
        if ctx
            .field()
            .selection_set()
            .any(|field| !shared.contains(&field.name()))
        {
            context::personal(ctx)?;
        }
        Ok(ViewerNode(caller.clone()))
    }

    /// Any object by its global id; `null` when it does not exist or is not visible.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global id, as any object's `id` field gives it.")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        let mut found = node::resolve_nodes(ctx, std::slice::from_ref(&id)).await?;
        Ok(found.pop().flatten())
    }

    /// Many objects by global id, in the order given, `null` for each that does not exist or is
    /// not visible (at most `STACKGATE_MAX_NODE_IDS` ids, 100 by default; each id counts toward
    /// the query's complexity as a field of its own).
    #[graphql(complexity = "ids.len().max(1) * child_complexity")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ids; the same id may appear more than once.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        let max = ctx.data_opt::<NodeIdLimit>().map_or(100, |l| l.0);
        if ids.len() > max {
            return Err(crate::error::ApiError::BadUserInput(format!(
                "`nodes` takes at most {max} ids; this call names {}",
                ids.len()
            ))
            .into());
        }
        Ok(node::resolve_nodes(ctx, &ids).await?)
    }
}

/// Query limits: nesting depth, complexity (list fields weigh their `first`), tokens, aliases.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    pub depth: usize,
    pub complexity: usize,
    pub parse: Limits,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            depth: 15,
            complexity: 50_000,
            parse: Limits::default(),
        }
    }
}

/// The schema's shape without runtime data (enough for the SDL). It installs no extension:
/// objects resolved in place (`serial`) answer their plain fields without the hooks one would add.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation::default(), Subscription)
}

/// The most ids `nodes(ids:)` takes (schema data).
#[derive(Clone, Copy, Debug)]
pub struct NodeIdLimit(pub usize);

/// What the schema carries for every request: the pool, the viewer cache, the event bus, and the
/// sync scheduler (when credential keys are configured).
#[derive(Clone)]
pub struct SchemaData {
    pub pool: Pool,
    pub viewers: Arc<ViewerCache>,
    pub events: EventBus,
    pub scheduler: Option<Scheduler>,
    pub notifier: Option<crate::notify::Notifier>,
    pub rates: Arc<crate::security::rate::RateLimits>,
    pub max_node_ids: usize,
    /// Sign-up settings (`createOrganization` reads its bound).
    pub onboarding: crate::security::settings::Onboarding,
}

/// The schema the server serves, with its data and the limits applied. Operations reach it only
/// through [`pipeline::Pipeline`].
pub fn build_schema(data: SchemaData, limits: QueryLimits) -> AppSchema {
    let mut builder = schema_builder()
        .data(data.pool)
        .data(data.viewers)
        .data(data.events)
        .data(data.rates)
        .data(NodeIdLimit(data.max_node_ids))
        .data(data.onboarding)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity);
    if let Some(scheduler) = data.scheduler {
        builder = builder.data(scheduler);
    }
    if let Some(notifier) = data.notifier {
        builder = builder.data(notifier);
    }
    builder.finish()
}

/// The SDL the server serves (what `schema.graphql` holds).
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
