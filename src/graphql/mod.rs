//! The GraphQL schema: where every query field starts.
//!
//! `Query` holds the roots; each type lives in [`types`]. The schema is built once at start-up
//! with the pool as data; the per-request [`crate::auth::Viewer`] is attached by the HTTP and
//! WebSocket handlers.

pub mod ids;
pub mod node;
pub mod types;

use async_graphql::{Context, EmptyMutation, EmptySubscription, ID, Object, Schema, SchemaBuilder};

use crate::auth::Viewer;
use crate::db::Pool;
use crate::error::ApiError;
use node::Node;
use types::viewer::ViewerNode;

/// The served schema type.
pub type AppSchema = Schema<Query, EmptyMutation, EmptySubscription>;

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

/// The authenticated viewer of this request.
pub fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, ApiError> {
    ctx.data::<Viewer>()
        .map_err(|_| ApiError::Unauthenticated("authentication required".into()))
}

/// The schema's shape without runtime data (enough for the SDL).
pub fn schema_builder() -> SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
}

/// The schema the server serves, with the pool as data.
pub fn build_schema(pool: Pool) -> AppSchema {
    schema_builder().data(pool).finish()
}

/// The SDL the server serves (what `schema.graphql` holds).
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
