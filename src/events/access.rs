//! `access` events: who may do what changed (published by the `stackgate_access_notify` trigger
//! of the `access_events` migration on every table that decides it: memberships, roles, teams,
//! clients, grants, keys). Replicas forget cached viewers on it.
//!
//! ```json
//! {"type": "access", "org_id": "<uuid>" | null}
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who may do what changed in an organization (`org_id`), or for a user in every organization
/// (`org_id` null).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEvent {
    pub org_id: Option<Uuid>,
}

impl AccessEvent {
    /// True when the change may concern a viewer acting in `org`.
    pub fn concerns(&self, org: Uuid) -> bool {
        self.org_id.is_none_or(|o| o == org)
    }
}
