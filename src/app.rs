//! The application state shared by every handler, built once at start-up.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::cache::ViewerCache;
use crate::auth::jwt::JwtKeys;
use crate::config::Config;
use crate::crypto::Keyring;
use crate::db::replicas::Replicas;
use crate::db::{self, Pool};
use crate::events::EventBus;
use crate::events::settings::Bus;
use crate::graphql::pipeline::cache::ResponseCache;
use crate::graphql::pipeline::documents::TrustedDocuments;
use crate::graphql::pipeline::{Parts, Pipeline};
use crate::graphql::{self};
use crate::notify::Notifier;
use crate::security::rate::RateLimits;
use crate::security::sockets::Sockets;
use crate::sync::Registry;
use crate::sync::engine::{Engine, EngineConfig};
use crate::sync::scheduler::{Scheduler, SchedulerConfig};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: Pool,
    /// Every operation, from either transport, runs through it.
    pub pipeline: Pipeline,
    /// This replica's WebSocket connections and their budgets.
    pub sockets: Arc<Sockets>,
    pub jwt: Arc<JwtKeys>,
    pub viewers: Arc<ViewerCache>,
    pub metrics: PrometheusHandle,
    /// Runs syncs; present when credential keys are configured.
    pub scheduler: Option<Scheduler>,
    /// Delivers alert notifications; present when credential keys are configured (channel
    /// secrets are stored encrypted).
    pub notifier: Option<Notifier>,
    /// This replica's LISTEN connection, fanned out to its subscribers.
    pub events: EventBus,
    /// The read replicas (`STACKGATE_READ_DATABASE_URLS`), checked in the background.
    pub replicas: Replicas,
}

impl AppState {
    /// Builds the pool (connections open lazily), the schema and the background parts.
    pub fn new(config: Config) -> anyhow::Result<Self> {
        let pool = db::build_pool_with_wait(
            &config.database_url,
            config.pool_size,
            config.security.pool_timeout,
        )?;
        let viewers = Arc::new(ViewerCache::new(std::time::Duration::from_secs(
            config.auth_cache_seconds,
        )));
        let keyring = match &config.encryption_keys {
            Some(keys) => {
                use secrecy::ExposeSecret;
                Some(Arc::new(Keyring::from_config(Some(keys.expose_secret()))?))
            }
            None => None,
        };
        let scheduler = keyring
            .as_ref()
            .map(|keyring| sync_scheduler(&pool, keyring.clone(), &config));
        let notifier = keyring.map(|keyring| {
            let settings = crate::notify::NotifierConfig {
                allow_private: config.security.allow_private_endpoints,
                timeout: config.security.outbound_timeout(),
                ..config.notify.clone()
            };
            Notifier::new(pool.clone(), keyring, settings)
        });
        let replicas = Replicas::start(&config.reads, config.pool_size, pool.clone())?;
        let events = match &config.events.bus {
            Bus::Postgres => {
                EventBus::start_with(config.database_url.clone(), !replicas.is_empty())
            }
            Bus::Nats(url) => crate::events::consume::start(url.clone(), !replicas.is_empty()),
        };
        crate::auth::cache::clear_on_access_events(&viewers, &events);
        let rates = Arc::new(RateLimits::new(&config.security.rates));
        rates.start_sweeping();
        let data = graphql::SchemaData {
            pool: pool.clone(),
            viewers: viewers.clone(),
            events: events.clone(),
            scheduler: scheduler.clone(),
            notifier: notifier.clone(),
            rates: rates.clone(),
            max_node_ids: config.security.max_node_ids,
            onboarding: config.security.onboarding,
        };
        let schema = graphql::build_schema(data, config.limits);
        let jwt = Arc::new(JwtKeys::new(
            config.jwt_secret.as_ref(),
            config.jwt_public_key.as_deref(),
            &config.security.jwt,
        )?);
        let documents = Arc::new(TrustedDocuments::load(&config.security.documents)?);
        let cache = ResponseCache::new(
            config.security.response_cache_bytes,
            config.security.response_cache_age,
        );
        cache.follow(events.subscribe());
        let pipeline = Pipeline::new(Parts {
            schema,
            pool: pool.clone(),
            jwt: jwt.clone(),
            viewers: viewers.clone(),
            limits: config.limits,
            rates,
            documents,
            events: events.clone(),
            live_interval: config.security.live_interval,
            cache,
            provision_users: config.security.onboarding.auto_provision_users,
            replicas: replicas.clone(),
        });
        let sockets = Arc::new(Sockets::new(config.security.sockets));
        let metrics = crate::metrics::install(&config.replica_id);
        Ok(Self {
            config: Arc::new(config),
            pool,
            pipeline,
            sockets,
            scheduler,
            notifier,
            events,
            replicas,
            jwt,
            viewers,
            metrics,
        })
    }
}

/// The sync engine and scheduler over the configured credential keys, behind the outbound
/// guard's settings, with the configured lease and claim interval.
fn sync_scheduler(pool: &crate::db::Pool, keyring: Arc<Keyring>, config: &Config) -> Scheduler {
    let security = &config.security;
    let engine = Engine::new(
        pool.clone(),
        keyring,
        Registry::default(),
        EngineConfig {
            allow_private_endpoints: security.allow_private_endpoints,
            verify_deadline: security.outbound_timeout(),
            ..EngineConfig::default()
        },
    );
    Scheduler::new(engine, SchedulerConfig::with_timing(config.sync))
}
