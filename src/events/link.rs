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
