//! Writing encrypted credentials: creating a dock, replacing its key, deleting it, and
//! re-encrypting every credential to the active key (`stackgate rotate-keys`).
//!
//! A ciphertext is bound to its row id (see [`crate::crypto`]), so a new dock's id is chosen
//! here, before its key is encrypted.

use diesel::QueryableByName;
use diesel::sql_types::{Bytea, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use secrecy::SecretString;
use uuid::Uuid;

use crate::crypto::{self, Binding, Keyring};
use crate::db::DbError;

/// A dock to create (the caller has checked the key against the provider).
pub struct NewDock<'a> {
    pub org_id: Uuid,
    pub name: &'a str,
    pub provider: &'a str,
    pub api_key: &'a SecretString,
    pub endpoint: Option<&'a str>,
    pub sync_interval_seconds: i32,
}

/// Inserts a dock with its key encrypted and its hint; returns its id. A live dock of the same
/// name is a unique violation ([`DbError::is_unique_violation`]).
pub async fn create_dock(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    dock: &NewDock<'_>,
) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    let encrypted = keyring.encrypt_str(
        dock.api_key,
        Binding::new(dock.org_id, id, crypto::DOCK_API_KEY),
    );
    diesel::sql_query(
        "insert into docks (id, org_id, name, provider, encrypted_api_key, api_key_hint, endpoint, \
                            sync_interval_seconds) values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(dock.org_id)
    .bind::<Text, _>(dock.name)
    .bind::<Text, _>(dock.provider)
    .bind::<Bytea, _>(encrypted)
    .bind::<Nullable<Text>, _>(crypto::hint(dock.api_key))
    .bind::<Nullable<Text>, _>(dock.endpoint)
    .bind::<Integer, _>(dock.sync_interval_seconds)
    .execute(conn)
    .await?;
    Ok(id)
}

/// Replaces a live dock's key (and hint) and clears its back-off; false when no such dock.
pub async fn update_dock_key(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    org_id: Uuid,
    dock_id: Uuid,
    api_key: &SecretString,
) -> Result<bool, DbError> {
    let encrypted =
        keyring.encrypt_str(api_key, Binding::new(org_id, dock_id, crypto::DOCK_API_KEY));
    let n = diesel::sql_query(
        "update docks set encrypted_api_key = $3, api_key_hint = $4, backoff_until = null \
         where org_id = $1 and id = $2 and deleted_at is null",
    )
    .bind::<SqlUuid, _>(org_id)
    .bind::<SqlUuid, _>(dock_id)
    .bind::<Bytea, _>(encrypted)
    .bind::<Nullable<Text>, _>(crypto::hint(api_key))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Soft-deletes a live dock: it stops syncing (the scheduler skips it, a running sync applies
/// nothing); false when no such dock.
pub async fn delete_dock(conn: &mut AsyncPgConnection, dock_id: Uuid) -> Result<bool, DbError> {
    let n = diesel::sql_query(
        "update docks set deleted_at = now() where id = $1 and deleted_at is null",
    )
    .bind::<SqlUuid, _>(dock_id)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Counts of one column's rotation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rotated {
    /// Re-encrypted to the active key.
    pub rotated: usize,
    /// Already on the active key.
    pub current: usize,
    /// Not decryptable with any configured key (left as they were).
    pub unreadable: usize,
}

/// What `rotate-keys` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub docks: Rotated,
    pub operation_services: Rotated,
    pub notification_channels: Rotated,
}

#[derive(QueryableByName)]
struct Sealed {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    org_id: Uuid,
    #[diesel(sql_type = Bytea)]
    value: Vec<u8>,
}

/// Re-encrypts every `docks.encrypted_api_key` and `operation_services.encrypted_config` (deleted
/// docks included) to the active key. Call as the schema owner inside one transaction: it turns
/// on `stackgate.owner_maintenance` for that transaction, which the owner-only policies of the
/// `sync_leases` migration need when the owner is not a superuser.
pub async fn rotate_all(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
) -> Result<RotationReport, DbError> {
    conn.batch_execute("select set_config('stackgate.owner_maintenance', 'on', true)")
        .await?;
    let docks = rotate_column(
        conn,
        keyring,
        "docks",
        "encrypted_api_key",
        crypto::DOCK_API_KEY,
    )
    .await?;
    let services = rotate_column(
        conn,
        keyring,
        "operation_services",
        "encrypted_config",
        crypto::OPERATION_CONFIG,
    )
    .await?;
    let channels = rotate_column(
        conn,
        keyring,
        "notification_channels",
        "encrypted_secret",
        crypto::NOTIFICATION_SECRET,
    )
    .await?;
    conn.batch_execute("select set_config('stackgate.owner_maintenance', '', true)")
        .await?;
    Ok(RotationReport {
        docks,
        operation_services: services,
        notification_channels: channels,
    })
}

async fn rotate_column(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    table: &str,
    column: &str,
    binding_column: &str,
) -> Result<Rotated, DbError> {
    let rows: Vec<Sealed> = diesel::sql_query(format!(
        "select id, org_id, {column} as value from {table} where {column} is not null for update"
    ))
    .load(conn)
    .await?;
    let mut report = Rotated::default();
    for row in rows {
        match keyring.reencrypt(&row.value, Binding::new(row.org_id, row.id, binding_column)) {
            Ok(None) => report.current += 1,
            Ok(Some(value)) => {
                diesel::sql_query(format!("update {table} set {column} = $2 where id = $1"))
                    .bind::<SqlUuid, _>(row.id)
                    .bind::<Bytea, _>(value)
                    .execute(conn)
                    .await?;
                report.rotated += 1;
            }
            Err(e) => {
                tracing::warn!(table, id = %row.id, error = %e, "credential not rotated");
                report.unreadable += 1;
            }
        }
    }
    Ok(report)
}
