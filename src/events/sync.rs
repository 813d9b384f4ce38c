//! Sync events, published by the sync engine through [`super::publish`] (`docs/events.md`).
//!
//! Each event is published inside the transaction that writes what it reports, so it is
//! delivered only if that transaction commits. The payload is JSON (always under 8000 bytes):
//!
//! ```json
//! {"type": "sync", "org_id": "<uuid>", "dock_id": "<uuid>", "run_id": "<uuid>" | null,
//!  "phase": "STARTED" | "PAGE" | "APPLIED" | "SUCCEEDED" | "FAILED",
//!  "items": 1050 | null, "message": "..." | null, "at": "2026-11-22T10:00:00.123Z"}
//! ```
//!
//! - `STARTED`: a run row was created (`sync_runs.status = 'syncing'`).
//! - `PAGE`: a page arrived; `items` = resources fetched so far in the run. Best effort: sent
//!   outside the apply transaction, and skipped rather than slowing the fetch.
//! - `APPLIED`: the listing was written; `items` = resources in it.
//! - `SUCCEEDED` / `FAILED`: the run finished; `FAILED` carries the run's error (never a secret).
//!
//! Payloads carry ids and states only; a subscriber loads the dock and run with its own
//! permissions, and filters by `org_id` before anything else.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest `message` carried (keeps every payload far below NOTIFY's 8000 bytes).
const MAX_MESSAGE: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Started,
    Page,
    Applied,
    Succeeded,
    Failed,
}

/// One sync event as published.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncEvent {
    /// Always `"sync"` (other event types share the channel).
    #[serde(rename = "type")]
    pub event_type: String,
    pub org_id: Uuid,
    pub dock_id: Uuid,
    pub run_id: Option<Uuid>,
    pub phase: Phase,
    pub items: Option<i64>,
    pub message: Option<String>,
    pub at: DateTime<Utc>,
}

impl SyncEvent {
    pub fn new(org_id: Uuid, dock_id: Uuid, run_id: Option<Uuid>, phase: Phase) -> Self {
        Self {
            event_type: "sync".to_owned(),
            org_id,
            dock_id,
            run_id,
            phase,
            items: None,
            message: None,
            at: Utc::now(),
        }
    }

    pub fn items(mut self, n: usize) -> Self {
        self.items = i64::try_from(n).ok();
        self
    }

    pub fn message(mut self, text: &str) -> Self {
        self.message = Some(text.chars().take(MAX_MESSAGE).collect());
        self
    }

    /// The NOTIFY payload.
    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a payload received on [`super::CHANNEL`]; `None` for other event types.
    pub fn parse(payload: &str) -> Option<Self> {
        serde_json::from_str::<Self>(payload)
            .ok()
            .filter(|e| e.event_type == "sync")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_stay_small() {
        let event = SyncEvent::new(Uuid::nil(), Uuid::nil(), None, Phase::Failed)
            .message(&"x".repeat(50_000))
            .items(3);
        let payload = event.to_payload();
        assert!(payload.len() < 8000, "{}", payload.len());
        assert!(payload.contains(r#""phase":"FAILED""#), "{payload}");
        assert_eq!(SyncEvent::parse(&payload), Some(event));
        assert_eq!(SyncEvent::parse(r#"{"type":"health"}"#), None);
    }
}
