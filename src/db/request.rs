//! A request's reads: one transaction, begun on first use, in the viewer's [`Scope`].
//!
//! Every loader of a GraphQL operation runs its statements here, one after another, so a request
//! costs one `BEGIN`, one `set_config` and one `COMMIT` however many batches it loads. The
//! transaction is begun through diesel's transaction manager: if the request is dropped midway,
//! the pool sees an open transaction on return and discards the connection, so no tenant setting
//! ever outlives its request. Statements are counted for `stackgate_sql_statements_per_request`.
//!
//! With read replicas configured the transaction may be begun on one ([`Route`]): until the
//! request writes. A mutation calls [`RequestDb::write`] before taking its own connection, and
//! every read after it, in the same request, runs on the primary.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, TransactionManager,
};
use tokio::sync::Mutex;

use super::models::visibility::Visibility;
use super::replicas::{Lsn, Replicas, Watermark};
use super::tenancy::TxBody;
use super::{DbError, Pool, Scope};
use crate::telemetry::sql::SqlSpans;

/// Where a request's reads may go: a replica that has replayed both positions, else the primary.
#[derive(Clone, Default)]
pub struct Route {
    pub replicas: Replicas,
    /// The newest write the caller was told of (`X-Stackgate-Lsn`, or its socket's last).
    pub caller: Watermark,
    /// The newest commit whose event this server received: what was read after an event
    /// reflects it (live re-runs, cache fills, subscription events).
    pub events: Watermark,
}

impl Route {
    /// The position a read must see.
    pub fn floor(&self) -> Option<Lsn> {
        self.caller.get().max(self.events.get())
    }
}

/// The per-request database handle.
pub struct RequestDb {
    pool: Pool,
    route: Route,
    scope: Scope,
    visibility: std::sync::RwLock<Arc<Visibility>>,
    conn: Mutex<Option<Object<AsyncPgConnection>>>,
    statements: Arc<AtomicUsize>,
    /// The request wrote: what it reads from now on comes from the primary.
    wrote: AtomicBool,
}

impl RequestDb {
    pub fn new(pool: Pool, scope: Scope, visibility: Visibility) -> Self {
        Self {
            pool,
            route: Route::default(),
            scope,
            visibility: std::sync::RwLock::new(Arc::new(visibility)),
            conn: Mutex::new(None),
            statements: Arc::default(),
            wrote: AtomicBool::new(false),
        }
    }

    /// Lets the request's reads go to replicas along `route`.
    pub fn routed(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// What the viewer may read: the rule every loader and field guard of the operation asks.
    pub fn visibility(&self) -> Arc<Visibility> {
        match self.visibility.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces what the viewer may read, for what the operation loads from now on: a
    /// subscription follows its caller's renewed teams and grants, so each event's nested
    /// objects meet the same rule as the event filter.
    pub fn follow(&self, visibility: Visibility) {
        match self.visibility.write() {
            Ok(mut current) => *current = Arc::new(visibility),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(visibility),
        }
    }

    /// The scope this request's statements run in.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Runs `body` inside the request's transaction, beginning it if needed.
    pub async fn run<R, F>(&self, body: F) -> Result<R, DbError>
    where
        for<'r> F: TxBody<&'r mut AsyncPgConnection, Result<R, DbError>, Fut: Send> + Send,
        R: Send,
    {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            *guard = Some(self.begin().await?);
        }
        let conn = guard
            .as_mut()
            .ok_or(DbError::Migration("request connection vanished".into()))?;
        body(conn).await
    }

    /// Begins the request's transaction: on a replica when the route allows and the request has
    /// not written, else on the primary. A replica whose connection fails before any read ran
    /// on it is marked down and the primary serves instead, so the client never sees it.
    async fn begin(&self) -> Result<Object<AsyncPgConnection>, DbError> {
        let replicas = &self.route.replicas;
        if !replicas.is_empty()
            && !self.wrote.load(Ordering::Acquire)
            && let Some(reader) = replicas.reader(self.route.floor()).await
        {
            let index = reader.replica;
            match self.open(reader.conn).await {
                Ok(conn) => {
                    Replicas::count_read(index);
                    return Ok(conn);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "read replica failed; reading from the primary");
                    if let Some(index) = index {
                        replicas.failed(index);
                    }
                }
            }
        }
        let conn = self.open(self.pool.get().await?).await?;
        if !replicas.is_empty() {
            Replicas::count_read(None);
        }
        Ok(conn)
    }

    /// Begins a transaction in the request's scope on `conn`; a connection that fails is
    /// discarded, not returned to its pool.
    async fn open(
        &self,
        mut conn: Object<AsyncPgConnection>,
    ) -> Result<Object<AsyncPgConnection>, DbError> {
        let begun = async {
            AnsiTransactionManager::begin_transaction(&mut *conn).await?;
            self.scope.apply(&mut conn).await
        };
        match begun.await {
            Ok(()) => {
                conn.set_instrumentation(StatementCounter(
                    self.statements.clone(),
                    SqlSpans::new(),
                ));
                Ok(conn)
            }
            Err(e) => {
                let _ = Object::take(conn);
                Err(e)
            }
        }
    }

    /// Ends the read transaction before the request writes; every read after it, in this
    /// request, runs on the primary (a replica may not have replayed the write yet).
    pub async fn write(&self) {
        self.wrote.store(true, Ordering::Release);
        self.finish().await;
    }

    /// Marks a request that will write (a mutation operation) before it reads: all its reads go
    /// to the primary, which its checks before the first write must see too.
    pub fn will_write(&self) {
        self.wrote.store(true, Ordering::Release);
    }

    /// True once the request has written (see [`RequestDb::write`]).
    pub fn wrote(&self) -> bool {
        self.wrote.load(Ordering::Acquire)
    }

    /// Commits and returns the connection to the pool (reads leave nothing to commit, but a
    /// clean end returns it in good shape); a later [`RequestDb::run`] begins a new transaction.
    /// Mutations call it before taking a connection of their own. Returns the number of data
    /// statements the request ran so far.
    pub async fn finish(&self) -> usize {
        if let Some(mut conn) = self.conn.lock().await.take() {
            conn.set_instrumentation(SqlSpans::new());
            if let Err(e) = AnsiTransactionManager::commit_transaction(&mut *conn).await {
                tracing::warn!(error = %e, "request transaction did not commit; discarding its connection");
                let _ = Object::take(conn);
            }
        }
        self.statements()
    }

    /// Data statements run so far (not counting BEGIN, the tenant settings and COMMIT).
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }
}

/// Counts the statements a connection starts (and gives each a span when traces are exported;
/// between requests a pooled connection carries only the spans).
struct StatementCounter(Arc<AtomicUsize>, Option<SqlSpans>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        self.1.on_connection_event(event);
    }
}
