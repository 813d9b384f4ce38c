//! What a delivery says and how it is sent: the message of an alert transition, the signed
//! webhook, the Slack-compatible incoming webhook, and e-mail (`docs/health.md`,
//! "Notifications").
//!
//! HTTP deliveries go through the outbound guard like health probes and dock endpoints: the URL
//! is checked before the request, names are checked after resolution, no redirect is followed
//! and no proxy used. Errors are short and stable: they never quote the URL (a Slack URL is a
//! secret), the secret or the remote end's answer.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::db::models::notification::Job;
use crate::net::guard::{self, Blocked};

/// The header carrying a webhook's signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Stackgate-Signature";
/// The header naming the delivery (its `NotificationDelivery` id): the same on every retry.
pub const DELIVERY_HEADER: &str = "X-Stackgate-Delivery";
/// The header naming the event: `alert.opened`, `alert.resolved` or `test`.
pub const EVENT_HEADER: &str = "X-Stackgate-Event";

/// Why an attempt failed, and whether trying again could help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    pub message: String,
    /// True when retrying cannot succeed (a refused address, a disabled channel).
    pub permanent: bool,
}

impl SendError {
    pub fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// A global id as the GraphQL API gives it (`graphql::ids`): receivers can look the object up
/// with `node(id:)`.
pub fn global_id(type_name: &str, id: Uuid) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}"))
}

fn resource_type(kind: &str) -> &'static str {
    match kind {
        "server" => "Server",
        "web_service" => "WebService",
        "domain" => "Domain",
        _ => "Database",
    }
}

/// The event's name in payloads and headers.
pub fn event_name(event: &str) -> &'static str {
    match event {
        "opened" => "alert.opened",
        "resolved" => "alert.resolved",
        _ => "test",
    }
}

/// A delivery's content: the JSON of webhooks, and one line of text for Slack and e-mail.
pub struct Message {
    pub event: &'static str,
    pub subject: String,
    pub text: String,
    pub json: Value,
}

/// The message of a claimed delivery, as sent at `sent_at`.
pub fn render(job: &Job, sent_at: DateTime<Utc>) -> Message {
    let event = event_name(&job.event);
    let alert = job.alert_id.map(|id| {
        let kind = job.resource_kind.as_deref().unwrap_or("server");
        json!({
            "id": global_id("Alert", id),
            "severity": job.severity,
            "message": job.message,
            "openedAt": job.opened_at,
            "resolvedAt": job.resolved_at,
            "resource": {
                "id": job.resource_id.map(|r| global_id(resource_type(kind), r)),
                "kind": kind,
                "name": job.resource_name,
            },
        })
    });
    let json = json!({
        "id": global_id("NotificationDelivery", job.id),
        "event": event,
        "organizationId": global_id("Organization", job.org_id),
        "channel": { "id": global_id("NotificationChannel", job.channel_id), "name": job.channel_name },
        "alert": alert,
        "sentAt": sent_at,
    });
    let severity = job.severity.as_deref().unwrap_or("info");
    let message = job.message.as_deref().unwrap_or("");
    let (subject, text) = match job.event.as_str() {
        "opened" => (
            format!("[{severity}] {message}"),
            format!("Alert opened ({severity}): {message}"),
        ),
        "resolved" => (
            format!("[resolved] {message}"),
            format!("Alert resolved ({severity}): {message}"),
        ),
        _ => (
            format!("stackgate test message for {}", job.channel_name),
            format!(
                "Test message from stackgate: notification channel \"{}\" works.",
                job.channel_name
            ),
        ),
    };
    Message {
        event,
        subject: subject.chars().take(200).collect(),
        text,
        json,
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 over "<unix seconds>.<body>">` with `secret`.
pub fn signature(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: new_from_slice cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// The HTTP client of deliveries: no redirects, no proxy, names resolved through the guard.
pub fn client(allow_private: bool, timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(guard::GuardedResolver::shared(allow_private))
        .user_agent(concat!("stackgate-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| panic!("cannot build the notification HTTP client: {e}"))
}

/// Checks a URL a channel sends to: http(s), no user information, and a public address unless
/// private ones are allowed. The error never quotes the URL.
pub fn check_url(url: &str, allow_private: bool) -> Result<Url, SendError> {
    let parsed = Url::parse(url).map_err(|_| SendError::permanent("the URL is not valid"))?;
    guard::check_url(&parsed, allow_private).map_err(|b| SendError::permanent(b.to_string()))?;
    Ok(parsed)
}

/// POSTs `body` (JSON) to `url` with `headers`; a 2xx answer is success.
pub async fn post(
    client: &reqwest::Client,
    (url, allow_private): (&str, bool),
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<(), SendError> {
    let url = check_url(url, allow_private)?;
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.body(body).send().await.map_err(describe)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    Err(SendError::retry(format!(
        "the endpoint answered HTTP {}",
        status.as_u16()
    )))
}

/// A stable description of a failed request, without its URL.
fn describe(error: reqwest::Error) -> SendError {
    if let Some(blocked) = guard::blocked_by(&error) {
        return match blocked {
            Blocked::Unresolvable { .. } => SendError::retry("the host name does not resolve"),
            other => SendError::permanent(other.to_string()),
        };
    }
    if error.is_timeout() {
        SendError::retry("the endpoint did not answer in time")
    } else if error.is_connect() {
        SendError::retry("could not connect to the endpoint")
    } else {
        SendError::retry("the request failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently (Python's hmac module) over b"1700000000.{\"a\":1}".
        let secret = SecretString::from("whsec-test");
        assert_eq!(
            signature(&secret, 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=fed7a1a6c799a6367d73724d76bc70c16678908a32a879cd1ded6565ac05cece"
        );
        assert_ne!(
            signature(&secret, 1_700_000_001, br#"{"a":1}"#),
            signature(&secret, 1_700_000_000, br#"{"a":1}"#)
        );
    }

    #[test]
    fn global_ids_match_the_apis() {
        let id = Uuid::nil();
        assert_eq!(
            global_id("Alert", id),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode("Alert:00000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn private_urls_are_refused_without_quoting_them() {
        let err = check_url("http://127.0.0.1:9/secret-path", false).expect_err("refused");
        assert!(err.permanent);
        assert!(!err.message.contains("secret-path"), "{}", err.message);
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
        assert!(check_url("ftp://127.0.0.1/", true).is_err());
    }
}
