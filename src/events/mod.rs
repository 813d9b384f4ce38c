//! Live events (`docs/events.md`): every payload type, the one [`publish`] function writers
//! call, and the [`EventBus`] that brings events to this replica's subscribers.
//!
//! Writers publish inside the transaction that writes what the event reports, into the outbox;
//! the one [`Relay`] of the cluster (chosen by a lease) NOTIFYs committed events in order, each
//! numbered, so an event is delivered only if its transaction commits, on every replica (each
//! LISTENs on [`CHANNEL`] and tells subscribers when a number was skipped).
//! The payloads are JSON with a `type` and an `org_id`, and carry ids and states only:
//! - `sync`: [`SyncEvent`], from the sync engine;
//! - `link`: [`LinkEvent`], from a trigger on `project_resources`;
//! - `health`: [`HealthEvent`], from the health monitor;
//! - `access`: [`AccessEvent`], from triggers on every table that decides who may do what
//!   (memberships, roles, teams, clients, grants, keys): replicas forget cached viewers on it;
//! - `change`: [`ChangeEvent`], from triggers on projects, docks and operation services (and
//!   their links to projects): what management mutations changed, for live queries;
//! - `action`: [`ActionEvent`], from `performResourceAction`: a provider action run started or
//!   finished.
//!
//! Subscribers filter every event by tenant and permission when it reaches them, and resolve
//! what they show with their own permissions.

pub mod access;
pub mod action;
pub mod bus;
pub mod change;
pub mod consume;
pub mod health;
pub mod link;
pub mod nats;
mod publish;
pub mod relay;
pub mod settings;
pub mod sync;
pub mod topic;

use serde::Serialize;
use uuid::Uuid;

pub use access::AccessEvent;
pub use action::ActionEvent;
pub use bus::{Delivery, Envelope, EventBus};
pub use change::ChangeEvent;
pub use health::HealthEvent;
pub use link::{LinkChange, LinkEvent};
pub use publish::publish;
pub use relay::{Relay, RelayHandle};
pub use sync::{Phase, SyncEvent};
pub use topic::{Changes, Reads, Topic};

/// The NOTIFY channel of every stackgate event.
pub const CHANNEL: &str = "stackgate_events";

/// One event, as received.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Sync(SyncEvent),
    Link(LinkEvent),
    Health(HealthEvent),
    Access(AccessEvent),
    Change(ChangeEvent),
    Action(ActionEvent),
}

impl From<SyncEvent> for Event {
    fn from(event: SyncEvent) -> Self {
        Event::Sync(event)
    }
}

impl From<HealthEvent> for Event {
    fn from(event: HealthEvent) -> Self {
        Event::Health(event)
    }
}

impl Event {
    /// The payload [`publish`] sends: what [`Event::parse`] reads back.
    pub fn to_payload(&self) -> String {
        /// A payload whose struct has no `type` field of its own.
        #[derive(Serialize)]
        struct Tagged<'a, T> {
            #[serde(rename = "type")]
            event_type: &'static str,
            #[serde(flatten)]
            event: &'a T,
        }
        match self {
            Event::Sync(e) => e.to_payload(),
            Event::Health(e) => e.to_payload(),
            Event::Link(event) => serde_json::to_string(&Tagged {
                event_type: "link",
                event,
            })
            .unwrap_or_default(),
            Event::Access(event) => serde_json::to_string(&Tagged {
                event_type: "access",
                event,
            })
            .unwrap_or_default(),
            Event::Change(event) => serde_json::to_string(&Tagged {
                event_type: "change",
                event,
            })
            .unwrap_or_default(),
            Event::Action(event) => serde_json::to_string(&Tagged {
                event_type: "action",
                event,
            })
            .unwrap_or_default(),
        }
    }

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
            "change" => serde_json::from_str(payload).ok().map(Event::Change),
            "action" => serde_json::from_str(payload).ok().map(Event::Action),
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
            Event::Change(e) => e.org_id,
            Event::Action(e) => e.org_id,
        }
    }

    /// The organization the outbox files the event under (`None`: a user-level access change).
    pub fn outbox_org(&self) -> Option<Uuid> {
        match self {
            Event::Access(e) => e.org_id,
            other => Some(other.org_id()),
        }
    }

    /// True when the event changes who may see or do what (access, or a link that changes what
    /// a client-portal viewer reaches).
    pub fn changes_access(&self) -> Option<Option<Uuid>> {
        match self {
            Event::Access(e) => Some(e.org_id),
            Event::Link(e) if matches!(e.change, LinkChange::Linked | LinkChange::Unlinked) => {
                Some(Some(e.org_id))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let access = r#"{"type" : "access", "org_id" : null}"#;
        assert_eq!(
            Event::parse(access),
            Some(Event::Access(AccessEvent { org_id: None }))
        );
        assert_eq!(Event::parse(r#"{"type":"other","org_id":"x"}"#), None);
        assert_eq!(Event::parse("not json"), None);
    }

    #[test]
    fn every_event_round_trips_through_its_payload() {
        let (org, dock, id) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00.123Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let events = [
            Event::from(SyncEvent::new(org, dock, None, Phase::Page).items(3)),
            Event::from(HealthEvent::new(
                (org, dock, id),
                "server",
                ("healthy", "degraded"),
                at,
            )),
            Event::Link(LinkEvent {
                org_id: org,
                project_id: dock,
                resource_id: id,
                kind: "server".into(),
                change: LinkChange::Linked,
                status: "active".into(),
                at,
            }),
            Event::Access(AccessEvent { org_id: Some(org) }),
            Event::Action(ActionEvent {
                org_id: org,
                run_id: id,
                resource_id: id,
                dock_id: dock,
                status: "running".into(),
            }),
        ];
        for event in events {
            let payload = event.to_payload();
            assert!(payload.starts_with(r#"{"type":""#), "{payload}");
            assert_eq!(Event::parse(&payload), Some(event), "{payload}");
        }
    }
}
