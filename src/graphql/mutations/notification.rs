//! `createNotificationChannel`, `updateNotificationChannel`, `deleteNotificationChannel`,
//! `testNotificationChannel`, `acknowledgeAlert`, `resolveAlert` (monitoring FULL each).
//!
//! A webhook's signing secret is generated here, returned once by the create mutation and stored
//! encrypted; a Slack URL is stored encrypted too. Only their last four characters are shown
//! again. A URL is checked by the outbound guard when it is given and again at every send.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::validate::{not_found, optional_id, valid_email, valid_name};
use super::{Act, audited, failed, org_full, permit, refusal};
use crate::auth::permissions::Area;
use crate::db::models::alert::{self, Handling, HandlingError};
use crate::db::models::notification::{self as q, ChannelUpdate, NewChannel, Routing, Target};
use crate::db::models::resource::Kind;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::enums::{AlertSeverity, NotificationChannelKind, ResourceKind};
use crate::graphql::ids;
use crate::graphql::types::alert::AlertNode;
use crate::graphql::types::notification::{NotificationChannelNode, NotificationDeliveryNode};
use crate::notify::Notifier;

const MAX_CHANNEL_NAME: usize = 100;
const MAX_URL: usize = 500;
const MAX_EMAIL: usize = 254;
const MAX_NOTE: usize = 1_000;
/// The most channels one organization may have: every alert is routed through each of them.
const MAX_CHANNELS: i64 = 50;

/// What `createNotificationChannel` takes.
#[derive(InputObject)]
pub struct CreateNotificationChannelInput {
    /// 1–100 characters (trimmed), unique among the organization's channels.
    pub name: String,
    /// Where it sends.
    pub kind: NotificationChannelKind,
    /// `WEBHOOK` and `SLACK`: the `http(s)` URL to `POST` to (at most 500 characters, no user
    /// name). Private and loopback addresses are refused unless the server allows them.
    pub url: Option<String>,
    /// `EMAIL`: the recipient's address.
    pub email: Option<String>,
    /// The least severe alert it is sent (default `WARNING`).
    pub min_severity: Option<AlertSeverity>,
    /// Only alerts of resources linked to this project.
    pub project_id: Option<ID>,
    /// Only alerts of resources of this kind.
    pub resource_kind: Option<ResourceKind>,
    /// Whether alerts are sent to it (default `true`).
    pub enabled: Option<bool>,
}

/// What `updateNotificationChannel` changes; omitted fields keep their value.
#[derive(InputObject)]
pub struct UpdateNotificationChannelInput {
    /// 1–100 characters (trimmed), unique among the organization's channels.
    pub name: Option<String>,
    /// A new URL for a `WEBHOOK` or `SLACK` channel (the webhook's signing secret is kept).
    pub url: Option<String>,
    /// A new recipient for an `EMAIL` channel.
    pub email: Option<String>,
    /// The least severe alert it is sent.
    pub min_severity: Option<AlertSeverity>,
    /// Only alerts of this project's resources; `null` removes the rule.
    pub project_id: MaybeUndefined<ID>,
    /// Only alerts of resources of this kind; `null` removes the rule.
    pub resource_kind: MaybeUndefined<ResourceKind>,
    /// Whether alerts are sent to it.
    pub enabled: Option<bool>,
}

/// The new channel, and for a webhook its signing secret — shown this once only.
#[derive(SimpleObject)]
pub struct CreateNotificationChannelPayload {
    /// The channel.
    pub channel: NotificationChannelNode,
    /// A `WEBHOOK`'s signing secret (`X-Stackgate-Signature`); never shown again (only
    /// `secretHint`). `null` for other kinds.
    pub signing_secret: Option<String>,
}

#[derive(Default)]
pub struct NotificationMutations;

fn act(action: &'static str, target_type: &'static str, target_id: Option<Uuid>) -> Act<'static> {
    Act {
        area: Area::Monitoring,
        action,
        target_type,
        target_id,
    }
}

#[Object]
impl NotificationMutations {
    /// Creates a notification channel: alerts of the organization matching its rules are sent
    /// to it from now on. For a `WEBHOOK` the payload carries its signing secret, shown this
    /// once. `BAD_USER_INPUT` for a bad or refused URL or address (or an `EMAIL` channel on a
    /// server without an SMTP relay, or an organization with 50 channels already); `CONFLICT` for a name in use; `NOT_FOUND` for a project
    /// the caller cannot see. Needs monitoring FULL.
    async fn create_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel to create.")] input: CreateNotificationChannelInput,
    ) -> async_graphql::Result<CreateNotificationChannelPayload> {
        let act = act("notification_channel.create", "NotificationChannel", None);
        permit(ctx, &act, org_full(ctx, Area::Monitoring)?).await?;
        let org_id = viewer(ctx)?.organization.id;
        let checked = async {
            let notifier = notifier(ctx)?;
            let name = valid_name(&input.name, MAX_CHANNEL_NAME)?;
            let project_id = optional_id(input.project_id.as_ref(), "Project")?;
            Ok((notifier, name, project_id))
        }
        .await;
        let (notifier, name, project_id) = match checked {
            Ok(v) => v,
            Err(e) => return Err(failed(ctx, &act, e).await.into()),
        };
        let signing = (input.kind == NotificationChannelKind::Webhook).then(new_secret);
        let url = input.url.map(SecretString::from);
        let target = match target(
            notifier,
            input.kind,
            url.as_ref(),
            input.email.as_deref(),
            signing.as_ref(),
        ) {
            Ok(t) => t,
            Err(e) => return Err(failed(ctx, &act, e).await.into()),
        };
        let new = NewChannel {
            org_id,
            name,
            target,
            routing: Routing {
                min_severity: input
                    .min_severity
                    .unwrap_or(AlertSeverity::Warning)
                    .as_str(),
                project_id,
                resource_kind: input.resource_kind.map(|k| Kind::from(k).as_str()),
            },
            enabled: input.enabled.unwrap_or(true),
        };
        let conflict = format!("a notification channel named `{name}` exists");
        let keyring = notifier.keyring();
        let row = audited(ctx, act, true, async |conn| {
            if q::channels_count(conn, org_id).await? >= MAX_CHANNELS {
                return Err(ApiError::BadUserInput(format!(
                    "an organization has at most {MAX_CHANNELS} notification channels"
                )));
            }
            let id = q::create_channel(conn, keyring, &new)
                .await
                .map_err(|e| refusal(e, &conflict, "no such project"))?;
            let row = q::channels_by_ids(conn, &[id])
                .await?
                .pop()
                .ok_or_else(|| not_found("notification channel"))?;
            Ok((row, Some(id)))
        })
        .await?;
        Ok(CreateNotificationChannelPayload {
            channel: NotificationChannelNode(Arc::new(row)),
            signing_secret: signing.map(|s| s.expose_secret().to_owned()),
        })
    }

    /// Changes a channel's name, target or rules and returns it. `NOT_FOUND` for a channel (or
    /// project) the caller cannot see; `BAD_USER_INPUT` for a target of another kind or a bad
    /// one; `CONFLICT` for a name in use. Needs monitoring FULL.
    async fn update_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel's id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateNotificationChannelInput,
    ) -> async_graphql::Result<NotificationChannelNode> {
        let channel_id = ids::decode_as(&id, "NotificationChannel")?;
        let org_id = viewer(ctx)?.organization.id;
        let act = act(
            "notification_channel.update",
            "NotificationChannel",
            Some(channel_id),
        );
        permit(ctx, &act, org_full(ctx, Area::Monitoring)?).await?;
        let notifier = match notifier(ctx) {
            Ok(n) => n,
            Err(e) => return Err(failed(ctx, &act, e).await.into()),
        };
        let checked = async {
            let name = input
                .name
                .as_deref()
                .map(|n| valid_name(n, MAX_CHANNEL_NAME))
                .transpose()?;
            let project_id = match &input.project_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(p) => Some(Some(ids::decode_as(p, "Project")?)),
            };
            let resource_kind = match &input.resource_kind {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(k) => Some(Some(Kind::from(*k).as_str())),
            };
            Ok::<_, ApiError>((name, project_id, resource_kind))
        }
        .await;
        let (name, project_id, resource_kind) = match checked {
            Ok(v) => v,
            Err(e) => return Err(failed(ctx, &act, e).await.into()),
        };
        let url = input.url.map(SecretString::from);
        let keyring = notifier.keyring();
        let conflict = "a notification channel with that name exists".to_owned();
        let row = audited(ctx, act, true, async |conn| {
            let current = q::channels_by_ids(conn, &[channel_id])
                .await?
                .pop()
                .filter(|c| c.org_id == org_id)
                .ok_or_else(|| not_found("notification channel"))?;
            let kind = NotificationChannelKind::from_word(&current.kind);
            let new_target = match (&url, &input.email) {
                (None, None) => None,
                _ => Some(retarget(
                    notifier,
                    kind,
                    url.as_ref(),
                    input.email.as_deref(),
                )?),
            };
            let update = ChannelUpdate {
                name,
                target: new_target,
                min_severity: input.min_severity.map(AlertSeverity::as_str),
                project_id,
                resource_kind,
                enabled: input.enabled,
            };
            if !q::update_channel(conn, keyring, (org_id, channel_id), &update)
                .await
                .map_err(|e| refusal(e, &conflict, "no such project"))?
            {
                return Err(not_found("notification channel"));
            }
            let row = q::channels_by_ids(conn, &[channel_id])
                .await?
                .pop()
                .ok_or_else(|| not_found("notification channel"))?;
            Ok((row, None))
        })
        .await?;
        Ok(NotificationChannelNode(Arc::new(row)))
    }

    /// Deletes a channel and its delivery log; returns its id. `NOT_FOUND` for a channel the
    /// caller cannot see. Needs monitoring FULL.
    async fn delete_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let channel_id = ids::decode_as(&id, "NotificationChannel")?;
        let act = act(
            "notification_channel.delete",
            "NotificationChannel",
            Some(channel_id),
        );
        audited(ctx, act, org_full(ctx, Area::Monitoring)?, async |conn| {
            if !q::delete_channel(conn, channel_id).await? {
                return Err(not_found("notification channel"));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }

    /// Sends a test message to a channel now, once (no retries), and returns its delivery —
    /// `DELIVERED`, or `FAILED` with `lastError` — which stays in the channel's log. `NOT_FOUND`
    /// for a channel the caller cannot see. Needs monitoring FULL.
    async fn test_notification_channel(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The channel's id.")] id: ID,
    ) -> async_graphql::Result<NotificationDeliveryNode> {
        let channel_id = ids::decode_as(&id, "NotificationChannel")?;
        let org_id = viewer(ctx)?.organization.id;
        let act = act(
            "notification_channel.test",
            "NotificationChannel",
            Some(channel_id),
        );
        permit(ctx, &act, org_full(ctx, Area::Monitoring)?).await?;
        let notifier = match notifier(ctx) {
            Ok(n) => n,
            Err(e) => return Err(failed(ctx, &act, e).await.into()),
        };
        // The pooled read transaction ends first: the send holds no database connection.
        super::pool(ctx).await?;
        let tested = notifier
            .test(org_id, channel_id)
            .await
            .map_err(|e| refusal(e, "", "no such notification channel"));
        let delivery_id = match tested {
            Ok((id, _)) => id,
            Err(e) => return Err(failed(ctx, &act, e).await.into()),
        };
        let row = audited(ctx, act, true, async |conn| {
            let row = q::deliveries_by_ids(conn, &[delivery_id])
                .await?
                .pop()
                .ok_or_else(|| not_found("notification delivery"))?;
            Ok((row, None))
        })
        .await?;
        Ok(NotificationDeliveryNode(Arc::new(row)))
    }

    /// Acknowledges an open alert: records who, when and the note, and returns the alert.
    /// `NOT_FOUND` for an alert the caller cannot see; `CONFLICT` when it is already
    /// acknowledged or resolved. Needs monitoring FULL.
    async fn acknowledge_alert(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The alert's id.")] id: ID,
        #[graphql(desc = "Why, or what is being done (at most 1000 characters).")] note: Option<
            String,
        >,
    ) -> async_graphql::Result<AlertNode> {
        handle(ctx, &id, Handling::Acknowledge, note.as_deref()).await
    }

    /// Resolves an open alert by hand: records who, when and the note, notifies its channels
    /// (`RESOLVED`), and returns the alert. The monitor opens a new alert at the resource's next
    /// bad transition. `NOT_FOUND` for an alert the caller cannot see; `CONFLICT` when it is
    /// already resolved. Needs monitoring FULL.
    async fn resolve_alert(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The alert's id.")] id: ID,
        #[graphql(desc = "How it was resolved (at most 1000 characters).")] note: Option<String>,
    ) -> async_graphql::Result<AlertNode> {
        handle(ctx, &id, Handling::Resolve, note.as_deref()).await
    }
}

async fn handle(
    ctx: &Context<'_>,
    id: &ID,
    how: Handling,
    note: Option<&str>,
) -> async_graphql::Result<AlertNode> {
    let alert_id = ids::decode_as(id, "Alert")?;
    let user = viewer(ctx)?.user.id;
    let action = match how {
        Handling::Acknowledge => "alert.acknowledge",
        Handling::Resolve => "alert.resolve",
    };
    let act = act(action, "Alert", Some(alert_id));
    permit(ctx, &act, org_full(ctx, Area::Monitoring)?).await?;
    let note = match valid_note(note) {
        Ok(n) => n,
        Err(e) => return Err(failed(ctx, &act, e).await.into()),
    };
    let row = audited(ctx, act, true, async |conn| {
        alert::handle(conn, alert_id, user, how, note)
            .await
            .map_err(|e| match e {
                HandlingError::NotFound => not_found("alert"),
                HandlingError::Db(e) => ApiError::from(e),
                other => ApiError::Conflict(other.to_string()),
            })?;
        let row = alert::by_ids(conn, &[alert_id])
            .await?
            .pop()
            .ok_or_else(|| not_found("alert"))?;
        Ok((row, None))
    })
    .await?;
    Ok(AlertNode(Arc::new(row)))
}

fn valid_note(note: Option<&str>) -> Result<Option<&str>, ApiError> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE) {
        return Err(ApiError::BadUserInput(format!(
            "`note` must be at most {MAX_NOTE} characters"
        )));
    }
    Ok(note)
}

fn notifier<'a>(ctx: &Context<'a>) -> Result<&'a Notifier, ApiError> {
    ctx.data::<Notifier>().map_err(|_| {
        ApiError::BadUserInput(
            "this server has no STACKGATE_ENCRYPTION_KEYS, so it cannot store channel secrets"
                .into(),
        )
    })
}

/// A webhook signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret() -> SecretString {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    SecretString::from(format!("whsec_{hex}"))
}

/// The target of a new channel of `kind`, checked.
fn target<'a>(
    notifier: &Notifier,
    kind: NotificationChannelKind,
    url: Option<&'a SecretString>,
    email: Option<&'a str>,
    signing: Option<&'a SecretString>,
) -> Result<Target<'a>, ApiError> {
    match (kind, signing) {
        (NotificationChannelKind::Webhook, Some(secret)) => {
            let url = valid_url(notifier, url)?;
            Ok(Target::Webhook {
                url: url.expose_secret(),
                secret,
            })
        }
        (NotificationChannelKind::Slack, _) => Ok(Target::Slack {
            url: valid_url(notifier, url)?,
        }),
        (NotificationChannelKind::Email, _) => valid_recipient(notifier, email),
        (NotificationChannelKind::Webhook, None) => Err(ApiError::internal(anyhow::anyhow!(
            "a webhook without a secret"
        ))),
    }
}

/// A replacement target for an existing channel of `kind` (a webhook keeps its secret: the
/// stored one is left as it is by passing only the URL).
fn retarget<'a>(
    notifier: &Notifier,
    kind: NotificationChannelKind,
    url: Option<&'a SecretString>,
    email: Option<&'a str>,
) -> Result<Target<'a>, ApiError> {
    let wrong = |field: &str| {
        ApiError::BadUserInput(format!(
            "`{field}` does not apply to a {} channel",
            kind.as_str()
        ))
    };
    match kind {
        NotificationChannelKind::Webhook | NotificationChannelKind::Slack if email.is_some() => {
            Err(wrong("email"))
        }
        NotificationChannelKind::Email if url.is_some() => Err(wrong("url")),
        NotificationChannelKind::Webhook => Err(ApiError::BadUserInput(
            "a webhook's URL cannot be changed (its secret goes with it): create a new channel"
                .into(),
        )),
        NotificationChannelKind::Slack => Ok(Target::Slack {
            url: valid_url(notifier, url)?,
        }),
        NotificationChannelKind::Email => valid_recipient(notifier, email),
    }
}

fn valid_url<'a>(
    notifier: &Notifier,
    url: Option<&'a SecretString>,
) -> Result<&'a SecretString, ApiError> {
    let bad = |m: &str| ApiError::BadUserInput(format!("`url` {m}"));
    let url = url.ok_or_else(|| bad("is required for this kind"))?;
    if url.expose_secret().len() > MAX_URL {
        return Err(bad("must be at most 500 characters"));
    }
    crate::notify::send::check_url(url.expose_secret(), notifier.config().allow_private)
        .map_err(|e| bad(&format!("is refused: {}", e.message)))?;
    Ok(url)
}

fn valid_recipient<'a>(
    notifier: &Notifier,
    email: Option<&'a str>,
) -> Result<Target<'a>, ApiError> {
    if notifier.config().smtp.is_none() {
        return Err(ApiError::BadUserInput(
            "this server has no SMTP relay (STACKGATE_SMTP_ADDR), so it cannot send e-mail".into(),
        ));
    }
    let email = email.ok_or_else(|| ApiError::BadUserInput("`email` is required".into()))?;
    let email = valid_email(email)?;
    if email.len() > MAX_EMAIL
        || email
            .chars()
            .any(|c| c.is_control() || c == '<' || c == '>')
    {
        return Err(ApiError::BadUserInput(
            "`email` is not an email address".into(),
        ));
    }
    Ok(Target::Email { to: email })
}
