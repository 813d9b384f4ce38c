//! Running the HTTP server: bind, serve, and shut down gracefully.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::config::Config;

/// Database connections of the health monitor (a probe holds one only while recording it).
const MONITOR_POOL_SIZE: usize = 4;
/// Database connections of the notification worker (a delivery holds one only to read or record).
const NOTIFIER_POOL_SIZE: usize = 2;

/// A server running in the background until [`RunningServer::shutdown`].
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    scheduler: Option<crate::sync::scheduler::SchedulerHandle>,
    health: Option<crate::health::MonitorHandle>,
    notifications: Option<crate::notify::NotifierHandle>,
    relay: Option<crate::events::RelayHandle>,
}

/// Binds `config.listen` (port 0 picks a free one) and serves in a background task.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let listen = config.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen}: {e} (set STACKGATE_LISTEN or --listen)")
    })?;
    let addr = listener.local_addr()?;
    let run_scheduler = config.run_scheduler;
    let run_health = config.run_health;
    let run_notifications = config.run_notifications;
    let state = AppState::new(config)?;
    // Subscribers must not miss what happens right after start-up (tests rely on it too).
    if !state
        .events
        .wait_connected(std::time::Duration::from_secs(10))
        .await
    {
        tracing::warn!("the event listener is not connected yet; subscriptions start when it is");
    }
    // The outbox relay: every replica runs one, the lease holder publishes.
    let relay = crate::events::Relay::new(
        state.config.database_url.clone(),
        state.config.events.clone(),
    )
    .spawn();
    let (stop, stopped) = oneshot::channel::<()>();
    let app = crate::router::router(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    let scheduler = run_scheduler
        .then(|| state.scheduler.clone())
        .flatten()
        .map(|s| s.spawn());
    let health = match run_health {
        true => Some(spawn_monitor(&state)?),
        false => None,
    };
    let notifications = match (run_notifications, &state.notifier) {
        (true, Some(notifier)) => {
            let pool = crate::db::build_pool(&state.config.database_url, NOTIFIER_POOL_SIZE)?;
            Some(notifier.with_pool(pool).spawn())
        }
        _ => None,
    };
    Ok(RunningServer {
        addr,
        state,
        stop: Some(stop),
        task,
        scheduler,
        health,
        notifications,
        relay: Some(relay),
    })
}

/// Starts probing resources' health in the background (`docs/health.md`), on a small pool of its
/// own so that a burst of probe results never queues GraphQL requests behind it.
fn spawn_monitor(state: &AppState) -> anyhow::Result<crate::health::MonitorHandle> {
    let pool = crate::db::build_pool(&state.config.database_url, MONITOR_POOL_SIZE)?;
    let monitor = crate::health::Monitor::new(pool, state.config.health.clone())
        .map_err(|e| anyhow::anyhow!("cannot build the health probes' HTTP client: {e}"))?;
    Ok(monitor.spawn())
}

impl RunningServer {
    /// This replica's outbox relay (`None` once shut down).
    pub fn relay(&self) -> Option<&crate::events::RelayHandle> {
        self.relay.as_ref()
    }

    /// Stops this replica's outbox relay at once without giving up its lease, as a crash would
    /// (fault tests): another replica's relay takes over when the lease expires.
    pub fn kill_relay(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.stop();
        }
        if let Some(health) = self.health.take() {
            health.stop();
        }
        if let Some(notifications) = self.notifications.take() {
            notifications.stop();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(relay) = self.relay.take() {
            relay.stop().await;
        }
        (&mut self.task).await??;
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminate = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
