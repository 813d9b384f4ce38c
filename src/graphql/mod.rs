//! The GraphQL schema: where every query field starts.
//!
//! `Query` holds the roots; each type lives in [`types`]. The schema is built once at start-up
//! with the pool as data; the per-request [`crate::auth::Viewer`] is attached by the HTTP and
//! WebSocket handlers.

pub mod connection;
pub mod context;
pub mod enums;
pub mod extension;
pub mod ids;
pub mod loaders;
pub mod mutations;
pub mod node;
pub mod operation;
pub mod subscription;
pub mod types;

use async_graphql::{Context, ID, Object, Schema, SchemaBuilder};

use std::sync::Arc;

use crate::auth::cache::ViewerCache;
use crate::db::Pool;
use crate::events::EventBus;
use crate::sync::scheduler::Scheduler;
use context::viewer;
use extension::PerOperation;
use mutations::Mutation;
use node::Node;
use operation::Limits;
use subscription::Subscription;
use types::viewer::ViewerNode;

/// The served schema type.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The query roots.
pub struct Query;

#[Object]
impl Query {
    /// The caller and their active organization.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<ViewerNode> {
        Ok(ViewerNode(viewer(ctx)?.clone()))
    }

    /// Any object by its global id; `null` when it does not exist or is not visible.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Node>> {
        let mut found = node::resolve_nodes(ctx, std::slice::from_ref(&id)).await?;
        Ok(found.pop().flatten())
    }

    /// Many objects by global id, in the order given.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
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

/// The schema's shape without runtime data (enough for the SDL).
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(Query, Mutation::default(), Subscription)
}

/// Which transport a schema instance serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP: the handler sets each operation up around `execute` (no extension: fast fields).
    Http,
    /// WebSocket: operations share a connection, so an extension sets each one up.
    WebSocket,
}

/// What the schema carries for every request: the pool, the viewer cache, the event bus, and the
/// sync scheduler (when credential keys are configured).
#[derive(Clone)]
pub struct SchemaData {
    pub pool: Pool,
    pub viewers: Arc<ViewerCache>,
    pub events: EventBus,
    pub scheduler: Option<Scheduler>,
}

/// The schema the server serves, with its data and the limits applied.
pub fn build_schema(data: SchemaData, limits: QueryLimits, transport: Transport) -> AppSchema {
    let mut builder = schema_builder()
        .data(data.pool)
        .data(data.viewers)
        .data(data.events)
        .limit_depth(limits.depth)
        .limit_complexity(limits.complexity);
    if let Some(scheduler) = data.scheduler {
        builder = builder.data(scheduler);
    }
    match transport {
        Transport::Http => builder.finish(),
        Transport::WebSocket => builder.extension(PerOperation(limits.parse)).finish(),
    }
}

/// The SDL the server serves (what `schema.graphql` holds).
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
