//! The WebSocket schema's per-operation set-up, as an async-graphql extension: operations over a
//! socket share one connection's data, so each needs its own [`operation::attach`] and
//! [`operation::finish`]. (HTTP calls those around `execute` instead: an extension slows every
//! field; see [`operation`].)
//!
//! A subscription is one operation whose response is a stream: each event it delivers is
//! resolved like a request of its own. After each, the operation's transaction ends (an idle
//! subscription holds no connection) and its loaders forget what they loaded (the next event sees
//! fresh rows).

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextSubscribe,
};
use async_graphql::{Request, Response, ServerResult};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::loaders::{self, Loaders};
use super::operation::{self, Limits, TraceStatements};
use crate::auth::Viewer;
use crate::db::{Pool, RequestDb};
use crate::graphql::mutations::ClientInfo;

/// The extension factory registered on the WebSocket schema.
pub struct PerOperation(pub Limits);

impl ExtensionFactory for PerOperation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PerOperationExtension {
            limits: self.0,
            attached: Arc::default(),
        })
    }
}

/// An operation's database handle and loaders, once attached.
type Attached = Arc<std::sync::Mutex<Option<(Arc<RequestDb>, Arc<Loaders>)>>>;

/// One operation's extension (async-graphql makes one per operation).
struct PerOperationExtension {
    limits: Limits,
    attached: Attached,
}

#[async_trait::async_trait]
impl Extension for PerOperationExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        operation::check_limits(&mut request, &self.limits)?;
        let from_request = request
            .data
            .get(&TypeId::of::<Viewer>())
            .and_then(|d| d.downcast_ref::<Viewer>());
        let viewer = from_request.or_else(|| ctx.data_opt::<Viewer>()).cloned();
        if let (Some(viewer), Some(pool)) = (viewer, ctx.data_opt::<Pool>()) {
            let (attached, db, loaders) = operation::attach(request, pool, &viewer);
            request = attached;
            if let Ok(mut slot) = self.attached.lock() {
                *slot = Some((db, loaders));
            }
        }
        next.run(ctx, request).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let attached = self.attached.clone();
        next.run(ctx, stream)
            .then(move |response| {
                let attached = attached.lock().ok().and_then(|a| a.clone());
                async move {
                    if let Some((db, loaders)) = attached {
                        db.finish().await;
                        loaders::clear_all(&loaders);
                    }
                    response
                }
            })
            .boxed()
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
