//! Publishing: the one place an event leaves the process.
//!
//! A writer publishes inside the transaction that writes what the event reports: it appends the
//! event to the outbox (`stackgate_publish`, which the triggers in `migrations/` call too), and
//! the relay ([`super::relay`]) delivers it to every replica's [`super::EventBus`] once that
//! transaction has committed, never if it rolls back. Writers no longer call `pg_notify`, so
//! their commits do not queue on its database-wide lock.

use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::Event;
use crate::db::DbError;

/// Publishes `event` in the caller's transaction (delivered after it commits).
pub async fn publish(conn: &mut AsyncPgConnection, event: &Event) -> Result<(), DbError> {
    diesel::sql_query("select stackgate_publish($1, $2)")
        .bind::<Nullable<SqlUuid>, _>(event.outbox_org())
        .bind::<Text, _>(event.to_payload())
        .execute(conn)
        .await?;
    Ok(())
}
