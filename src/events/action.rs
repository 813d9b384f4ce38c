//! `action` events: a provider action run started or finished (`performResourceAction`),
//! published by the mutation in the transaction that writes the run. The `actionRuns`
//! subscription delivers the run to viewers who may see its resource.
//!
//! ```json
//! {"type": "action", "org_id": "<uuid>", "run_id": "<uuid>", "resource_id": "<uuid>",
//!  "dock_id": "<uuid>", "status": "running" | "succeeded" | "failed"}
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Action run `run_id` on resource `resource_id` (synced through `dock_id`) is now `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionEvent {
    pub org_id: Uuid,
    pub run_id: Uuid,
    pub resource_id: Uuid,
    pub dock_id: Uuid,
    pub status: String,
}
