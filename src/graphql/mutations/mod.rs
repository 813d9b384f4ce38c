//! The mutation roots, one module per concern, merged into `Mutation`:
//!
//! - [`project`]: projects and their links to resources (projects FULL).
//! - [`teams`], [`clients`], [`roles`], [`members`]: the people of an organization and what
//!   they may do (settings FULL, and the role hierarchy of [`roles`]).
//! - [`grants`]: team and client grants on docks (docks FULL).
//! - [`api_keys`]: API keys (one's own: anyone; others': settings FULL).
//! - [`dock`]: provider connections (docks FULL).
//! - [`operations`]: operation services and their team grants (operations FULL), and their
//!   links to projects (projects FULL).
//! - [`health`]: probe intervals (monitoring FULL).
//! - [`resources`]: tags on resources (resources FULL).
//! - [`actions`]: provider actions on resources (resources FULL on the resource's dock).
//! - [`notification`]: notification channels, and acknowledging and resolving alerts
//!   (monitoring FULL).
//! - [`invitation`]: invitations, sent with settings FULL and accepted by the invitee.
//! - [`organization`]: creating (any signed-in user, who becomes its owner), changing (settings
//!   FULL) and deleting (owners) organizations.
//! - [`validate`]: the input checks they share.
//!
//! The order of [`Mutation`]'s parts is the order of its fields in `schema.graphql`.
//!
//! Every mutation goes through [`audited`]: it checks FULL on its area (a denial is `FORBIDDEN`
//! and audited), runs in its own transaction in the viewer's scope, records its success in that
//! same transaction, and records a failure in a transaction of its own. Database refusals map to
//! stable codes through [`refusal`] (unique → `CONFLICT`, missing reference → `NOT_FOUND`).

pub mod actions;
pub mod api_keys;
pub mod clients;
pub mod dock;
pub mod grants;
pub mod health;
pub mod invitation;
pub mod members;
pub mod notification;
pub mod operations;
pub mod organization;
pub mod project;
pub mod resources;
pub mod roles;
pub mod teams;
pub mod validate;

use async_graphql::{Context, MergedObject};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::auth::Viewer;
use crate::auth::permissions::{Area, Level};
use crate::db::models::audit::{self, Actor, Entry};
use crate::db::tenancy::TxBody;
use crate::db::{DbError, Pool, Scope};
use crate::error::ApiError;
use crate::graphql::context::{caller, viewer};

/// Every change. Each mutation checks its permission before anything else (a denial is
/// `FORBIDDEN` and recorded), runs in a transaction of its own and is recorded in the audit
/// log; the mutations of one request run one after another, in order.
#[derive(MergedObject, Default)]
pub struct Mutation(
    project::ProjectMutations,
    teams::TeamMutations,
    clients::ClientMutations,
    roles::RoleMutations,
    members::MemberMutations,
    grants::GrantMutations,
    api_keys::ApiKeyMutations,
    dock::DockMutations,
    operations::OperationMutations,
    health::HealthMutations,
    resources::ResourceMutations,
    actions::ActionMutations,
    invitation::InvitationMutations,
    organization::OrganizationMutations,
    notification::NotificationMutations,
);

/// Where a request came from (for the audit log and per-address rate limits).
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The peer's address, when known.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        self.ip_address.as_deref().and_then(|ip| ip.parse().ok())
    }
}

/// What a mutation is, for its permission check and its audit entry.
#[derive(Clone, Copy, Debug)]
pub struct Act<'a> {
    pub area: Area,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<Uuid>,
}

/// The actor of this request for the audit log.
pub fn actor(ctx: &Context<'_>, viewer: &Viewer) -> Actor {
    let client = ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default();
    Actor {
        org_id: viewer.organization.id,
        user_id: Some(viewer.user.id),
        api_key_id: viewer.api_key_id,
        ip_address: client.ip_address,
        user_agent: client.user_agent,
    }
}

/// The schema's pool (the primary's), for a mutation's own transaction. The request's read
/// transaction is ended first, so an operation never holds two pooled connections at once
/// (mutations run one after another); reads after a mutation begin a new read transaction on
/// the primary, which sees its writes, and the response carries the write's WAL position.
pub async fn pool<'a>(ctx: &Context<'a>) -> Result<&'a Pool, ApiError> {
    if let Ok(db) = ctx.data::<std::sync::Arc<crate::db::RequestDb>>() {
        db.write().await;
    }
    ctx.data::<Pool>()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("no pool in schema data")))
}

/// Runs a mutation: permission check, one transaction, audit of its outcome. `allowed` says
/// whether the viewer may do it (usually `viewer.can(act.area, Level::Full)`); the body returns
/// its value and, when it created something, the new row's id (the audit target). A
/// `FORBIDDEN` from the body (a finer rule, such as the role hierarchy) is audited as denied.
pub async fn audited<R, F>(
    ctx: &Context<'_>,
    act: Act<'_>,
    allowed: bool,
    body: F,
) -> Result<R, ApiError>
where
    for<'r> F:
        TxBody<&'r mut AsyncPgConnection, Result<(R, Option<Uuid>), ApiError>, Fut: Send> + Send,
    R: Send,
{
    permit(ctx, &act, allowed).await?;
    let org = viewer(ctx)?.organization.id;
    audited_in(ctx, org, act, body).await
}

/// [`audited`] after its permission check, in organization `org`: the active one, or for the
/// few acts whose organization is not the caller's yet (accepting an invitation) that one, which
/// the caller has checked the act belongs to.
pub async fn audited_in<R, F>(
    ctx: &Context<'_>,
    org: Uuid,
    act: Act<'_>,
    body: F,
) -> Result<R, ApiError>
where
    for<'r> F:
        TxBody<&'r mut AsyncPgConnection, Result<(R, Option<Uuid>), ApiError>, Fut: Send> + Send,
    R: Send,
{
    let viewer = caller(ctx)?;
    let actor = Actor {
        org_id: org,
        ..actor(ctx, viewer)
    };
    let pool = pool(ctx).await?;
    let outcome: Result<R, ApiError> = Scope::org(org, viewer.user.id)
        .try_transaction(pool, async |conn| {
            let (value, created) = body(conn).await?;
            let entry = entry(&act, created.or(act.target_id), "success", None);
            audit::record(conn, &actor, &entry).await?;
            Ok(value)
        })
        .await;
    match &outcome {
        Err(err @ ApiError::Forbidden(_)) => {
            record_failure(pool, viewer, &actor, &act, "denied", err.message()).await
        }
        Err(err) => record_failure(pool, viewer, &actor, &act, "error", err.message()).await,
        // Memberships, roles, grants or keys may have changed: resolve viewers afresh.
        Ok(_) => {
            if let Some(cache) = ctx.data_opt::<std::sync::Arc<crate::auth::cache::ViewerCache>>() {
                cache.clear();
            }
        }
    }
    outcome
}

/// The permission check of an act that must happen before its side effects outside the
/// database (an outbound call, before [`audited`] writes): a denial is `FORBIDDEN` and audited.
pub async fn permit(ctx: &Context<'_>, act: &Act<'_>, allowed: bool) -> Result<(), ApiError> {
    if allowed {
        return Ok(());
    }
    let viewer = viewer(ctx)?;
    let err = ApiError::Forbidden(format!("`{}` needs {} FULL", act.action, act.area.as_str()));
    record_failure(
        pool(ctx).await?,
        viewer,
        &actor(ctx, viewer),
        act,
        "denied",
        err.message(),
    )
    .await;
    Err(err)
}

/// Audits a permitted act that failed before its transaction (an outbound refusal, a key the
/// provider did not confirm) with result `error`, and returns the error.
pub async fn failed(ctx: &Context<'_>, act: &Act<'_>, err: ApiError) -> ApiError {
    match (viewer(ctx), pool(ctx).await) {
        (Ok(viewer), Ok(pool)) => {
            let actor = actor(ctx, viewer);
            record_failure(pool, viewer, &actor, act, "error", err.message()).await;
        }
        _ => tracing::error!(action = act.action, "no viewer or pool to audit a failure"),
    }
    err
}

/// An act in the settings area (people, teams, clients, roles, keys, invitations).
pub fn settings_act<'a>(action: &'a str, target_type: &'a str, target_id: Option<Uuid>) -> Act<'a> {
    Act {
        area: Area::Settings,
        action,
        target_type,
        target_id,
    }
}

/// True when the viewer's org role grants FULL in the act's area.
pub fn org_full(ctx: &Context<'_>, area: Area) -> Result<bool, ApiError> {
    Ok(viewer(ctx)?.can(area, Level::Full))
}

fn entry<'a>(
    act: &Act<'a>,
    target_id: Option<Uuid>,
    result: &'a str,
    message: Option<&'a str>,
) -> Entry<'a> {
    Entry {
        action: act.action,
        target_type: Some(act.target_type),
        target_id,
        result,
        message,
        metadata: serde_json::json!({}),
    }
}

/// Records a denied or failed act in its own transaction, in the actor's organization; a
/// failure to record is logged.
async fn record_failure(
    pool: &Pool,
    viewer: &Viewer,
    actor: &Actor,
    act: &Act<'_>,
    result: &str,
    message: &str,
) {
    let entry = entry(act, act.target_id, result, Some(message));
    let recorded = Scope::org(actor.org_id, viewer.user.id)
        .transaction(pool, async |conn| audit::record(conn, actor, &entry).await)
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, action = act.action, "could not record an audit entry");
    }
}

/// Maps a database refusal to its client-facing code; anything else is internal.
pub fn refusal(err: DbError, conflict: &str, missing: &str) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match &err {
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            ApiError::Conflict(conflict.into())
        }
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
            ApiError::NotFound(missing.into())
        }
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::CheckViolation, _)) => {
            ApiError::BadUserInput("the value is not allowed".into())
        }
        _ => ApiError::from(err),
    }
}
