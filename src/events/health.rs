//! Health events, published by the health monitor through [`super::publish`]
//! (`docs/events.md`, `docs/health.md`).
//!
//! One event per confirmed transition of a resource's health, published inside the transaction
//! that records it, so it is delivered only if that transaction commits. The payload is JSON:
//!
//! ```json
//! {"type": "health", "org_id": "<uuid>", "dock_id": "<uuid>", "resource_id": "<uuid>",
//!  "kind": "server" | "web_service" | "domain" | "database",
//!  "previous": "healthy" | "degraded" | "unhealthy" | "unknown", "current": "...",
//!  "at": "2026-11-22T10:00:00.123Z"}
//! ```
//!
//! Payloads carry ids and states only; a subscriber loads the resource with its own permissions,
//! and filters by `org_id` before anything else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One health transition as published.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthEvent {
    /// Always `"health"` (other event types share the channel).
    #[serde(rename = "type")]
    pub event_type: String,
    pub org_id: Uuid,
    /// The resource's dock: what a team viewer's access is decided by.
    pub dock_id: Uuid,
    pub resource_id: Uuid,
    /// The stored kind word: `server`, `web_service`, `domain` or `database`.
    pub kind: String,
    /// The stored state words: `healthy`, `degraded`, `unhealthy` or `unknown`.
    pub previous: String,
    pub current: String,
    pub at: DateTime<Utc>,
}

impl HealthEvent {
    pub fn new(
        (org_id, dock_id, resource_id): (Uuid, Uuid, Uuid),
        kind: &str,
        (previous, current): (&str, &str),
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            event_type: "health".to_owned(),
            org_id,
            dock_id,
            resource_id,
            kind: kind.to_owned(),
            previous: previous.to_owned(),
            current: current.to_owned(),
            at,
        }
    }

    /// The NOTIFY payload.
    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a payload received on [`super::CHANNEL`]; `None` for other event types.
    pub fn parse(payload: &str) -> Option<Self> {
        serde_json::from_str::<Self>(payload)
            .ok()
            .filter(|e| e.event_type == "health")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_agreed_shape_and_round_trips() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T10:00:00.123Z")
            .expect("time")
            .with_timezone(&Utc);
        let event = HealthEvent::new(
            (Uuid::nil(), Uuid::nil(), Uuid::max()),
            "web_service",
            ("healthy", "unhealthy"),
            at,
        );
        let payload = event.to_payload();
        assert_eq!(
            payload,
            r#"{"type":"health","org_id":"00000000-0000-0000-0000-000000000000","dock_id":"00000000-0000-0000-0000-000000000000","resource_id":"ffffffff-ffff-ffff-ffff-ffffffffffff","kind":"web_service","previous":"healthy","current":"unhealthy","at":"2026-11-22T10:00:00.123Z"}"#
        );
        assert_eq!(HealthEvent::parse(&payload), Some(event));
        assert_eq!(HealthEvent::parse(r#"{"type":"sync"}"#), None);
        assert_eq!(HealthEvent::parse("not json"), None);
    }
}
