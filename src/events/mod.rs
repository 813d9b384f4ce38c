//! Live events (DESIGN §7): what writers publish with `pg_notify`, and the [`EventBus`] that
//! brings it to this replica's subscribers.
//!
//! Writers publish on [`CHANNEL`] inside the transaction that writes what the event reports, so
//! an event is delivered only if that transaction commits, on every replica (each LISTENs). The
//! payloads are JSON with a `type` and an `org_id`, and carry ids and states only:
//! - `sync`: [`crate::sync::events::SyncEvent`], from the sync engine;
//! - `link`: [`links::LinkEvent`], from a trigger on `project_resources`;
//! - `health`: [`crate::health::events::HealthEvent`], from the health monitor;
//! - `access`: [`AccessEvent`], from triggers on every table that decides who may do what
//!   (memberships, roles, teams, clients, grants, keys): replicas forget cached viewers on it.
//!
//! Subscribers filter every event by tenant and permission when it reaches them, and resolve
//! what they show with their own permissions.

pub mod bus;
pub mod links;

use uuid::Uuid;

pub use bus::{Delivery, Envelope, EventBus};

use crate::health::events::HealthEvent;
use crate::sync::events::SyncEvent;
use links::LinkEvent;

/// The NOTIFY channel of every stackgate event.
pub const CHANNEL: &str = "stackgate_events";

/// One event, as received.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Sync(SyncEvent),
    Link(LinkEvent),
    Health(HealthEvent),
    Access(AccessEvent),
}

/// Who may do what changed in an organization (`org_id`), or for a user in every organization
/// (`org_id` null): published by the `access_events` migration's triggers.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct AccessEvent {
    pub org_id: Option<Uuid>,
}

impl AccessEvent {
    /// True when the change may concern a viewer acting in `org`.
    pub fn concerns(&self, org: Uuid) -> bool {
        self.org_id.is_none_or(|o| o == org)
    }
}

impl Event {
    /// Parses a payload of [`CHANNEL`]; `None` for types this build does not know.
    pub fn parse(payload: &str) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct Tag<'a> {
            #[serde(rename = "type", borrow)]
            event_type: &'a str,
        }
        match serde_json::from_str::<Tag>(payload).ok()?.event_type {
            "sync" => SyncEvent::parse(payload).map(Event::Sync),
            "link" => LinkEvent::parse(payload).map(Event::Link),
            "health" => HealthEvent::parse(payload).map(Event::Health),
            "access" => serde_json::from_str(payload).ok().map(Event::Access),
            _ => None,
        }
    }

    /// The organization the event belongs to: the first thing every subscriber checks (a
    /// user-level access change belongs to none).
    pub fn org_id(&self) -> Uuid {
        match self {
            Event::Sync(e) => e.org_id,
            Event::Link(e) => e.org_id,
            Event::Health(e) => e.org_id,
            Event::Access(e) => e.org_id.unwrap_or_default(),
        }
    }

    /// True when the event changes who may see or do what (access, or a link that changes what
    /// a client-portal viewer reaches).
    pub fn changes_access(&self) -> Option<Option<Uuid>> {
        match self {
            Event::Access(e) => Some(e.org_id),
            Event::Link(e)
                if matches!(
                    e.change,
                    links::LinkChange::Linked | links::LinkChange::Unlinked
                ) =>
            {
                Some(Some(e.org_id))
            }
            _ => None,
        }
    }
}
