//! `NotificationChannel` (where an organization's alerts are sent) and `NotificationDelivery`
//! (the log of each alert transition's delivery to a channel). Both need monitoring READ.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::alert::{AlertId, AlertNode};
use super::project::load::{ProjectId, ProjectNode};
use crate::auth::permissions::{Area, Level};
use crate::db::models::keyset;
use crate::db::models::notification::{self, ChannelRow, DeliveryRow};
use crate::db::models::resource::Kind;
use crate::error::ApiError;
use crate::events::{Reads, Topic};
use crate::graphql::connection::{Window, connection, paginate};
use crate::graphql::context::{load_one, run, viewer};
use crate::graphql::enums::{
    AlertSeverity, NotificationChannelKind, NotificationDeliveryStatus, NotificationEvent,
    ResourceKind,
};
use crate::graphql::ids;
use crate::graphql::loaders::{DbLoader, LoadError, Recorded, by_id_loader, group_by};

// Channels and deliveries change with `change` events of their tables, which touch everything.
by_id_loader!(
    /// Notification channels by id (monitoring READ is checked where they are reached).
    NotificationChannelId,
    ChannelRow,
    notification::channels_by_ids,
    |_, _| true,
    |_, _, reads| reads.add(Topic::Everything)
);
by_id_loader!(
    /// Notification deliveries by id (monitoring READ is checked where they are reached).
    NotificationDeliveryId,
    DeliveryRow,
    notification::deliveries_by_ids,
    |_, _| true,
    |_, _, reads| reads.add(Topic::Everything)
);

/// A page of one channel's deliveries, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeliveriesKey {
    pub channel: Uuid,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl Recorded for DeliveriesKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::Everything);
    }
}

impl Loader<DeliveriesKey> for DbLoader {
    type Value = Arc<keyset::Page<DeliveryRow>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load DeliveriesKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[DeliveriesKey],
    ) -> Result<HashMap<DeliveriesKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| (k.after, k.limit));
        self.db()
            .run(async |conn| {
                let mut found = HashMap::new();
                for ((after, limit), members) in groups {
                    let channels: Vec<Uuid> = members.iter().map(|k| k.channel).collect();
                    let mut pages = keyset::pages(
                        notification::deliveries_page(conn, &channels, after, limit).await?,
                    );
                    for channel in channels {
                        let page = pages.remove(&channel).unwrap_or_default();
                        let key = DeliveriesKey {
                            channel,
                            after,
                            limit,
                        };
                        found.insert(key, Arc::new(page));
                    }
                }
                Ok(found)
            })
            .await
            .map_err(Arc::new)
    }
}

/// True when the viewer has monitoring READ (from the org role or a team role).
pub fn sees_monitoring(ctx: &Context<'_>) -> Result<bool, ApiError> {
    Ok(viewer(ctx)?
        .effective_permissions()
        .allows(Area::Monitoring, Level::Read))
}

/// A notification channel.
pub struct NotificationChannelNode(pub Arc<ChannelRow>);

connection!(
    NotificationChannelConnection,
    NotificationChannelEdge,
    NotificationChannelNode,
    "NotificationChannel"
);

/// Where the organization's alerts are sent — a signed webhook, a Slack-compatible incoming
/// webhook or an e-mail address — and which alerts: at least `minSeverity`, and only of
/// `project`'s resources or of `resourceKind` when set. Visible with monitoring READ.
#[Object(name = "NotificationChannel")]
impl NotificationChannelNode {
    /// The channel's global id.
    pub async fn id(&self) -> ID {
        ids::encode("NotificationChannel", self.0.id)
    }
    /// The channel's name, unique in the organization.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Where it sends.
    async fn kind(&self) -> NotificationChannelKind {
        NotificationChannelKind::from_word(&self.0.kind)
    }
    /// A webhook's URL; `null` for other kinds (a Slack URL is a secret: see `secretHint`).
    async fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }
    /// An e-mail channel's recipient; `null` for other kinds.
    async fn email(&self) -> Option<&str> {
        self.0.email_to.as_deref()
    }
    /// The last four characters of a webhook's signing secret or of a Slack URL; the secret
    /// itself is shown once, by `createNotificationChannel`.
    async fn secret_hint(&self) -> Option<&str> {
        self.0.secret_hint.as_deref()
    }
    /// The least severe alert it is sent.
    async fn min_severity(&self) -> AlertSeverity {
        AlertSeverity::from_word(&self.0.min_severity)
    }
    /// When set, only alerts of resources linked to this project are sent.
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProjectNode>> {
        let Some(id) = self.0.project_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, ProjectId(id)).await?.map(ProjectNode))
    }
    /// When set, only alerts of resources of this kind are sent.
    async fn resource_kind(&self) -> Option<ResourceKind> {
        self.0
            .resource_kind
            .as_deref()
            .and_then(Kind::parse)
            .map(ResourceKind::from)
    }
    /// Whether alerts are sent to it.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The delivery log: every alert transition (and test message) sent to it, newest first.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many deliveries (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the deliveries after it.")] after: Option<String>,
    ) -> async_graphql::Result<NotificationDeliveryConnection> {
        let window = Window::<(DateTime<Utc>, Uuid)>::new(first, after.as_deref())?;
        let key = DeliveriesKey {
            channel: self.0.id,
            after: window.after,
            limit: window.limit(),
        };
        let page = load_one(ctx, key).await?.unwrap_or_default();
        let rows: Vec<NotificationDeliveryNode> = page
            .rows
            .iter()
            .cloned()
            .map(|r| NotificationDeliveryNode(Arc::new(r)))
            .collect();
        let (edges, info) = paginate(rows, window.first, window.after.is_some(), |d| {
            (d.0.created_at, d.0.id)
        });
        Ok(NotificationDeliveryConnection::new(edges, info, page.total))
    }
}

/// One delivery of a notification.
pub struct NotificationDeliveryNode(pub Arc<DeliveryRow>);

connection!(
    NotificationDeliveryConnection,
    NotificationDeliveryEdge,
    NotificationDeliveryNode,
    "NotificationDelivery"
);

/// One alert transition (or test message) sent to one channel: at most one per channel and
/// transition, however often it is retried. Visible with monitoring READ.
#[Object(name = "NotificationDelivery")]
impl NotificationDeliveryNode {
    /// The delivery's global id (also sent as the `X-Stackgate-Delivery` header).
    pub async fn id(&self) -> ID {
        ids::encode("NotificationDelivery", self.0.id)
    }
    /// The channel it is sent to.
    async fn channel(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<NotificationChannelNode>> {
        Ok(load_one(ctx, NotificationChannelId(self.0.channel_id))
            .await?
            .map(NotificationChannelNode))
    }
    /// The alert it announces; `null` for a test message.
    async fn alert(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AlertNode>> {
        let Some(id) = self.0.alert_id else {
            return Ok(None);
        };
        Ok(load_one(ctx, AlertId(id)).await?.map(AlertNode))
    }
    /// What it announces.
    async fn event(&self) -> NotificationEvent {
        NotificationEvent::from_word(&self.0.event)
    }
    /// Where it stands.
    async fn status(&self) -> NotificationDeliveryStatus {
        NotificationDeliveryStatus::from_word(&self.0.status)
    }
    /// How many times it was tried.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the latest failed attempt failed (never a secret or the remote end's answer), kept
    /// once a retry succeeds; `null` when no attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When it is tried next; `null` unless `PENDING`.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == "pending").then_some(self.0.next_attempt_at)
    }
    /// When the channel accepted it; `null` unless `DELIVERED`.
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    /// When it was queued (the alert's transition).
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// `Organization.notificationChannels`: by name; needs monitoring READ.
pub async fn channels_of(
    ctx: &Context<'_>,
    org: Uuid,
    (first, after): (Option<i32>, Option<&str>),
) -> Result<NotificationChannelConnection, ApiError> {
    if !sees_monitoring(ctx)? {
        return Err(ApiError::Forbidden(
            "notification channels need monitoring READ".into(),
        ));
    }
    let window = Window::<(String, Uuid)>::new(first, after)?;
    let counted = ctx.look_ahead().field("totalCount").exists();
    let (rows, total) = run(ctx, async |conn| {
        let rows =
            notification::channels_page(conn, org, window.after.clone(), window.limit()).await?;
        let total = match counted {
            true => notification::channels_count(conn, org).await?,
            false => 0,
        };
        Ok((rows, total))
    })
    .await?;
    let nodes: Vec<NotificationChannelNode> = rows
        .into_iter()
        .map(|r| NotificationChannelNode(Arc::new(r)))
        .collect();
    let (edges, info) = paginate(nodes, window.first, window.after.is_some(), |c| {
        (c.0.name.clone(), c.0.id)
    });
    Ok(NotificationChannelConnection::new(edges, info, total))
}
