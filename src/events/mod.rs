//! Live events (DESIGN §7): what writers publish with `pg_notify`, and the [`EventBus`] that
//! brings it to this replica's subscribers.
//!
//! Writers publish on [`CHANNEL`] inside the transaction that writes what the event reports, so
//! an event is delivered only if that transaction commits, on every replica (each LISTENs). The
//! payloads are JSON with a `type` and an `org_id`, and carry ids and states only:
//! - `sync`: [`crate::sync::events::SyncEvent`], from the sync engine;
//! - `link`: [`links::LinkEvent`], from a trigger on `project_resources`;
//! - `health`: [`crate::health::events::HealthEvent`], from the health monitor.
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
            _ => None,
        }
    }

    /// The organization the event belongs to: the first thing every subscriber checks.
    pub fn org_id(&self) -> Uuid {
        match self {
            Event::Sync(e) => e.org_id,
            Event::Link(e) => e.org_id,
            Event::Health(e) => e.org_id,
        }
    }
}
