//! `notification_channels` and `notification_deliveries`: where an organization's alerts are
//! sent, and the log of each alert transition's delivery to each channel (`docs/health.md`,
//! "Notifications"). Delivery rows are written by the `alerts` trigger of the notifications
//! migration; the worker (`crate::notify`) claims, sends and records them.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::SecretString;
use uuid::Uuid;

use crate::crypto::{self, Binding, Keyring};
use crate::db::DbError;

/// A channel, without its encrypted secret.
#[derive(QueryableByName, Clone, Debug)]
pub struct ChannelRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// `webhook`, `slack` or `email`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub url: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email_to: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub secret_hint: Option<String>,
    #[diesel(sql_type = Text)]
    pub min_severity: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub project_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub resource_kind: Option<String>,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

const CHANNEL_COLUMNS: &str = "c.id, c.org_id, c.name, c.kind, c.url, c.email_to, c.secret_hint, \
     c.min_severity, c.project_id, c.resource_kind, c.enabled, c.created_at, c.updated_at";

/// Channels by id (of the scope's organization).
pub async fn channels_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<ChannelRow>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(format!(
        "select {CHANNEL_COLUMNS} from notification_channels c where c.id = any($1)"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?)
}

/// A page of `org_id`'s channels by `(name, id)`.
pub async fn channels_page(
    conn: &mut AsyncPgConnection,
    org_id: Uuid,
    after: Option<(String, Uuid)>,
    limit: i64,
) -> Result<Vec<ChannelRow>, DbError> {
    let (name, id) = after.unzip();
    Ok(diesel::sql_query(format!(
        "select {CHANNEL_COLUMNS} from notification_channels c where c.org_id = $1 \
         and ($2::text is null or (c.name, c.id) > ($2, $3)) order by c.name, c.id limit $4"
    ))
    .bind::<SqlUuid, _>(org_id)
    .bind::<Nullable<Text>, _>(name)
    .bind::<Nullable<SqlUuid>, _>(id)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// How many channels `org_id` has.
pub async fn channels_count(conn: &mut AsyncPgConnection, org_id: Uuid) -> Result<i64, DbError> {
    let count: Count =
        diesel::sql_query("select count(*) as n from notification_channels where org_id = $1")
            .bind::<SqlUuid, _>(org_id)
            .get_result(conn)
            .await?;
    Ok(count.n)
}

/// Where a channel sends, with its secret in plain text (encrypted here, before it is stored).
pub enum Target<'a> {
    /// A signed webhook: its URL and signing secret.
    Webhook {
        url: &'a str,
        secret: &'a SecretString,
    },
    /// A Slack-compatible incoming webhook: its URL is the secret.
    Slack { url: &'a SecretString },
    /// E-mail to one address.
    Email { to: &'a str },
}

/// Routing rules: alerts at least `min_severity`, of `project_id`'s resources and of
/// `resource_kind` when given.
pub struct Routing<'a> {
    pub min_severity: &'a str,
    pub project_id: Option<Uuid>,
    pub resource_kind: Option<&'a str>,
}

/// A channel to create.
pub struct NewChannel<'a> {
    pub org_id: Uuid,
    pub name: &'a str,
    pub target: Target<'a>,
    pub routing: Routing<'a>,
    pub enabled: bool,
}

/// The stored form of a target: `(kind, url, email_to, secret)`.
fn stored<'a>(
    target: &Target<'a>,
) -> (
    &'static str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a SecretString>,
) {
    match target {
        Target::Webhook { url, secret } => ("webhook", Some(url), None, Some(*secret)),
        Target::Slack { url } => ("slack", None, None, Some(*url)),
        Target::Email { to } => ("email", None, Some(to), None),
    }
}

/// Inserts a channel with its secret encrypted (bound to the new row); returns its id. A name in
/// use is a unique violation; an unknown project a foreign-key one.
pub async fn create_channel(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    channel: &NewChannel<'_>,
) -> Result<Uuid, DbError> {
    let id = Uuid::new_v4();
    let (kind, url, email_to, secret) = stored(&channel.target);
    let binding = Binding::new(channel.org_id, id, crypto::NOTIFICATION_SECRET);
    let encrypted = secret.map(|s| keyring.encrypt_str(s, binding));
    diesel::sql_query(
        "insert into notification_channels (id, org_id, name, kind, url, email_to, \
           encrypted_secret, secret_hint, min_severity, project_id, resource_kind, enabled) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(channel.org_id)
    .bind::<Text, _>(channel.name)
    .bind::<Text, _>(kind)
    .bind::<Nullable<Text>, _>(url)
    .bind::<Nullable<Text>, _>(email_to)
    .bind::<Nullable<Bytea>, _>(encrypted)
    .bind::<Nullable<Text>, _>(secret.and_then(crypto::hint))
    .bind::<Text, _>(channel.routing.min_severity)
    .bind::<Nullable<SqlUuid>, _>(channel.routing.project_id)
    .bind::<Nullable<Text>, _>(channel.routing.resource_kind)
    .bind::<Bool, _>(channel.enabled)
    .execute(conn)
    .await?;
    Ok(id)
}

/// What an update changes; `None` keeps a field. The target replaces the old one only when of
/// the channel's kind (the caller checks).
#[derive(Default)]
pub struct ChannelUpdate<'a> {
    pub name: Option<&'a str>,
    pub target: Option<Target<'a>>,
    pub min_severity: Option<&'a str>,
    pub project_id: Option<Option<Uuid>>,
    pub resource_kind: Option<Option<&'a str>>,
    pub enabled: Option<bool>,
}

/// Updates a channel of `org_id`; false when there is no such channel.
pub async fn update_channel(
    conn: &mut AsyncPgConnection,
    keyring: &Keyring,
    (org_id, id): (Uuid, Uuid),
    update: &ChannelUpdate<'_>,
) -> Result<bool, DbError> {
    let target = update.target.as_ref().map(stored);
    let binding = Binding::new(org_id, id, crypto::NOTIFICATION_SECRET);
    let secret = target.and_then(|t| t.3);
    let encrypted = secret.map(|s| keyring.encrypt_str(s, binding));
    let n = diesel::sql_query(
        "update notification_channels set \
           name = coalesce($3, name), \
           url = case when $4 then $5 else url end, \
           email_to = case when $4 then $6 else email_to end, \
           encrypted_secret = case when $4 then $7 else encrypted_secret end, \
           secret_hint = case when $4 then $8 else secret_hint end, \
           min_severity = coalesce($9, min_severity), \
           project_id = case when $10 then $11 else project_id end, \
           resource_kind = case when $12 then $13 else resource_kind end, \
           enabled = coalesce($14, enabled) \
         where org_id = $1 and id = $2",
    )
    .bind::<SqlUuid, _>(org_id)
    .bind::<SqlUuid, _>(id)
    .bind::<Nullable<Text>, _>(update.name)
    .bind::<Bool, _>(target.is_some())
    .bind::<Nullable<Text>, _>(target.and_then(|t| t.1))
    .bind::<Nullable<Text>, _>(target.and_then(|t| t.2))
    .bind::<Nullable<Bytea>, _>(encrypted)
    .bind::<Nullable<Text>, _>(secret.and_then(crypto::hint))
    .bind::<Nullable<Text>, _>(update.min_severity)
    .bind::<Bool, _>(update.project_id.is_some())
    .bind::<Nullable<SqlUuid>, _>(update.project_id.flatten())
    .bind::<Bool, _>(update.resource_kind.is_some())
    .bind::<Nullable<Text>, _>(update.resource_kind.flatten())
    .bind::<Nullable<Bool>, _>(update.enabled)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// Deletes a channel and its delivery log; false when there is no such channel.
pub async fn delete_channel(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, DbError> {
    let n = diesel::sql_query("delete from notification_channels where id = $1")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// One delivery (with, in pages, its channel's total).
#[derive(QueryableByName, Clone, Debug)]
pub struct DeliveryRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub channel_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub alert_id: Option<Uuid>,
    /// `opened`, `resolved` or `test`.
    #[diesel(sql_type = Text)]
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    /// False for the one row [`deliveries_page`] gives a channel none of whose deliveries is on
    /// the page (a cursor past its oldest): it only carries the channel's total.
    #[diesel(sql_type = Bool)]
    pub in_page: bool,
}

super::keyset::page_row!(DeliveryRow, channel_id);

const DELIVERY_COLUMNS: &str = "id, org_id, channel_id, alert_id, event, status, attempts, \
     next_attempt_at, last_error, delivered_at, created_at, updated_at";

/// Deliveries by id (of the scope's organization).
pub async fn deliveries_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<DeliveryRow>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(diesel::sql_query(format!(
        "select {DELIVERY_COLUMNS}, 1::bigint as total, true as in_page from notification_deliveries \
         where id = any($1)"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?)
}

/// Deliveries of each of `channels`, newest first (`created_at desc, id desc`), after the keyset
/// position, at most `limit` each, with each channel's total (also when none of its deliveries is
/// on the page: see [`DeliveryRow::in_page`]): one statement.
pub async fn deliveries_page(
    conn: &mut AsyncPgConnection,
    channels: &[Uuid],
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(diesel::sql_query(super::keyset::pages_sql(
        DELIVERY_COLUMNS,
        "from notification_deliveries where channel_id = any($1)",
        "channel_id",
        "created_at desc, id desc",
        "$2::timestamptz is null or (created_at, id) < ($2, $3)",
        "$4",
    ))
    .bind::<Array<SqlUuid>, _>(channels)
    .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
    .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?)
}

/// A delivery claimed by a worker.
#[derive(QueryableByName, Clone, Copy, Debug)]
pub struct Claim {
    #[diesel(sql_type = SqlUuid, column_name = claimed_delivery_id)]
    pub delivery_id: Uuid,
    #[diesel(sql_type = SqlUuid, column_name = claimed_org_id)]
    pub org_id: Uuid,
}

/// Claims up to `limit` due deliveries of every organization for `owner`, leased for `lease`
/// (`stackgate_claim_due_notifications`). Run outside any organization scope.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    owner: &str,
    lease: std::time::Duration,
    limit: i32,
) -> Result<Vec<Claim>, DbError> {
    let seconds = i32::try_from(lease.as_secs().max(1)).unwrap_or(86_400);
    Ok(diesel::sql_query(
        "select claimed_delivery_id, claimed_org_id from stackgate_claim_due_notifications($1, $2, $3)",
    )
    .bind::<Text, _>(owner)
    .bind::<Integer, _>(seconds)
    .bind::<Integer, _>(limit)
    .load(conn)
    .await?)
}

/// Everything needed to send one claimed delivery: the channel's target (secret still
/// encrypted) and the alert with its resource's name.
#[derive(QueryableByName, Clone)]
pub struct Job {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub org_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub channel_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub channel_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub url: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub email_to: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    pub encrypted_secret: Option<Vec<u8>>,
    #[diesel(sql_type = Bool)]
    pub enabled: bool,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub alert_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub severity: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub message: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub resource_kind: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub resource_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub resource_name: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub opened_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub resolved_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.id)
            .field("channel_id", &self.channel_id)
            .field("kind", &self.kind)
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// The delivery `id` if `owner` still holds its lease and it is pending.
pub async fn job(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: &str,
) -> Result<Option<Job>, DbError> {
    Ok(diesel::sql_query(
        "select d.id, d.org_id, d.channel_id, d.event, d.attempts, c.kind, c.name as channel_name, \
                c.url, c.email_to, c.encrypted_secret, c.enabled, d.alert_id, a.severity, a.message, \
                a.resource_kind, a.resource_id, a.opened_at, a.resolved_at, \
                coalesce((select s.name from servers s where a.resource_kind = 'server' and s.id = a.resource_id), \
                         (select w.name from web_services w where a.resource_kind = 'web_service' and w.id = a.resource_id), \
                         (select m.name from domains m where a.resource_kind = 'domain' and m.id = a.resource_id), \
                         (select b.name from databases b where a.resource_kind = 'database' and b.id = a.resource_id)) \
                  as resource_name \
           from notification_deliveries d \
           join notification_channels c on c.id = d.channel_id \
           left join alerts a on a.id = d.alert_id \
          where d.id = $1 and d.lease_owner = $2 and d.status = 'pending'",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(owner)
    .get_result(conn)
    .await
    .map(Some)
    .or_else(|e| match e {
        diesel::result::Error::NotFound => Ok(None),
        e => Err(e),
    })?)
}

/// How an attempt ended.
pub struct Attempt<'a> {
    /// `delivered`, `failed` (no more attempts) or `pending` (retried at `next_attempt_at`).
    pub status: &'a str,
    /// Why it failed (never a secret), at most 500 characters; `None` keeps the last failure's.
    pub error: Option<&'a str>,
    pub next_attempt_at: DateTime<Utc>,
}

/// Records an attempt of a delivery `owner` holds and releases the lease; false when the lease
/// was lost (another replica may have sent it; nothing is recorded).
pub async fn record_attempt(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    owner: &str,
    attempt: &Attempt<'_>,
) -> Result<bool, DbError> {
    let error = attempt
        .error
        .map(|e| e.chars().take(500).collect::<String>());
    let n = diesel::sql_query(
        "update notification_deliveries set attempts = attempts + 1, status = $3, last_error = coalesce($4, last_error), \
           next_attempt_at = $5, delivered_at = case when $3 = 'delivered' then now() end, \
           lease_owner = null, lease_expires_at = null \
         where id = $1 and lease_owner = $2 and status = 'pending'",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(owner)
    .bind::<Text, _>(attempt.status)
    .bind::<Nullable<Text>, _>(error)
    .bind::<Timestamptz, _>(attempt.next_attempt_at)
    .execute(conn)
    .await?;
    Ok(n == 1)
}

/// A test message to `channel_id`, leased to `owner` for `lease` so that no worker claims it
/// while the caller sends it; returns its id.
pub async fn insert_test(
    conn: &mut AsyncPgConnection,
    (org_id, channel_id): (Uuid, Uuid),
    owner: &str,
    lease: std::time::Duration,
) -> Result<Uuid, DbError> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let seconds = i32::try_from(lease.as_secs().max(1)).unwrap_or(86_400);
    let row: Id = diesel::sql_query(
        "insert into notification_deliveries (org_id, channel_id, event, lease_owner, lease_expires_at) \
         values ($1, $2, 'test', $3, now() + $4 * interval '1 second') returning id",
    )
    .bind::<SqlUuid, _>(org_id)
    .bind::<SqlUuid, _>(channel_id)
    .bind::<Text, _>(owner)
    .bind::<Integer, _>(seconds)
    .get_result(conn)
    .await?;
    Ok(row.id)
}
