//! Publishing: the one place an event leaves the process.
//!
//! A writer publishes inside the transaction that writes what the event reports, so the event is
//! delivered (to every replica's [`super::EventBus`]) only if that transaction commits. Today that
//! is `pg_notify` on [`CHANNEL`]; some triggers in `migrations/` publish their payloads the same
//! way in SQL.

use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{CHANNEL, Event};
use crate::db::DbError;

/// Publishes `event` in the caller's transaction (delivered when it commits).
pub async fn publish(conn: &mut AsyncPgConnection, event: &Event) -> Result<(), DbError> {
    diesel::sql_query("select pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(event.to_payload())
        .execute(conn)
        .await?;
    Ok(())
}
