//! The WebSocket schema's per-operation set-up, as an async-graphql extension: operations over a
//! socket share one connection's data, so each needs its own [`operation::attach`] and
//! [`operation::finish`]. (HTTP calls those around `execute` instead: an extension slows every
//! field; see [`operation`].)

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
};
use async_graphql::{Request, Response, ServerResult};

use super::operation::{self, Limits, TraceStatements};
use crate::auth::Viewer;
use crate::db::{Pool, RequestDb};
use crate::graphql::mutations::ClientInfo;

/// The extension factory registered on the WebSocket schema.
pub struct PerOperation(pub Limits);

impl ExtensionFactory for PerOperation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerOperationExtension(self.0))
    }
}

struct PerOperationExtension(Limits);

#[async_trait::async_trait]
impl Extension for PerOperationExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        operation::check_limits(&mut request, &self.0)?;
        let from_request = request
            .data
            .get(&TypeId::of::<Viewer>())
            .and_then(|d| d.downcast_ref::<Viewer>());
        let viewer = from_request.or_else(|| ctx.data_opt::<Viewer>()).cloned();
        if let (Some(viewer), Some(pool)) = (viewer, ctx.data_opt::<Pool>()) {
            request = operation::attach(request, pool, &viewer).0;
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        let (Some(db), Some(pool), Some(viewer)) = (
            ctx.data_opt::<Arc<RequestDb>>(),
            ctx.data_opt::<Pool>(),
            ctx.data_opt::<Viewer>(),
        ) else {
            return response;
        };
        let trace = ctx.data_opt::<TraceStatements>().is_some();
        operation::finish(
            db,
            pool,
            viewer,
            ctx.data_opt::<ClientInfo>(),
            operation_name,
            trace,
            response,
        )
        .await
    }
}
