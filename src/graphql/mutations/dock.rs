//! `createDock`, `updateDockCredentials`, `deleteDock`, `syncDock`: provider connections.
//!
//! A key is checked against the provider before it is stored (a refusal is `BAD_USER_INPUT` with
//! the provider's reason, the key redacted), encrypted by [`crate::crypto`], and never returned.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object};
use secrecy::SecretString;
use uuid::Uuid;

use super::{Act, audited, org_full, refusal};
use crate::auth::permissions::Area;
use crate::db::models::credentials::{self, NewDock};
use crate::db::models::dock;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::ids;
use crate::graphql::types::dock::{DockNode, SyncRunNode};
use crate::sync::engine::redact;
use crate::sync::scheduler::{Scheduler, SyncNowError};

#[derive(InputObject)]
pub struct CreateDockInput {
    /// 1–100 characters, unique among the organization's docks.
    pub name: String,
    /// `digitalocean`, `linode` or `vercel`.
    pub provider: String,
    /// The provider's API token; checked against the provider, stored encrypted, never shown.
    pub api_key: String,
    /// Seconds between scheduled syncs (60 to 604800; default 3600).
    pub sync_interval_seconds: Option<i32>,
    /// Base URL overriding the provider's (self-hosted or proxied APIs).
    pub endpoint: Option<String>,
}

#[derive(Default)]
pub struct DockMutations;

#[Object]
impl DockMutations {
    /// Connects a provider account. Needs docks FULL.
    async fn create_dock(
        &self,
        ctx: &Context<'_>,
        input: CreateDockInput,
    ) -> async_graphql::Result<DockNode> {
        let scheduler = scheduler(ctx)?;
        let org_id = viewer(ctx)?.organization.id;
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::BadUserInput("`name` must be 1 to 100 characters".into()).into());
        }
        let interval = input.sync_interval_seconds.unwrap_or(3600);
        if !(60..=604_800).contains(&interval) {
            return Err(ApiError::BadUserInput(
                "`syncIntervalSeconds` must be 60 to 604800".into(),
            )
            .into());
        }
        let endpoint = input.endpoint.as_deref().map(valid_endpoint).transpose()?;
        let key = SecretString::from(input.api_key);
        let provider = input.provider.as_str();
        check_key(scheduler, provider, endpoint, &key).await?;
        let act = Act {
            area: Area::Docks,
            action: "dock.create",
            target_type: "Dock",
            target_id: None,
        };
        let new = NewDock {
            org_id,
            name,
            provider,
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
                .ok_or_else(|| ApiError::NotFound("no such dock".into()))?;
            Ok((row, Some(id)))
        })
        .await?;
        Ok(DockNode(Arc::new(row)))
    }

    /// Replaces a dock's API key (checked against the provider first). Needs docks FULL.
    async fn update_dock_credentials(
        &self,
        ctx: &Context<'_>,
        id: ID,
        api_key: String,
    ) -> async_graphql::Result<DockNode> {
        let scheduler = scheduler(ctx)?;
        let (org_id, dock_id) = (viewer(ctx)?.organization.id, visible_dock(ctx, &id)?);
        let current = load_dock(ctx, dock_id).await?;
        let key = SecretString::from(api_key);
        check_key(
            scheduler,
            &current.provider,
            current.endpoint.as_deref(),
            &key,
        )
        .await?;
        let act = Act {
            area: Area::Docks,
            action: "dock.update_credentials",
            target_type: "Dock",
            target_id: Some(dock_id),
        };
        let keyring = scheduler.engine().keyring();
        let row = audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
            if !credentials::update_dock_key(conn, keyring, org_id, dock_id, &key).await? {
                return Err(ApiError::NotFound("no such dock".into()));
            }
            let row = dock::by_ids(conn, &[dock_id])
                .await?
                .pop()
                .ok_or_else(|| ApiError::NotFound("no such dock".into()))?;
            Ok((row, None))
        })
        .await?;
        Ok(DockNode(Arc::new(row)))
    }

    /// Soft-deletes a dock: it stops syncing and vanishes from lists. Needs docks FULL.
    async fn delete_dock(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        let dock_id = visible_dock(ctx, &id)?;
        let act = Act {
            area: Area::Docks,
            action: "dock.delete",
            target_type: "Dock",
            target_id: Some(dock_id),
        };
        audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
            if !credentials::delete_dock(conn, dock_id).await? {
                return Err(ApiError::NotFound("no such dock".into()));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }

    /// Starts a sync now and returns its run at once (the running one, if a sync is under way).
    /// Needs docks FULL.
    async fn sync_dock(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<SyncRunNode> {
        let scheduler = scheduler(ctx)?;
        let (org_id, dock_id) = (viewer(ctx)?.organization.id, visible_dock(ctx, &id)?);
        let act = Act {
            area: Area::Docks,
            action: "dock.sync",
            target_type: "Dock",
            target_id: Some(dock_id),
        };
        audited(ctx, act, org_full(ctx, Area::Docks)?, async |_conn| {
            Ok(((), None))
        })
        .await?;
        let run = scheduler
            .sync_now(org_id, dock_id)
            .await
            .map_err(|e| match e {
                SyncNowError::NotFound => ApiError::NotFound("no such dock".into()),
                SyncNowError::Busy => ApiError::Conflict(
                    "the dock is being claimed by another replica; try again".into(),
                ),
                SyncNowError::Db(e) => ApiError::from(e),
            })?;
        Ok(SyncRunNode(Arc::new(run.run().clone())))
    }
}

fn scheduler<'a>(ctx: &Context<'a>) -> Result<&'a Scheduler, ApiError> {
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
        return Err(ApiError::NotFound("no such dock".into()));
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
        .ok_or_else(|| ApiError::NotFound("no such dock".into()))
}

/// Asks the provider whether `key` works; its refusal comes back with the key redacted.
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
    let mut session = engine.session(adapter.as_ref(), endpoint, key);
    adapter.verify(&mut session).await.map_err(|e| {
        let reason = redact(&e.to_string(), key);
        if e.is_unauthorized() {
            ApiError::BadUserInput(format!("the provider refused the key: {reason}"))
        } else {
            ApiError::BadUserInput(format!(
                "the provider could not be reached to check the key: {reason}"
            ))
        }
    })
}

fn valid_endpoint(endpoint: &str) -> Result<&str, ApiError> {
    let ok = (endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        && endpoint.len() <= 300;
    if !ok {
        return Err(ApiError::BadUserInput(
            "`endpoint` must be an http(s) URL".into(),
        ));
    }
    Ok(endpoint.trim_end_matches('/'))
}
