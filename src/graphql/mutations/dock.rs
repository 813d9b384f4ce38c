//! `createDock`, `updateDockCredentials`, `deleteDock`, `syncDock`: provider connections.
//!
//! Each checks docks FULL before anything else happens (a denial is `FORBIDDEN` and audited). A
//! key is then checked with the provider before it is stored: one request through the outbound
//! guard, within a short deadline, with no database connection held; a refusal is
//! `BAD_USER_INPUT` with a stable message that never quotes the remote end, and is audited. The
//! key is encrypted by [`crate::crypto`] and never returned.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object};
use secrecy::SecretString;
use uuid::Uuid;

use super::validate::{not_found, valid_name};
use super::{Act, audited, failed, org_full, permit, refusal};
use crate::auth::permissions::Area;
use crate::db::models::credentials::{self, NewDock};
use crate::db::models::dock;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::ids;
use crate::graphql::types::dock::{DockNode, SyncRunNode};
use crate::net::guard::{self, Blocked};
use crate::security::rate::RateLimits;
use crate::sync::scheduler::{Scheduler, SyncNowError};
use crate::sync::verify::VerifyError;

/// Longest dock name.
const MAX_DOCK_NAME: usize = 100;

/// What `createDock` takes: a provider account to connect.
#[derive(InputObject)]
pub struct CreateDockInput {
    /// 1–100 characters (trimmed), unique among the organization's docks.
    pub name: String,
    /// Which provider's API the key is for: `cloudflare`, `digitalocean`, `gridpane`, `linode` or `vercel`.
    pub provider: String,
    /// The provider's API token; checked against the provider, stored encrypted, never shown.
    pub api_key: String,
    /// Seconds between scheduled syncs (60 to 604800; default 3600).
    pub sync_interval_seconds: Option<i32>,
    /// Base URL overriding the provider's (self-hosted or proxied APIs): `http(s)`, at most
    /// 300 characters, no user name, query or fragment. Private and loopback addresses are
    /// refused unless the server allows them.
    pub endpoint: Option<String>,
}

/// What `updateDock` takes; a field left out or `null` is unchanged.
#[derive(InputObject)]
pub struct UpdateDockInput {
    /// A new name: 1–100 characters (trimmed), unique among the organization's docks.
    pub name: Option<String>,
    /// Seconds between scheduled syncs (60 to 604800), from the next scheduled sync on.
    pub sync_interval_seconds: Option<i32>,
}

#[derive(Default)]
pub struct DockMutations;

#[Object]
impl DockMutations {
    /// Connects a provider account and returns the new dock, which then syncs every
    /// `syncIntervalSeconds` (`syncDock` syncs it at once). The key is checked with the provider
    /// first (one request within a short deadline): a refusal, an unknown provider or a bad
    /// field is `BAD_USER_INPUT`;
    /// `CONFLICT` for a name in use; `RATE_LIMITED` past the organization's provider calls.
    /// Needs docks FULL.
    async fn create_dock(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The account to connect.")] input: CreateDockInput,
    ) -> async_graphql::Result<DockNode> {
        let act = Act {
            area: Area::Docks,
            action: "dock.create",
            target_type: "Dock",
            target_id: None,
        };
        permit(ctx, &act, org_full(ctx, Area::Docks)?).await?;
        let org_id = viewer(ctx)?.organization.id;
        let key = SecretString::from(input.api_key);
        let checked = async {
            dock_rate(ctx, org_id, None)?;
            let scheduler = scheduler(ctx)?;
            let name = valid_name(&input.name, MAX_DOCK_NAME)?;
            let interval = valid_interval(input.sync_interval_seconds)?;
            let endpoint = input.endpoint.as_deref().map(valid_endpoint).transpose()?;
            check_key(scheduler, &input.provider, endpoint, &key).await?;
            Ok((scheduler, name, interval, endpoint))
        }
        .await;
        let (scheduler, name, interval, endpoint) = or_audit(ctx, &act, checked).await?;
        let new = NewDock {
            org_id,
            name,
            provider: &input.provider,
            api_key: &key,
            endpoint,
            sync_interval_seconds: interval,
        };
        let keyring = scheduler.engine().keyring();
        let conflict = format!("a dock named `{name}` exists");
        let row = audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
            let id = credentials::create_dock(conn, keyring, &new)
                .await
                .map_err(|e| refusal(e, &conflict, ""))?;
            let row = dock::by_ids(conn, &[id])
                .await?
                .pop()
                .ok_or_else(|| not_found("dock"))?;
            Ok((row, Some(id)))
        })
        .await?;
        Ok(DockNode(Arc::new(row)))
    }

    /// Replaces a dock's API key, checked with the provider first (a refusal is
    /// `BAD_USER_INPUT`), and returns the dock. `NOT_FOUND` for a dock the caller cannot see;
    /// `RATE_LIMITED` past the organization's provider calls. Needs docks FULL.
    async fn update_dock_credentials(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dock's id.")] id: ID,
        #[graphql(desc = "The new API token; stored encrypted, never shown.")] api_key: String,
    ) -> async_graphql::Result<DockNode> {
        let (org_id, dock_id) = (viewer(ctx)?.organization.id, visible_dock(ctx, &id)?);
        let act = Act {
            area: Area::Docks,
            action: "dock.update_credentials",
            target_type: "Dock",
            target_id: Some(dock_id),
        };
        permit(ctx, &act, org_full(ctx, Area::Docks)?).await?;
        let key = SecretString::from(api_key);
        let checked = async {
            dock_rate(ctx, org_id, None)?;
            let scheduler = scheduler(ctx)?;
            let current = load_dock(ctx, dock_id).await?;
            let endpoint = current.endpoint.as_deref();
            check_key(scheduler, &current.provider, endpoint, &key).await?;
            Ok(scheduler)
        }
        .await;
        let scheduler = or_audit(ctx, &act, checked).await?;
        let keyring = scheduler.engine().keyring();
        let row = audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
            if !credentials::update_dock_key(conn, keyring, org_id, dock_id, &key).await? {
                return Err(not_found("dock"));
            }
            let row = dock::by_ids(conn, &[dock_id])
                .await?
                .pop()
                .ok_or_else(|| not_found("dock"))?;
            Ok((row, None))
        })
        .await?;
        Ok(DockNode(Arc::new(row)))
    }

    /// Soft-deletes a dock: it stops syncing and vanishes from lists. Returns its id;
    /// `NOT_FOUND` for a dock the caller cannot see. Needs docks FULL.
    async fn delete_dock(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dock's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let dock_id = visible_dock(ctx, &id)?;
        let act = Act {
            area: Area::Docks,
            action: "dock.delete",
            target_type: "Dock",
            target_id: Some(dock_id),
        };
        audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
            if !credentials::delete_dock(conn, dock_id).await? {
                return Err(not_found("dock"));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }

    /// Starts a sync now and returns its run at once (the running one, if a sync is under way).
    /// Follow it with the `dockSyncStatus` subscription. `NOT_FOUND` for a dock the caller cannot
    /// see; `CONFLICT` while another replica claims the dock; `RATE_LIMITED` past the syncs
    /// of this dock or the organization's provider calls. Needs docks FULL.
    async fn sync_dock(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dock's id.")] id: ID,
    ) -> async_graphql::Result<SyncRunNode> {
        let scheduler = scheduler(ctx)?;
        let (org_id, dock_id) = (viewer(ctx)?.organization.id, visible_dock(ctx, &id)?);
        let act = Act {
            area: Area::Docks,
            action: "dock.sync",
            target_type: "Dock",
            target_id: Some(dock_id),
        };
        permit(ctx, &act, org_full(ctx, Area::Docks)?).await?;
        if let Err(err) = dock_rate(ctx, org_id, Some(dock_id)) {
            return Err(failed(ctx, &act, err).await.into());
        }
        audited(ctx, act, true, async |_conn| Ok(((), None))).await?;
        let run = scheduler
            .sync_now(org_id, dock_id)
            .await
            .map_err(|e| match e {
                SyncNowError::NotFound => not_found("dock"),
                SyncNowError::Busy => ApiError::Conflict(
                    "the dock is being claimed by another replica; try again".into(),
                ),
                SyncNowError::Db(e) => ApiError::from(e),
            })?;
        Ok(SyncRunNode(Arc::new(run.run().clone())))
    }

    /// Renames a dock and/or changes how often it syncs, and returns it (its key is changed
    /// with `updateDockCredentials`). Needs docks FULL. `NOT_FOUND` for a dock the caller
    /// cannot see; `CONFLICT` for a name in use; `BAD_USER_INPUT` for a bad name or interval.
    async fn update_dock(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dock's id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateDockInput,
    ) -> async_graphql::Result<DockNode> {
        let (org_id, dock_id) = (viewer(ctx)?.organization.id, visible_dock(ctx, &id)?);
        let name = (input.name.as_deref())
            .map(|n| valid_name(n, MAX_DOCK_NAME))
            .transpose()?;
        let interval = (input.sync_interval_seconds)
            .map(|s| valid_interval(Some(s)))
            .transpose()?;
        let conflict = format!("a dock named `{}` exists", name.unwrap_or_default());
        let act = Act {
            area: Area::Docks,
            action: "dock.update",
            target_type: "Dock",
            target_id: Some(dock_id),
        };
        let row = audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
            let updated = dock::update_settings(conn, org_id, dock_id, name, interval)
                .await
                .map_err(|e| refusal(e, &conflict, "no such dock"))?;
            if !updated {
                return Err(not_found("dock"));
            }
            let row = dock::by_ids(conn, &[dock_id])
                .await?
                .pop()
                .ok_or_else(|| not_found("dock"))?;
            Ok((row, None))
        })
        .await?;
        Ok(DockNode(Arc::new(row)))
    }
}

/// The rate limits of provider-calling dock operations: per organization, and per dock for
/// syncs of an existing one.
pub(super) fn dock_rate(ctx: &Context<'_>, org: Uuid, dock: Option<Uuid>) -> Result<(), ApiError> {
    match ctx.data_opt::<Arc<RateLimits>>() {
        Some(rates) => rates.dock_operation(org, dock),
        None => Ok(()),
    }
}

pub(super) fn scheduler<'a>(ctx: &Context<'a>) -> Result<&'a Scheduler, ApiError> {
    ctx.data::<Scheduler>().map_err(|_| {
        ApiError::BadUserInput(
            "this server has no STACKGATE_ENCRYPTION_KEYS, so it cannot store provider keys".into(),
        )
    })
}

/// The uuid of a dock the viewer may see; anything else does not exist for them.
fn visible_dock(ctx: &Context<'_>, id: &ID) -> Result<Uuid, ApiError> {
    let dock_id = ids::decode_as(id, "Dock")?;
    if !viewer(ctx)?.visibility().sees_dock(dock_id) {
        return Err(not_found("dock"));
    }
    Ok(dock_id)
}

async fn load_dock(ctx: &Context<'_>, dock_id: Uuid) -> Result<dock::Dock, ApiError> {
    let viewer = viewer(ctx)?;
    let pool = super::pool(ctx).await?;
    let row = viewer
        .scope()
        .transaction(pool, async |conn| dock::by_ids(conn, &[dock_id]).await)
        .await?;
    row.into_iter()
        .find(|d| d.org_id == viewer.organization.id && d.deleted_at.is_none())
        .ok_or_else(|| not_found("dock"))
}

/// A failure after the permission check and before the write, audited as `error`.
async fn or_audit<T>(
    ctx: &Context<'_>,
    act: &Act<'_>,
    result: Result<T, ApiError>,
) -> Result<T, ApiError> {
    match result {
        Ok(value) => Ok(value),
        Err(err) => Err(failed(ctx, act, err).await),
    }
}

/// Asks the provider whether `key` works: one request within the engine's deadline, holding no
/// database connection; a failure is one of the stable messages of [`VerifyError`].
async fn check_key(
    scheduler: &Scheduler,
    provider: &str,
    endpoint: Option<&str>,
    key: &SecretString,
) -> Result<(), ApiError> {
    let engine = scheduler.engine();
    let adapter = engine.registry().get(provider).ok_or_else(|| {
        ApiError::BadUserInput(format!(
            "unknown provider `{}`",
            provider.chars().take(32).collect::<String>()
        ))
    })?;
    engine
        .verify(adapter.as_ref(), endpoint, key)
        .await
        .map_err(|e: VerifyError| ApiError::BadUserInput(e.to_string()))
}

fn valid_interval(seconds: Option<i32>) -> Result<i32, ApiError> {
    let interval = seconds.unwrap_or(3600);
    if !(60..=604_800).contains(&interval) {
        return Err(ApiError::BadUserInput(
            "`syncIntervalSeconds` must be 60 to 604800".into(),
        ));
    }
    Ok(interval)
}

/// A base URL: `http(s)`, no user information, no query or fragment (they would swallow the
/// API paths appended to it). Whether its address may be contacted is the outbound guard's
/// decision, made before any connection.
fn valid_endpoint(endpoint: &str) -> Result<&str, ApiError> {
    let bad = |m: &str| ApiError::BadUserInput(format!("`endpoint` {m}"));
    if endpoint.len() > 300 {
        return Err(bad("must be at most 300 characters"));
    }
    let url = reqwest::Url::parse(endpoint).map_err(|_| bad("must be an http(s) URL"))?;
    match guard::check_url(&url, true) {
        Err(Blocked::Userinfo) => return Err(bad("may not carry a user name or password")),
        Err(_) => return Err(bad("must be an http(s) URL")),
        Ok(()) => {}
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("may not have a query or fragment"));
    }
    Ok(endpoint.trim_end_matches('/'))
}
