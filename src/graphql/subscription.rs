//! The subscription roots (`docs/events.md`): live events from this replica's [`EventBus`].
//!
//! Each subscription subscribes to the bus first, then checks that what it names exists for the
//! viewer (so no event between the check and the first delivery is lost), and filters every event
//! at delivery: the viewer's organization first, then what the viewer may see (a dock granted to
//! their team, a project of their client...). What the event shows is resolved with the viewer's
//! own permissions. When the bus lost events (its LISTEN connection dropped, or this subscriber fell
//! behind), the subscription yields an `EVENTS_MISSED` error and goes on: clients refetch.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, ID, Subscription as SubscriptionRoot};
use futures_util::stream;
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use uuid::Uuid;

use super::context::viewer;
use super::ids;
use super::types::action::load::ActionRunNode;
use super::types::events::{HealthEventNode, ProjectResourceEventNode, SyncEventNode};
use crate::auth::{Renewal, Standing, Viewer};
use crate::db::models::resource::{self, Kind};
use crate::db::models::{dock, link, project};
use crate::db::{Pool, RequestDb};
use crate::error::ApiError;
use crate::events::link::LinkChange;
use crate::events::{Delivery, Envelope, Event, EventBus};

/// The most resources one `resourceHealth` subscription may name.
const MAX_RESOURCE_IDS: usize = 500;

/// The subscription roots.
pub struct Subscription;

/// Live events, over the WebSocket (`/graphql/ws`, `graphql-transport-ws`) only. Each event is
/// resolved with the caller's permissions at the time it happens; a subscription ends with an
/// error when the caller loses access. An `EVENTS_MISSED` error means events were lost (the
/// subscription goes on): refetch what you show.
#[SubscriptionRoot]
impl Subscription {
    /// Sync events of one dock: every phase of every run, from now on.
    async fn dock_sync_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dock's global id; `NOT_FOUND` unless the caller may see it.")]
        dock_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SyncEventNode>> + use<>>
    {
        let viewer = viewer(ctx)?.clone();
        let (bus, pool) = bus_and_pool(ctx)?;
        let id = ids::decode_as(&dock_id, "Dock")?;
        let receiver = bus.subscribe();
        if !dock_exists(pool, &viewer, id).await? {
            return Err(ApiError::NotFound("no such dock".into()).into());
        }
        let live = Live::new(ctx, viewer);
        Ok(sync_events(receiver, pool.clone(), live, Some(id)))
    }

    /// Sync events of every dock the viewer may read, from now on.
    async fn sync_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<SyncEventNode>> + use<>>
    {
        let live = Live::new(ctx, viewer(ctx)?.clone());
        let (bus, pool) = bus_and_pool(ctx)?;
        Ok(sync_events(bus.subscribe(), pool.clone(), live, None))
    }

    /// Resources linked to or unlinked from a project, and its linked resources' status and name
    /// changes, from now on.
    async fn project_resources_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's global id; `NOT_FOUND` unless the caller may see it.")]
        project_id: ID,
    ) -> async_graphql::Result<
        impl Stream<Item = async_graphql::Result<ProjectResourceEventNode>> + use<>,
    > {
        let viewer = viewer(ctx)?.clone();
        let (bus, pool) = bus_and_pool(ctx)?;
        let id = ids::decode_as(&project_id, "Project")?;
        let receiver = bus.subscribe();
        if !project_exists(pool, &viewer, id).await? {
            return Err(ApiError::NotFound("no such project".into()).into());
        }
        let org = viewer.organization.id;
        Ok(deliveries(
            receiver,
            Live::new(ctx, viewer),
            move |envelope, viewer| match &envelope.event {
                Event::Link(e)
                    if e.org_id == org
                        && e.project_id == id
                        && viewer.visibility().sees_project(id) =>
                {
                    let event = e.clone();
                    Some(async move { Ok(ProjectResourceEventNode(event)) })
                }
                _ => None,
            },
        ))
    }

    /// Confirmed health transitions, from now on, of the resources the viewer may see: those
    /// linked to `projectId` (following links made and removed while subscribed) and/or those
    /// named in `resourceIds`; with neither, of every resource the viewer may see.
    async fn resource_health(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only resources linked to this project (`NOT_FOUND` unless visible).")]
        project_id: Option<ID>,
        #[graphql(
            desc = "Only these resources (at most 500; `NOT_FOUND` unless each is visible)."
        )]
        resource_ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<HealthEventNode>> + use<>>
    {
        let viewer = viewer(ctx)?.clone();
        let (bus, pool) = bus_and_pool(ctx)?;
        let project = project_id
            .map(|id| ids::decode_as(&id, "Project"))
            .transpose()?;
        let named = resource_ids.map(|ids| decode_resources(&ids)).transpose()?;
        let receiver = bus.subscribe();
        let linked = match project {
            Some(id) => Some(linked_resources(pool, &viewer, id).await?),
            None => None,
        };
        if let Some(named) = &named {
            check_resources(pool, &viewer, named).await?;
        }
        let named: Option<HashSet<Uuid>> = named.map(|n| n.into_iter().map(|(_, id)| id).collect());
        let org = viewer.organization.id;
        let pool = pool.clone();
        let mut linked = linked;
        let live = Live::new(ctx, viewer);
        Ok(deliveries(receiver, live, move |envelope, viewer| {
            match &envelope.event {
                Event::Link(e) if e.org_id == org && Some(e.project_id) == project => {
                    if let Some(linked) = linked.as_mut() {
                        match e.change {
                            LinkChange::Linked => {
                                linked.insert(e.resource_id);
                            }
                            LinkChange::Unlinked => {
                                linked.remove(&e.resource_id);
                            }
                            LinkChange::StatusChanged | LinkChange::Renamed => {}
                        }
                    }
                    None
                }
                Event::Health(e) => {
                    let wanted = e.org_id == org
                        && viewer.visibility().sees_resource(e.resource_id, e.dock_id)
                        && linked.as_ref().is_none_or(|l| l.contains(&e.resource_id))
                        && named.as_ref().is_none_or(|n| n.contains(&e.resource_id));
                    if !wanted {
                        return None;
                    }
                    let (envelope, pool, event) = (envelope.clone(), pool.clone(), e.clone());
                    Some(async move {
                        let row = envelope.health_resource(&pool).await?;
                        Ok(row
                            .filter(|r| r.common.org_id == org && r.common.dock_id == event.dock_id)
                            .map(|resource| HealthEventNode { event, resource }))
                    })
                }
                _ => None,
            }
        })
        .filter_map(|item| async move { item.transpose() }))
    }

    /// Provider action runs (`performResourceAction`), from now on: each run as it starts and as it
    /// finishes, of every resource the viewer may see, or of `resourceId` only.
    async fn action_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only this resource's runs (`NOT_FOUND` unless visible).")]
        resource_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ActionRunNode>> + use<>>
    {
        let viewer = viewer(ctx)?.clone();
        let (bus, pool) = bus_and_pool(ctx)?;
        let named = resource_id
            .map(|id| ids::decode_resource(&id))
            .transpose()?;
        let receiver = bus.subscribe();
        if let Some(named) = named {
            check_resources(pool, &viewer, &[named]).await?;
        }
        let only = named.map(|(_, id)| id);
        let org = viewer.organization.id;
        let pool = pool.clone();
        let live = Live::new(ctx, viewer);
        Ok(deliveries(receiver, live, move |envelope, viewer| {
            let Event::Action(e) = &envelope.event else {
                return None;
            };
            let wanted = e.org_id == org
                && only.is_none_or(|id| id == e.resource_id)
                && viewer.visibility().sees_resource(e.resource_id, e.dock_id);
            if !wanted {
                return None;
            }
            let (envelope, pool, status) = (envelope.clone(), pool.clone(), e.status.clone());
            Some(async move {
                let run = envelope.action_run(&pool).await.map_err(ApiError::from)?;
                // A run that moved on since this event is delivered by the later event, once.
                Ok(run
                    .filter(|r| r.org_id == org && r.status == status)
                    .map(ActionRunNode))
            })
        })
        .filter_map(|item| async move { item.transpose() }))
    }
}

fn bus_and_pool<'a>(ctx: &Context<'a>) -> Result<(&'a EventBus, &'a Pool), ApiError> {
    let missing = |what: &str| ApiError::internal(anyhow::anyhow!("schema data without {what}"));
    Ok((
        ctx.data::<EventBus>()
            .map_err(|_| missing("an event bus"))?,
        ctx.data::<Pool>().map_err(|_| missing("a pool"))?,
    ))
}

/// Sync events the viewer may see, of one dock or of all.
fn sync_events(
    receiver: Receiver<Delivery>,
    pool: Pool,
    live: Live,
    only: Option<Uuid>,
) -> impl Stream<Item = async_graphql::Result<SyncEventNode>> {
    let org = live.viewer.organization.id;
    deliveries(receiver, live, move |envelope, viewer| {
        let Event::Sync(event) = &envelope.event else {
            return None;
        };
        let wanted = event.org_id == org
            && only.is_none_or(|dock| dock == event.dock_id)
            && viewer.visibility().sees_dock(event.dock_id);
        if !wanted {
            return None;
        }
        let (envelope, pool, event) = (envelope.clone(), pool.clone(), event.clone());
        Some(async move {
            let (dock, _) = envelope.sync_objects(&pool).await.map_err(ApiError::from)?;
            match dock {
                Some(dock) if dock.org_id == org => Ok(Some(SyncEventNode {
                    envelope,
                    event,
                    dock,
                })),
                // Deleted since: nothing to show.
                _ => Ok(None),
            }
        })
    })
    .filter_map(|item| async move { item.transpose() })
}

/// A subscription's viewer, as its connection's [`Renewal`] last checked it.
pub struct Live {
    viewer: Viewer,
    renewal: Option<Renewal>,
    /// The operation's database handle: what each event's nested objects are loaded through.
    db: Option<Arc<RequestDb>>,
}

impl Live {
    fn new(ctx: &Context<'_>, viewer: Viewer) -> Self {
        Self {
            viewer,
            renewal: ctx.data_opt::<Renewal>().cloned(),
            db: ctx.data_opt::<Arc<RequestDb>>().cloned(),
        }
    }

    /// The viewer now; an error when the caller may no longer act in the organization.
    fn current(&mut self) -> Result<&Viewer, ApiError> {
        if let Some(Renewal(standing)) = &mut self.renewal {
            if let Some(revoked) = standing.borrow().error() {
                return Err(revoked);
            }
            if standing.has_changed().unwrap_or(false)
                && let Standing::Current(renewed) = &*standing.borrow_and_update()
            {
                if renewed.organization.id != self.viewer.organization.id
                    || renewed.user.id != self.viewer.user.id
                {
                    return Err(ApiError::Forbidden(
                        "the subscription's organization is no longer the caller's".into(),
                    ));
                }
                self.viewer = (**renewed).clone();
                if let Some(db) = &self.db {
                    db.follow(self.viewer.visibility().clone());
                }
            }
        }
        Ok(&self.viewer)
    }
}

/// The bus's deliveries through `select`, given the viewer as of now: `None` skips an event; a
/// gap or falling behind becomes an `EVENTS_MISSED` error. Ends when the bus does, or with an
/// error when the viewer no longer authenticates.
fn deliveries<T, F, Fut>(
    receiver: Receiver<Delivery>,
    live: Live,
    select: F,
) -> impl Stream<Item = async_graphql::Result<T>>
where
    F: FnMut(&Arc<Envelope>, &Viewer) -> Option<Fut> + Send + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    T: Send + 'static,
{
    stream::unfold(Some((receiver, live, select)), |state| async move {
        let (mut receiver, mut live, mut select) = state?;
        loop {
            let item = match receiver.recv().await {
                Ok(Delivery::Event(envelope)) => match live.current() {
                    Ok(viewer) => match select(&envelope, viewer) {
                        Some(resolve) => resolve.await.map_err(Into::into),
                        None => continue,
                    },
                    // The caller lost access: say why, and end.
                    Err(e) => return Some((Err(e.into()), None)),
                },
                Ok(Delivery::Gap) => Err(missed("the event stream was interrupted")),
                Err(RecvError::Lagged(n)) => Err(missed(&format!("{n} events were dropped"))),
                Err(RecvError::Closed) => return None,
            };
            return Some((item, Some((receiver, live, select))));
        }
    })
    .boxed()
}

fn missed(why: &str) -> async_graphql::Error {
    ApiError::EventsMissed(format!("{why}; refetch what you show")).into()
}

/// True when dock `id` is live and the viewer may see it.
async fn dock_exists(pool: &Pool, viewer: &Viewer, id: Uuid) -> Result<bool, ApiError> {
    if !viewer.visibility().sees_dock(id) {
        return Ok(false);
    }
    let rows = viewer
        .scope()
        .transaction(pool, async |conn| dock::by_ids(conn, &[id]).await)
        .await?;
    Ok(rows
        .iter()
        .any(|d| d.org_id == viewer.organization.id && d.deleted_at.is_none()))
}

/// Decodes `resourceIds`: at most [`MAX_RESOURCE_IDS`], each a resource's id.
fn decode_resources(ids: &[ID]) -> Result<Vec<(Kind, Uuid)>, ApiError> {
    if ids.len() > MAX_RESOURCE_IDS {
        return Err(ApiError::BadUserInput(format!(
            "resourceIds names {} resources; at most {MAX_RESOURCE_IDS} are allowed",
            ids.len()
        )));
    }
    ids.iter().map(|id| ids::decode_resource(id)).collect()
}

/// Fails with `NOT_FOUND` unless every resource exists and the viewer may see it.
async fn check_resources(
    pool: &Pool,
    viewer: &Viewer,
    named: &[(Kind, Uuid)],
) -> Result<(), ApiError> {
    let visibility = viewer.visibility().clone();
    let found = viewer
        .scope()
        .transaction(pool, async |conn| {
            let mut found = HashSet::new();
            for kind in [Kind::Server, Kind::WebService, Kind::Domain, Kind::Database] {
                let ids: Vec<Uuid> = named
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, id)| *id)
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                for row in resource::by_ids(conn, kind, &ids).await? {
                    if visibility.sees_resource(row.common.id, row.common.dock_id) {
                        found.insert(row.common.id);
                    }
                }
            }
            Ok(found)
        })
        .await?;
    match named.iter().find(|(_, id)| !found.contains(id)) {
        Some((kind, id)) => Err(ApiError::NotFound(format!(
            "no resource with id `{}`",
            ids::encode(ids::type_name(*kind), *id).0
        ))),
        None => Ok(()),
    }
}

/// The resources linked to project `id`; `NOT_FOUND` unless the project is live and visible.
async fn linked_resources(
    pool: &Pool,
    viewer: &Viewer,
    id: Uuid,
) -> Result<HashSet<Uuid>, ApiError> {
    if !project_exists(pool, viewer, id).await? {
        return Err(ApiError::NotFound("no such project".into()));
    }
    let ids = viewer
        .scope()
        .transaction(pool, async |conn| link::resource_ids_of(conn, id).await)
        .await?;
    Ok(ids.into_iter().collect())
}

/// True when project `id` is live and the viewer may see it.
async fn project_exists(pool: &Pool, viewer: &Viewer, id: Uuid) -> Result<bool, ApiError> {
    if !viewer.visibility().sees_project(id) {
        return Ok(false);
    }
    let rows = viewer
        .scope()
        .transaction(pool, async |conn| project::by_ids(conn, &[id]).await)
        .await?;
    Ok(rows.iter().any(|p| p.org_id == viewer.organization.id))
}
