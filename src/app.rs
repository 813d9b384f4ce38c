//! The application state shared by every handler, built once at start-up.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::cache::ViewerCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::{Authenticator, Viewer};
use crate::config::Config;
use crate::crypto::Keyring;
use crate::db::{self, Pool};
use crate::error::ApiError;
use crate::events::EventBus;
use crate::graphql::{self, AppSchema, Transport};
use crate::sync::Registry;
use crate::sync::engine::{Engine, EngineConfig};
use crate::sync::scheduler::{Scheduler, SchedulerConfig};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: Pool,
    /// The schema for HTTP operations (set up around `execute` by the handler).
    pub schema: AppSchema,
    /// The same schema for WebSocket operations (set up by an extension).
    pub ws_schema: AppSchema,
    pub jwt: Arc<JwtKeys>,
    pub viewers: Arc<ViewerCache>,
    pub metrics: PrometheusHandle,
    pub graphiql_page: Arc<String>,
    /// Runs syncs; present when credential keys are configured.
    pub scheduler: Option<Scheduler>,
    /// This replica's LISTEN connection, fanned out to its subscribers.
    pub events: EventBus,
}

impl AppState {
    /// Builds the pool (connections open lazily), the schema and the rendered GraphiQL page.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let pool = db::build_pool(&config.database_url, config.pool_size)?;
        let viewers = Arc::new(ViewerCache::new(std::time::Duration::from_secs(
            config.auth_cache_seconds,
        )));
        let scheduler = match &config.encryption_keys {
            Some(keys) => Some(sync_scheduler(&pool, keys)?),
            None => None,
        };
        let events = EventBus::start(config.database_url.clone());
        let data = graphql::SchemaData {
            pool: pool.clone(),
            viewers: viewers.clone(),
            events: events.clone(),
            scheduler: scheduler.clone(),
        };
        let schema = graphql::build_schema(data.clone(), config.limits, Transport::Http);
        let ws_schema = graphql::build_schema(data, config.limits, Transport::WebSocket);
        let jwt = Arc::new(JwtKeys::new(
            config.jwt_secret.as_ref(),
            config.jwt_public_key.as_deref(),
            &config.security.jwt,
        )?);
        let page = crate::http::graphiql::render(
            config.graphiql_assets.is_some(),
            config.graphiql_headers.as_deref(),
        );
        Ok(Self {
            config: Arc::new(config),
            pool,
            schema,
            ws_schema,
            scheduler,
            events,
            jwt,
            viewers,
            metrics: crate::metrics::install(),
            graphiql_page: Arc::new(page),
        })
    }
}

/// The sync engine and scheduler over the configured credential keys.
fn sync_scheduler(
    pool: &crate::db::Pool,
    keys: &secrecy::SecretString,
) -> anyhow::Result<Scheduler> {
    use secrecy::ExposeSecret;
    let keyring = Arc::new(Keyring::from_config(Some(keys.expose_secret()))?);
    let engine = Engine::new(
        pool.clone(),
        keyring,
        Registry::default(),
        EngineConfig::default(),
    );
    Ok(Scheduler::new(engine, SchedulerConfig::default()))
}

impl AppState {
    /// Authenticates an `Authorization` value (and `X-Org`) with this server's keys and cache.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        x_org: Option<&str>,
    ) -> Result<Viewer, ApiError> {
        let auth = Authenticator {
            pool: &self.pool,
            keys: &self.jwt,
            cache: &self.viewers,
        };
        crate::auth::authenticate(&auth, authorization, x_org).await
    }
}
