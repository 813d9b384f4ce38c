//! What resolvers take from the request context: the viewer, the loaders, the database handle.

use std::hash::Hash;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::Loader;

use super::loaders::{DbLoader, LoadError, LoaderSlot, Loaders, Recorded};
use crate::auth::Viewer;
use crate::db::models::visibility::Visibility;
use diesel_async::AsyncPgConnection;

use crate::db::tenancy::TxBody;
use crate::db::{DbError, RequestDb};
use crate::error::ApiError;
use crate::events::Topic;

/// The authenticated viewer of this request, acting in an organization. A caller who belongs to
/// none is refused here (`FORBIDDEN`), so no resolver acts for them by mistake.
pub fn viewer<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, ApiError> {
    let viewer = caller(ctx)?;
    if !viewer.in_organization() {
        return Err(ApiError::Forbidden(
            "not a member of any organization: see `viewer { invitations }` and `acceptInvitation`"
                .into(),
        ));
    }
    Ok(viewer)
}

/// The authenticated caller, even one who belongs to no organization yet: only for what such a
/// caller may do (`viewer { user invitations }`, `acceptInvitation`).
pub fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Viewer, ApiError> {
    ctx.data::<Viewer>()
        .map_err(|_| ApiError::Unauthenticated("authentication required".into()))
}

/// The request's loaders (for a subscription, those of its current event).
pub fn loaders(ctx: &Context<'_>) -> Result<Arc<Loaders>, ApiError> {
    ctx.data::<Arc<LoaderSlot>>()
        .map(|slot| slot.current())
        .map_err(|_| ApiError::Unauthenticated("authentication required".into()))
}

/// The request's database handle.
pub fn db<'a>(ctx: &Context<'a>) -> Result<&'a Arc<RequestDb>, ApiError> {
    ctx.data::<Arc<RequestDb>>()
        .map_err(|_| ApiError::Unauthenticated("authentication required".into()))
}

/// What the viewer may read in this operation (for a subscription, as of its latest event).
pub fn visibility(ctx: &Context<'_>) -> Result<Arc<Visibility>, ApiError> {
    Ok(db(ctx)?.visibility())
}

/// Runs `body` on the request's transaction; a database failure is an internal error. What it
/// reads is recorded as anything of the organization ([`Topic::Everything`]), and as the
/// viewer's own (row-level security may show each user their own rows): a read that knows its
/// topics, and reads only what permissions decide, uses [`run_reading`].
pub async fn run<R, F>(ctx: &Context<'_>, body: F) -> Result<R, ApiError>
where
    for<'r> F: TxBody<&'r mut AsyncPgConnection, Result<R, DbError>, Fut: Send> + Send,
    R: Send,
{
    personal(ctx)?;
    run_reading(ctx, [Topic::Everything], body).await
}

/// Records that this operation's result depends on who the viewer is, beyond their
/// permissions (it is never shared with another viewer).
pub fn personal(ctx: &Context<'_>) -> Result<(), ApiError> {
    loaders(ctx)?.personal();
    Ok(())
}

/// Runs `body` on the request's transaction, recording that it read `topics` (the caller adds
/// the topics of the rows it got with [`record`]).
pub async fn run_reading<R, F>(
    ctx: &Context<'_>,
    topics: impl IntoIterator<Item = Topic>,
    body: F,
) -> Result<R, ApiError>
where
    for<'r> F: TxBody<&'r mut AsyncPgConnection, Result<R, DbError>, Fut: Send> + Send,
    R: Send,
{
    record(ctx, topics)?;
    Ok(db(ctx)?.run(body).await?)
}

/// Records topics this operation read other than through a loader.
pub fn record(ctx: &Context<'_>, topics: impl IntoIterator<Item = Topic>) -> Result<(), ApiError> {
    loaders(ctx)?.record(topics);
    Ok(())
}

/// Loads one value by key through the request's loaders.
pub async fn load_one<K>(
    ctx: &Context<'_>,
    key: K,
) -> Result<Option<<DbLoader as Loader<K>>::Value>, ApiError>
where
    K: Send + Sync + Hash + Eq + Clone + Recorded + 'static,
    DbLoader: Loader<K, Error = LoadError>,
{
    loaders(ctx)?.load_one(key).await
}
