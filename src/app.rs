//! The application state shared by every handler, built once at start-up.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::db::{self, Pool};
use crate::graphql::{self, AppSchema};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub schema: AppSchema,
    pub jwt: Arc<JwtKeys>,
    pub metrics: PrometheusHandle,
    pub graphiql_page: Arc<String>,
}

impl AppState {
    /// Builds the pool (connections open lazily), the schema and the rendered GraphiQL page.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let pool = db::build_pool(&config.database_url, config.pool_size)?;
        let schema = graphql::build_schema(pool.clone(), config.limits);
        let jwt = Arc::new(JwtKeys::hs256(&config.jwt_secret));
        let page = crate::http::graphiql::render(
            config.graphiql_assets.is_some(),
            config.graphiql_headers.as_deref(),
        );
        Ok(Self {
            config: Arc::new(config),
            pool,
            schema,
            jwt,
            metrics: crate::metrics::install(),
            graphiql_page: Arc::new(page),
        })
    }
}
