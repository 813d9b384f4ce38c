//! Alert notifications (`docs/health.md`, "Notifications"): the background worker that delivers
//! alert transitions to an organization's channels.
//!
//! Opening or resolving an alert writes one `notification_deliveries` row per matching channel in
//! the same transaction (a trigger; routing by severity, project and resource kind), unique per
//! (channel, alert, event). Every replica runs a [`Notifier`] that claims due rows through
//! `stackgate_claim_due_notifications` (`FOR UPDATE SKIP LOCKED`, a lease outliving the send), so
//! no two replicas send the same row at once, then, per row: reads it in its organization's scope
//! (still leased to it), sends with no database connection held, and records the attempt in one
//! transaction that first checks the lease. A failure is retried after an exponential back-off
//! until [`NotifierConfig::max_attempts`]; a refused address or a disabled channel fails at once.
//! A delivered row is never sent again.
//!
//! - [`send`]: the message, the webhook signature, HTTP through the outbound guard.
//! - [`smtp`]: e-mail through the operator's relay.
//! - [`settings`]: `STACKGATE_NOTIFICATIONS`, `STACKGATE_NOTIFY_*` and `STACKGATE_SMTP_*`.

pub mod send;
pub mod settings;
pub mod smtp;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::crypto::{self, Binding, Keyring};
use crate::db::models::notification::{self as q, Attempt, Claim, Job};
use crate::db::{DbError, Pool, Scope};
use send::SendError;

/// The SMTP relay of e-mail channels.
#[derive(Clone, Debug)]
pub struct SmtpConfig {
    /// `host:port` of the relay.
    pub addr: String,
    /// The sender address.
    pub from: String,
}

/// Notification settings.
#[derive(Clone, Debug)]
pub struct NotifierConfig {
    /// This replica's name in `lease_owner` (unique per process).
    pub owner: String,
    /// How long to wait before looking again when nothing was due.
    pub idle: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Attempts of one delivery before it is given up.
    pub max_attempts: u32,
    /// The wait before the first retry; doubled for each further one, up to [`Self::max_backoff`].
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// The longest one send may take.
    pub timeout: Duration,
    /// Whether webhooks may point at loopback, private or link-local addresses (the server's
    /// `STACKGATE_ALLOW_PRIVATE_ENDPOINTS`).
    pub allow_private: bool,
    /// The relay of e-mail channels; without it they cannot be created.
    pub smtp: Option<SmtpConfig>,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        Self {
            owner: crate::sync::scheduler::default_owner(),
            idle: Duration::from_millis(500),
            concurrency: 16,
            max_attempts: 8,
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3_600),
            timeout: Duration::from_secs(10),
            allow_private: false,
            smtp: None,
        }
    }
}

impl NotifierConfig {
    /// A claim outlives the longest send and the write after it.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(30)
    }

    /// The wait after the `attempts`-th failed attempt (1 for the first).
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// What became of one claimed delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; tried again at the given time.
    Retrying(DateTime<Utc>),
    /// Failed for good.
    Failed,
    /// Not ours any more (lease lost, channel deleted): nothing sent or recorded.
    Skipped,
}

/// Delivers notifications; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    pool: Pool,
    keyring: Arc<Keyring>,
    config: Arc<NotifierConfig>,
    http: reqwest::Client,
    slots: Arc<Semaphore>,
}

/// A background delivery loop; stops when dropped or [`NotifierHandle::stop`]ped.
pub struct NotifierHandle {
    task: JoinHandle<()>,
}

impl NotifierHandle {
    /// Stops claiming (sends in flight finish in their own tasks).
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for NotifierHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Notifier {
    pub fn new(pool: Pool, keyring: Arc<Keyring>, config: NotifierConfig) -> Self {
        let http = send::client(config.allow_private, config.timeout);
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Self {
            pool,
            keyring,
            config: Arc::new(config),
            http,
            slots,
        }
    }

    /// The same notifier on another pool (the worker's own).
    pub fn with_pool(&self, pool: Pool) -> Self {
        Self {
            pool,
            ..self.clone()
        }
    }

    pub fn config(&self) -> &NotifierConfig {
        &self.config
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Delivers in a background task until stopped: claims whenever a slot is free, waits
    /// [`NotifierConfig::idle`] when nothing is due.
    pub fn spawn(self) -> NotifierHandle {
        let task = tokio::spawn(async move {
            loop {
                if let Ok(slot) = self.slots.acquire().await {
                    drop(slot);
                }
                let asked = self.slots.available_permits();
                let claimed = match self.run_once().await {
                    Ok(tasks) => tasks.len(),
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming due notifications failed");
                        0
                    }
                };
                if claimed < asked {
                    tokio::time::sleep(self.config.idle).await;
                }
            }
        });
        NotifierHandle { task }
    }

    /// Claims due deliveries for the free slots and starts a task for each; returns the tasks.
    pub async fn run_once(&self) -> Result<Vec<JoinHandle<Result<Outcome, DbError>>>, DbError> {
        let mut permits = Vec::new();
        while let Ok(permit) = self.slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        if permits.is_empty() {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(permits.len()).unwrap_or(i32::MAX);
        let claims = {
            let mut conn = self.pool.get().await?;
            q::claim_due(&mut conn, &self.config.owner, self.config.lease(), limit).await?
        };
        let mut tasks = Vec::with_capacity(claims.len());
        for (claim, permit) in claims.into_iter().zip(permits) {
            let this = self.clone();
            tasks.push(tokio::spawn(
                async move { this.deliver(claim, permit).await },
            ));
        }
        Ok(tasks)
    }

    async fn deliver(
        &self,
        claim: Claim,
        _permit: OwnedSemaphorePermit,
    ) -> Result<Outcome, DbError> {
        let outcome = self.attempt(claim, self.config.max_attempts).await;
        if let Err(e) = &outcome {
            tracing::warn!(delivery_id = %claim.delivery_id, error = %e, "a notification delivery failed to record");
        }
        outcome
    }

    /// Sends a test message to a channel now (once, no retries) and returns its delivery's id
    /// and outcome; the delivery log keeps it. Fails only on database errors.
    pub async fn test(&self, org_id: Uuid, channel_id: Uuid) -> Result<(Uuid, Outcome), DbError> {
        let owner = &self.config.owner;
        let lease = self.config.lease();
        let id = org_scope(org_id)
            .transaction(&self.pool, async |conn| {
                q::insert_test(conn, (org_id, channel_id), owner, lease).await
            })
            .await?;
        let claim = Claim {
            delivery_id: id,
            org_id,
        };
        Ok((id, self.attempt(claim, 1).await?))
    }

    /// One attempt of a leased delivery: read it, send it, record how it went.
    async fn attempt(&self, claim: Claim, max_attempts: u32) -> Result<Outcome, DbError> {
        let owner = self.config.owner.as_str();
        let scope = org_scope(claim.org_id);
        let job = scope
            .transaction(&self.pool, async |conn| {
                q::job(conn, claim.delivery_id, owner).await
            })
            .await?;
        let Some(job) = job else {
            return Ok(Outcome::Skipped);
        };
        let sent = match job.enabled {
            true => self.send(&job).await,
            false => Err(SendError::permanent("the channel is disabled")),
        };
        let now = Utc::now();
        let attempts = u32::try_from(job.attempts).unwrap_or(0) + 1;
        let (outcome, status, error) = match &sent {
            Ok(()) => (Outcome::Delivered, "delivered", None),
            Err(e) if e.permanent || attempts >= max_attempts => {
                (Outcome::Failed, "failed", Some(e.message.as_str()))
            }
            Err(e) => {
                let delay = chrono::Duration::from_std(self.config.retry_delay(attempts))
                    .unwrap_or_else(|_| chrono::Duration::hours(1));
                (
                    Outcome::Retrying(now + delay),
                    "pending",
                    Some(e.message.as_str()),
                )
            }
        };
        let record = Attempt {
            status,
            error,
            next_attempt_at: match outcome {
                Outcome::Retrying(at) => at,
                _ => now,
            },
        };
        let recorded = scope
            .transaction(&self.pool, async |conn| {
                q::record_attempt(conn, job.id, owner, &record).await
            })
            .await?;
        if !recorded {
            tracing::debug!(delivery_id = %job.id, "notification lease lost; attempt not recorded");
            return Ok(Outcome::Skipped);
        }
        Ok(outcome)
    }

    /// Sends one delivery by its channel's kind.
    async fn send(&self, job: &Job) -> Result<(), SendError> {
        let now = Utc::now();
        let message = send::render(job, now);
        match job.kind.as_str() {
            "webhook" => {
                let url = job
                    .url
                    .as_deref()
                    .ok_or_else(|| SendError::permanent("no URL"))?;
                let secret = self.secret(job)?;
                let body = serde_json::to_vec(&message.json)
                    .map_err(|_| SendError::permanent("the message could not be encoded"))?;
                let headers = [
                    (
                        send::SIGNATURE_HEADER,
                        send::signature(&secret, now.timestamp(), &body),
                    ),
                    (
                        send::DELIVERY_HEADER,
                        send::global_id("NotificationDelivery", job.id),
                    ),
                    (send::EVENT_HEADER, message.event.to_owned()),
                ];
                send::post(&self.http, (url, self.config.allow_private), &headers, body).await
            }
            "slack" => {
                let url = self.secret(job)?;
                let body = serde_json::to_vec(&serde_json::json!({ "text": message.text }))
                    .map_err(|_| SendError::permanent("the message could not be encoded"))?;
                let headers = [(send::EVENT_HEADER, message.event.to_owned())];
                let target = (url.expose_secret(), self.config.allow_private);
                send::post(&self.http, target, &headers, body).await
            }
            "email" => {
                let to = job
                    .email_to
                    .as_deref()
                    .ok_or_else(|| SendError::permanent("no recipient"))?;
                let smtp = self
                    .config
                    .smtp
                    .as_ref()
                    .ok_or_else(|| SendError::permanent("no SMTP relay is configured"))?;
                let body = email_body(&message.text, &message.json);
                let mail = smtp::Mail {
                    from: &smtp.from,
                    to,
                    subject: &message.subject,
                    body: &body,
                };
                smtp::send(&smtp.addr, &mail, self.config.timeout)
                    .await
                    .map_err(SendError::retry)
            }
            _ => Err(SendError::permanent("unknown channel kind")),
        }
    }

    /// The channel's decrypted secret (a webhook's signing secret, a Slack URL).
    fn secret(&self, job: &Job) -> Result<SecretString, SendError> {
        let stored = job
            .encrypted_secret
            .as_deref()
            .ok_or_else(|| SendError::permanent("the channel has no secret"))?;
        let binding = Binding::new(job.org_id, job.channel_id, crypto::NOTIFICATION_SECRET);
        self.keyring
            .decrypt_str(stored, binding)
            .map_err(|_| SendError::permanent("the channel's secret cannot be decrypted"))
    }
}

/// The plain-text e-mail: the line of text, then the alert's details.
fn email_body(text: &str, json: &Value) -> String {
    let mut body = format!("{text}\n");
    if let Some(alert) = json.get("alert").filter(|a| !a.is_null()) {
        let field = |v: &Value| v.as_str().unwrap_or("-").to_owned();
        body.push_str(&format!(
            "\nResource: {} ({})\nSeverity: {}\nOpened: {}\nResolved: {}\nAlert id: {}\n",
            field(&alert["resource"]["name"]),
            field(&alert["resource"]["kind"]),
            field(&alert["severity"]),
            field(&alert["openedAt"]),
            field(&alert["resolvedAt"]),
            field(&alert["id"]),
        ));
    }
    body
}

fn org_scope(org_id: Uuid) -> Scope {
    Scope {
        org_id: Some(org_id),
        ..Scope::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let config = NotifierConfig {
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3_600),
            ..NotifierConfig::default()
        };
        assert_eq!(config.retry_delay(1), Duration::from_secs(30));
        assert_eq!(config.retry_delay(2), Duration::from_secs(60));
        assert_eq!(config.retry_delay(4), Duration::from_secs(240));
        assert_eq!(config.retry_delay(50), Duration::from_secs(3_600));
    }
}
