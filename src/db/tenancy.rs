//! Tenant identity per transaction (`docs/security.md`).
//!
//! Every statement a request runs goes through [`Scope::transaction`], which opens a transaction,
//! sets the `stackgate.*` settings row-level security reads — for that transaction only — and then
//! runs the body. Nothing tenant-specific ever stays on a pooled connection.

use std::future::Future;

use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{DbError, Pool};

/// Who a transaction acts for; each field becomes one transaction-local setting.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// `stackgate.org_id`: the active organization; tenant tables show only its rows.
    pub org_id: Option<Uuid>,
    /// `stackgate.user_id`: the acting user; lets them see their own memberships across orgs.
    pub user_id: Option<Uuid>,
    /// `stackgate.external_id`: set only while resolving a token's subject to a user.
    pub external_id: Option<String>,
    /// `stackgate.admin_org_slug`: set only for platform admins entering an org they aren't in.
    pub admin_org_slug: Option<String>,
}

/// An async closure over a connection whose future is `Send` (diesel-async's own bound is
/// private, so this repeats it).
pub trait TxBody<T, R>: AsyncFnOnce(T) -> R + FnOnce(T) -> <Self as TxBody<T, R>>::Fut {
    type Fut: Future<Output = R>;
}

impl<F, T, Fut, R> TxBody<T, R> for F
where
    F: AsyncFnOnce(T) -> R + FnOnce(T) -> Fut,
    Fut: Future<Output = R>,
{
    type Fut = Fut;
}

impl Scope {
    /// A scope acting for `user_id` inside `org_id`.
    pub fn org(org_id: Uuid, user_id: Uuid) -> Self {
        Self {
            org_id: Some(org_id),
            user_id: Some(user_id),
            ..Self::default()
        }
    }

    /// Runs `body` in a transaction on a pooled connection with this scope's settings.
    pub async fn transaction<R, F>(&self, pool: &Pool, body: F) -> Result<R, DbError>
    where
        for<'r> F: TxBody<&'r mut AsyncPgConnection, Result<R, DbError>, Fut: Send> + Send,
        R: Send,
    {
        self.try_transaction(pool, body).await
    }

    /// Like [`Scope::transaction`], with the caller's error type: any error converting from
    /// [`DbError`]; returning one rolls back (mutations abandon with their own reasons).
    pub async fn try_transaction<R, E, F>(&self, pool: &Pool, body: F) -> Result<R, E>
    where
        for<'r> F: TxBody<&'r mut AsyncPgConnection, Result<R, E>, Fut: Send> + Send,
        E: From<DbError> + From<diesel::result::Error> + Send,
        R: Send,
    {
        let mut conn = pool.get().await.map_err(DbError::from)?;
        self.try_transaction_on(&mut conn, body).await
    }

    /// Like [`Scope::transaction`], on a connection the caller holds.
    pub async fn transaction_on<R, F>(
        &self,
        conn: &mut AsyncPgConnection,
        body: F,
    ) -> Result<R, DbError>
    where
        for<'r> F: TxBody<&'r mut AsyncPgConnection, Result<R, DbError>, Fut: Send> + Send,
        R: Send,
    {
        self.try_transaction_on(conn, body).await
    }

    /// Like [`Scope::try_transaction`], on a connection the caller holds.
    pub async fn try_transaction_on<R, E, F>(
        &self,
        conn: &mut AsyncPgConnection,
        body: F,
    ) -> Result<R, E>
    where
        for<'r> F: TxBody<&'r mut AsyncPgConnection, Result<R, E>, Fut: Send> + Send,
        E: From<DbError> + From<diesel::result::Error> + Send,
        R: Send,
    {
        conn.transaction::<R, E, _>(async move |conn| {
            self.apply(conn).await?;
            body(conn).await
        })
        .await
    }

    /// Sets the transaction-local settings in one statement (inside an open transaction).
    pub async fn apply(&self, conn: &mut AsyncPgConnection) -> Result<(), DbError> {
        diesel::sql_query(
            "select set_config('stackgate.org_id', coalesce($1, ''), true), \
                    set_config('stackgate.user_id', coalesce($2, ''), true), \
                    set_config('stackgate.external_id', coalesce($3, ''), true), \
                    set_config('stackgate.admin_org_slug', coalesce($4, ''), true)",
        )
        .bind::<Nullable<Text>, _>(self.org_id.map(|id| id.to_string()))
        .bind::<Nullable<Text>, _>(self.user_id.map(|id| id.to_string()))
        .bind::<Nullable<Text>, _>(self.external_id.as_deref())
        .bind::<Nullable<Text>, _>(self.admin_org_slug.as_deref())
        .execute(conn)
        .await?;
        Ok(())
    }
}
