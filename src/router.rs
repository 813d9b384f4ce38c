//! Every HTTP route, and where each request goes.
//!
//! - `POST /graphql`, `GET /graphql` → [`http::graphql`] (GET from a browser → GraphiQL page)
//! - `GET /graphql/ws` → [`http::ws`] (GraphQL over WebSocket)
//! - `GET /graphql/assets/*` → GraphiQL's local assets, when configured
//! - `GET /healthz`, `/readyz`, `/metrics` → [`http::health`]

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::http;

/// The whole application's router.
pub fn router(app: AppState) -> Router {
    let mut router = Router::new()
        .route(
            "/graphql",
            get(http::graphql::get).post(http::graphql::post),
        )
        .route("/graphql/ws", get(http::ws::upgrade))
        .route("/healthz", get(http::health::healthz))
        .route("/readyz", get(http::health::readyz))
        .route("/metrics", get(http::health::metrics));
    if let Some(dir) = &app.config.graphiql_assets {
        router = router.nest_service(http::graphiql::ASSETS_PATH, ServeDir::new(dir));
    }
    router
        .layer(DefaultBodyLimit::max(app.config.body_limit))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}
