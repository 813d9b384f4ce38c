//! `link` events: a project's links changed (published by the `notify_link_*` triggers of the
//! `project_resource_events` migration, in the writing transaction).
//!
//! ```json
//! {"type": "link", "org_id": "<uuid>", "project_id": "<uuid>", "resource_id": "<uuid>",
//!  "kind": "server", "change": "LINKED" | "UNLINKED" | "STATUS_CHANGED" | "RENAMED",
//!  "status": "active", "at": "2026-11-22T10:00:00.123456Z"}
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What happened to a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LinkChange {
    Linked,
    Unlinked,
    StatusChanged,
    Renamed,
}

/// One `link` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkEvent {
    pub org_id: Uuid,
    pub project_id: Uuid,
    pub resource_id: Uuid,
    /// `servers` → `server` etc. (`project_resources.resource_kind`).
    pub kind: String,
    pub change: LinkChange,
    /// The link's denormalized status after the change (before it, for `UNLINKED`).
    pub status: String,
    pub at: DateTime<Utc>,
}

impl LinkEvent {
    /// Parses a `link` payload.
    pub fn parse(payload: &str) -> Option<Self> {
        serde_json::from_str(payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Event;

    #[test]
    fn trigger_payloads_parse() {
        let payload = r#"{"type":"link","org_id":"00000000-0000-0000-0000-000000000001",
            "project_id":"00000000-0000-0000-0000-000000000002",
            "resource_id":"00000000-0000-0000-0000-000000000003","kind":"web_service",
            "change":"STATUS_CHANGED","status":"stopped","at":"2026-11-22T10:00:00.123456Z"}"#;
        let Some(Event::Link(event)) = Event::parse(payload) else {
            panic!("not a link event");
        };
        assert_eq!(event.change, LinkChange::StatusChanged);
        assert_eq!(event.kind, "web_service");
        assert_eq!(event.org_id, Uuid::from_u128(1));
        assert_eq!(Event::parse(r#"{"type":"other","org_id":"x"}"#), None);
        assert_eq!(Event::parse("not json"), None);
    }
}
