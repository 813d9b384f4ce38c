//! `change` events: a row that management mutations change (a project, a dock, an operation
//! service) changed, published by the `stackgate_change_notify` trigger of the `change_events`
//! migration in the writing transaction. A link of a project and an operation service, made or
//! removed, publishes one for each end (`operation_services` migration). Live queries that read
//! the row re-run on it.
//!
//! ```json
//! {"type": "change", "org_id": "<uuid>", "table": "projects" | "docks" | "operation_services",
//!  "id": "<uuid>"}
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One row of `table` changed (inserted, updated or deleted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub org_id: Uuid,
    pub table: String,
    pub id: Uuid,
}
