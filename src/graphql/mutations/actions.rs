//! `performResourceAction`: asking a resource's provider to do something to it (docs/actions.md).
//!
//! In order, each step before any side effect of the next: the idempotency key is checked; the
//! resource must be visible (`NOT_FOUND` otherwise, as for another organization's); the viewer
//! needs resources FULL on its dock (org-wide, or a team granted the dock at `full` whose role
//! has it; `FORBIDDEN`, audited); the provider must support the action for the resource's kind
//! (`BAD_USER_INPUT`); the organization's provider-call rate applies. Then one transaction
//! records the run `running` (or finds the run of the same idempotency key, and returns it
//! without calling the provider again), audits the request and publishes the run's event; the
//! provider is called with no transaction open; a second transaction records its answer and
//! publishes again. A failed call is a `FAILED` run, not an error: the run is the record.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ID, Object};
use diesel_async::AsyncPgConnection;

use super::dock::{dock_rate, scheduler};
use super::{Act, audited_in, failed, permit, pool};
use crate::auth::permissions::Area;
use crate::db::DbError;
use crate::db::models::action::{self, ActionRun, NewRun, Started};
use crate::db::models::resource::{self, Resource};
use crate::db::models::sync as sync_q;
use crate::error::ApiError;
use crate::events::{self, ActionEvent, Event};
use crate::graphql::context::viewer;
use crate::graphql::enums::ResourceAction;
use crate::graphql::ids;
use crate::graphql::types::action::load::ActionRunNode;
use crate::sync::{Action, Target};

/// A run still `running` after this long was left by a replica that stopped mid-call: the next
/// request in its organization closes it as failed (the provider call's deadline is far
/// shorter).
const STALE_AFTER: Duration = Duration::from_secs(300);

/// The longest idempotency key.
const MAX_KEY: usize = 100;

#[derive(Default)]
pub struct ActionMutations;

#[Object]
impl ActionMutations {
    /// Asks the resource's provider to perform `action` on it, waits for the provider's answer
    /// (bounded by the outbound timeout) and returns the run: `SUCCEEDED` when the provider
    /// accepted it (a reboot then takes its time; the next sync shows the resource's status),
    /// `FAILED` with the reason in `summary` when it refused or could not be reached. With an
    /// `idempotencyKey` used before in the organization, returns that run and asks nothing of
    /// the provider. Needs resources FULL on the resource's dock. `NOT_FOUND` for a resource
    /// the viewer cannot see; `BAD_USER_INPUT` for an action its provider does not support for
    /// its kind (see `Resource.availableActions`) or a bad key; `CONFLICT` while another
    /// action runs on the resource, or for a key used for a different resource or action;
    /// `RATE_LIMITED` past the organization's provider calls.
    async fn perform_resource_action(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The resource's id (a server, web service, domain or database).")]
        resource_id: ID,
        #[graphql(desc = "What to ask of the provider.")] action: ResourceAction,
        #[graphql(
            desc = "A key of your choosing (1 to 100 printable characters), unique per request: a retry with the same key returns the first request's run instead of acting twice."
        )]
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<ActionRunNode> {
        let key = idempotency_key.as_deref().map(valid_key).transpose()?;
        let (kind, id) = ids::decode_resource(&resource_id)?;
        let action = Action::from(action);
        let viewer = viewer(ctx)?;
        let org = viewer.organization.id;
        let (row, api_data) = visible_resource(ctx, kind, id).await?;
        let act = Act {
            area: Area::Resources,
            action: "resource.action",
            target_type: "Resource",
            target_id: Some(id),
        };
        let allowed = viewer.visibility().sees_api_data(row.common.dock_id);
        permit(ctx, &act, allowed).await?;
        let supported = crate::sync::supported_actions(&row.common.provider, kind);
        if !supported.contains(&action) {
            return Err(unsupported(&row, action, supported).into());
        }
        let scheduler = scheduler(ctx)?;
        if let Err(err) = dock_rate(ctx, org, None) {
            return Err(failed(ctx, &act, err).await.into());
        }
        let target = Target {
            kind,
            provider_resource_id: row.common.provider_resource_id.clone(),
            name: row.common.name.clone(),
            api_data,
        };
        let new = NewRun {
            org_id: org,
            kind,
            resource_id: id,
            dock_id: row.common.dock_id,
            action: action.as_str(),
            requested_by: Some(viewer.user.id),
            api_key_id: viewer.api_key_id,
            idempotency_key: key,
        };
        let (started, dock) = audited_in(ctx, org, act, async |conn| {
            let started = action::start(conn, &new, STALE_AFTER).await.map_err(busy)?;
            let dock = sync_q::dock_for_sync(conn, new.dock_id).await?;
            let run_id = match &started {
                Started::New(run) => {
                    publish(conn, run).await?;
                    run.id
                }
                Started::Existing(run) => same_request(run, &new)?,
            };
            Ok(((started, dock), Some(run_id)))
        })
        .await?;
        let run = match started {
            Started::Existing(run) => return Ok(node(run)),
            Started::New(run) => run,
        };
        let outcome = match &dock {
            Some(dock) => scheduler.engine().perform(dock, action, &target).await,
            None => Err(crate::sync::action::ActionError::Unavailable(
                "the resource's dock was deleted".into(),
            )),
        };
        let (succeeded, summary) = match &outcome {
            Ok(summary) => (true, summary.clone()),
            Err(e) => (false, e.to_string()),
        };
        let finished = viewer
            .scope()
            .transaction(pool(ctx).await?, async |conn| {
                let finished = action::finish(conn, run.id, succeeded, &summary).await?;
                if let Some(run) = &finished {
                    publish(conn, run).await?;
                }
                Ok::<_, DbError>(finished)
            })
            .await?;
        if !succeeded {
            let reason = ApiError::BadUserInput(format!("the provider did not do it: {summary}"));
            failed(ctx, &act, reason).await;
        }
        Ok(node(finished.unwrap_or(run)))
    }
}

fn node(run: ActionRun) -> ActionRunNode {
    ActionRunNode(Arc::new(run))
}

/// An idempotency key: 1 to [`MAX_KEY`] printable ASCII characters.
fn valid_key(key: &str) -> Result<&str, ApiError> {
    let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if key.is_empty() || key.len() > MAX_KEY || !printable {
        return Err(ApiError::BadUserInput(format!(
            "`idempotencyKey` must be 1 to {MAX_KEY} printable ASCII characters"
        )));
    }
    Ok(key)
}

/// The resource, when it exists and the viewer may see it, with its provider record (what an
/// action needs beyond its id), read in one transaction before anything is recorded.
async fn visible_resource(
    ctx: &Context<'_>,
    kind: resource::Kind,
    id: uuid::Uuid,
) -> Result<(Resource, serde_json::Value), ApiError> {
    let viewer = viewer(ctx)?;
    let visibility = viewer.visibility().clone();
    let (rows, data) = viewer
        .scope()
        .transaction(pool(ctx).await?, async |conn| {
            let rows = resource::by_ids(conn, kind, &[id]).await?;
            let data = resource::api_data(conn, kind, &[id]).await?;
            Ok::<_, DbError>((rows, data))
        })
        .await?;
    let row = rows
        .into_iter()
        .find(|r| {
            r.common.org_id == viewer.organization.id
                && visibility.sees_resource(r.common.id, r.common.dock_id)
        })
        .ok_or_else(|| ApiError::NotFound("no such resource".into()))?;
    let data = data
        .into_iter()
        .find_map(|(rid, value)| (rid == id).then_some(value).flatten())
        .unwrap_or(serde_json::Value::Null);
    Ok((row, data))
}

fn unsupported(row: &Resource, action: Action, supported: &[Action]) -> ApiError {
    let words: Vec<&str> = supported.iter().map(|&a| graphql_name(a.into())).collect();
    let offers = match words.is_empty() {
        true => "no actions".to_owned(),
        false => words.join(", "),
    };
    ApiError::BadUserInput(format!(
        "`{}` cannot {} a {}; it offers {offers} for it",
        row.common.provider,
        graphql_name(action.into()),
        row.kind().as_str()
    ))
}

/// An action's name in the schema (`POWER_OFF`).
fn graphql_name(action: ResourceAction) -> &'static str {
    use async_graphql::resolver_utils::EnumType;
    ResourceAction::items()
        .iter()
        .find(|item| item.value == action)
        .map_or("?", |item| item.name)
}

/// The id of the run an earlier request with the same key started, when it asked the same
/// thing (`CONFLICT` otherwise).
fn same_request(run: &ActionRun, new: &NewRun<'_>) -> Result<uuid::Uuid, ApiError> {
    if run.resource_id != new.resource_id || run.action != new.action {
        return Err(ApiError::Conflict(
            "this `idempotencyKey` was used for another resource or action".into(),
        ));
    }
    Ok(run.id)
}

/// A second running action on one resource is refused.
fn busy(err: DbError) -> ApiError {
    match err.is_unique_violation() {
        true => ApiError::Conflict("another action is running on this resource".into()),
        false => ApiError::from(err),
    }
}

async fn publish(conn: &mut AsyncPgConnection, run: &ActionRun) -> Result<(), DbError> {
    let event = Event::Action(ActionEvent {
        org_id: run.org_id,
        run_id: run.id,
        resource_id: run.resource_id,
        dock_id: run.dock_id,
        status: run.status.clone(),
    });
    events::publish(conn, &event).await
}
