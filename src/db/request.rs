//! A request's reads: one transaction, begun on first use, in the viewer's [`Scope`].
//!
//! Every loader of a GraphQL operation runs its statements here, one after another, so a request
//! costs one `BEGIN`, one `set_config` and one `COMMIT` however many batches it loads. The
//! transaction is begun through diesel's transaction manager: if the request is dropped midway,
//! the pool sees an open transaction on return and discards the connection, so no tenant setting
//! ever outlives its request. Statements are counted for `stackgate_sql_statements_per_request`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, TransactionManager,
};
use tokio::sync::Mutex;

use super::models::visibility::Visibility;
use super::tenancy::TxBody;
use super::{DbError, Pool, Scope};

/// The per-request database handle.
pub struct RequestDb {
    pool: Pool,
    scope: Scope,
    visibility: std::sync::RwLock<Arc<Visibility>>,
    conn: Mutex<Option<Object<AsyncPgConnection>>>,
    statements: Arc<AtomicUsize>,
}

impl RequestDb {
    pub fn new(pool: Pool, scope: Scope, visibility: Visibility) -> Self {
        Self {
            pool,
            scope,
            visibility: std::sync::RwLock::new(Arc::new(visibility)),
            conn: Mutex::new(None),
            statements: Arc::default(),
        }
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
            let mut conn = self.pool.get().await?;
            AnsiTransactionManager::begin_transaction(&mut *conn).await?;
            self.scope.apply(&mut conn).await?;
            conn.set_instrumentation(StatementCounter(self.statements.clone()));
            *guard = Some(conn);
        }
        let conn = guard
            .as_mut()
            .ok_or(DbError::Migration("request connection vanished".into()))?;
        body(conn).await
    }

    /// Commits and returns the connection to the pool (reads leave nothing to commit, but a
    /// clean end returns it in good shape); a later [`RequestDb::run`] begins a new transaction.
    /// Mutations call it before taking a connection of their own. Returns the number of data
    /// statements the request ran so far.
    pub async fn finish(&self) -> usize {
        if let Some(mut conn) = self.conn.lock().await.take() {
            conn.set_instrumentation(Quiet);
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

/// Records nothing: what a pooled connection carries between requests.
struct Quiet;

impl Instrumentation for Quiet {
    fn on_connection_event(&mut self, _: InstrumentationEvent<'_>) {}
}

/// Counts the statements a connection starts.
struct StatementCounter(Arc<AtomicUsize>);

impl Instrumentation for StatementCounter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
