//! What a result read, and what an event changed, in the same words: [`Topic`]s of one
//! organization. A live query or a cached answer records the topics its execution read
//! ([`Reads`]); an event names the topics it changed ([`Event::changes`]); the result is stale
//! when, and only when, the two meet (`docs/events.md`, "Topics").
//!
//! The mapping is deliberately coarse where precision would need data an event does not carry:
//! a health transition names its resource but not the projects it is linked to, so a project's
//! health counts read [`Topic::Health`], which every health event of the organization changes. A
//! read that records nothing more precise reads [`Topic::Everything`], which every event of the
//! organization changes: forgetting a topic costs a re-run, never a stale result.

use std::collections::HashSet;

use uuid::Uuid;

use super::{Event, LinkChange};

/// One thing of an organization a result may read and an event may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// A project's row, its links and its client and team ids.
    Project(Uuid),
    /// Which projects the organization has (a list of projects).
    Projects,
    /// A resource's row, provider data, health checks and the projects it is linked to.
    Resource(Uuid),
    /// Which resources the organization has (a list of resources).
    Resources,
    /// A dock's row, its sync runs, and the rows of every resource synced through it.
    Dock(Uuid),
    /// Which docks the organization has (a list of docks).
    Docks,
    /// An operation service's row, its grants and the projects it is linked to.
    OperationService(Uuid),
    /// Which operation services the organization has (a list of services).
    OperationServices,
    /// The organization's provider action runs (any run read, by id or in a resource's list).
    ActionRuns,
    /// Health states summed over resources (a project's health counts).
    Health,
    /// Anything of the organization: what an unclassified read depends on.
    Everything,
}

/// What an event changed.
#[derive(Debug, PartialEq)]
pub enum Changes {
    /// Possibly anything (of one organization, or of every one for a user-level access change
    /// or a gap in the event stream).
    Everything,
    /// These topics only.
    Topics(Vec<Topic>),
}

impl Event {
    /// The topics this event changed, within [`Event::org_id`]'s organization.
    pub fn changes(&self) -> Changes {
        use Topic::*;
        Changes::Topics(match self {
            // A sync writes its dock's row and runs, and adds, changes or removes its resources.
            Event::Sync(e) => vec![Dock(e.dock_id), Resources],
            // A resource's health, and every health count it is part of.
            Event::Health(e) => vec![Resource(e.resource_id), Health],
            // The project's links, the resource's projects; a resource linked or unlinked also
            // moves the project's health counts.
            Event::Link(e) => match e.change {
                LinkChange::Linked | LinkChange::Unlinked => {
                    vec![Project(e.project_id), Resource(e.resource_id), Health]
                }
                LinkChange::StatusChanged | LinkChange::Renamed => {
                    vec![Project(e.project_id), Resource(e.resource_id)]
                }
            },
            Event::Change(e) => match e.table.as_str() {
                "projects" => vec![Project(e.id), Projects],
                // A deleted dock takes its resources with it.
                "docks" => vec![Dock(e.id), Docks, Resources],
                // A resource's own columns (its tags): lists filtered by them may change too.
                "resources" => vec![Resource(e.id), Resources],
                // A service's row, or its links (a link also publishes a change of its project).
                "operation_services" => vec![OperationService(e.id), OperationServices],
                _ => return Changes::Everything,
            },
            Event::Action(_) => vec![ActionRuns],
            // Who may see what: every result may differ.
            Event::Access(_) => return Changes::Everything,
        })
    }
}

/// The topics one execution read, and whether it read anything of the viewer's own (their user,
/// memberships, invitations) beyond what their permissions decide.
#[derive(Clone, Debug, Default)]
pub struct Reads {
    everything: bool,
    personal: bool,
    topics: HashSet<Topic>,
}

impl Reads {
    /// What an unclassified read depends on: anything of the organization.
    pub fn everything() -> Self {
        Self {
            everything: true,
            personal: true,
            topics: HashSet::new(),
        }
    }

    /// Records that the result depends on who the viewer is, not only on their permissions:
    /// it is not shared with other viewers.
    pub fn personal(&mut self) {
        self.personal = true;
    }

    /// True when the result may differ between viewers with the same permissions.
    pub fn is_personal(&self) -> bool {
        self.personal
    }

    /// Records one more topic read.
    pub fn add(&mut self, topic: Topic) {
        if topic == Topic::Everything {
            self.everything = true;
            self.topics.clear();
        } else if !self.everything {
            self.topics.insert(topic);
        }
    }

    /// Records every topic of `topics`.
    pub fn extend(&mut self, topics: impl IntoIterator<Item = Topic>) {
        for topic in topics {
            self.add(topic);
        }
    }

    /// True when an event that made `changes` may alter what was read.
    pub fn touched_by(&self, changes: &Changes) -> bool {
        match changes {
            Changes::Everything => true,
            Changes::Topics(_) if self.everything => true,
            Changes::Topics(topics) => topics.iter().any(|t| self.topics.contains(t)),
        }
    }

    /// True when nothing more precise than "anything" was recorded.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// True when nothing was read.
    pub fn is_empty(&self) -> bool {
        !self.everything && self.topics.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ChangeEvent, HealthEvent, LinkEvent, Phase, SyncEvent};

    fn at() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    #[test]
    fn a_result_is_touched_only_by_events_that_change_what_it_read() {
        let (org, dock, other_dock) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let (project, resource, unseen) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut reads = Reads::default();
        reads.extend([
            Topic::Projects,
            Topic::Project(project),
            Topic::Resource(resource),
            Topic::Dock(dock),
        ]);
        let health = |r| {
            Event::from(HealthEvent::new(
                (org, dock, r),
                "server",
                ("healthy", "unhealthy"),
                at(),
            ))
            .changes()
        };
        assert!(reads.touched_by(&health(resource)));
        assert!(!reads.touched_by(&health(unseen)), "a resource not read");
        let sync = |d| Event::from(SyncEvent::new(org, d, None, Phase::Page)).changes();
        assert!(reads.touched_by(&sync(dock)));
        assert!(!reads.touched_by(&sync(other_dock)));
        let change = |table: &str, id| {
            Event::Change(ChangeEvent {
                org_id: org,
                table: table.into(),
                id,
            })
            .changes()
        };
        assert!(
            reads.touched_by(&change("projects", Uuid::new_v4())),
            "a list"
        );
        assert!(!reads.touched_by(&change("docks", other_dock)));
        let service = Uuid::new_v4();
        let mut services = Reads::default();
        services.add(Topic::OperationService(service));
        assert!(services.touched_by(&change("operation_services", service)));
        assert!(!services.touched_by(&change("operation_services", Uuid::new_v4())));
        assert!(!services.touched_by(&change("projects", Uuid::new_v4())));
        let mut listed = Reads::default();
        listed.add(Topic::OperationServices);
        assert!(listed.touched_by(&change("operation_services", Uuid::new_v4())));
        assert!(!reads.touched_by(&change("operation_services", service)));
        assert!(
            reads.touched_by(&change("teams", Uuid::new_v4())),
            "unknown"
        );
        let link = |p, change| {
            Event::Link(LinkEvent {
                org_id: org,
                project_id: p,
                resource_id: unseen,
                kind: "server".into(),
                change,
                status: "active".into(),
                at: at(),
            })
            .changes()
        };
        assert!(reads.touched_by(&link(project, LinkChange::Linked)));
        assert!(!reads.touched_by(&link(Uuid::new_v4(), LinkChange::StatusChanged)));
        assert!(reads.touched_by(&Changes::Everything));
    }

    #[test]
    fn health_counts_are_touched_by_every_health_event_and_everything_by_all() {
        let org = Uuid::new_v4();
        let mut counts = Reads::default();
        counts.add(Topic::Health);
        let event = Event::from(HealthEvent::new(
            (org, Uuid::new_v4(), Uuid::new_v4()),
            "server",
            ("healthy", "degraded"),
            at(),
        ));
        assert!(counts.touched_by(&event.changes()));
        let mut all = Reads::default();
        all.add(Topic::Resource(Uuid::new_v4()));
        all.add(Topic::Everything);
        all.add(Topic::Projects);
        assert!(all.is_everything() && all.topics.is_empty());
        assert!(all.touched_by(&Changes::Topics(vec![Topic::Docks])));
        assert!(Reads::default().is_empty());
        assert!(!Reads::default().touched_by(&Changes::Topics(vec![Topic::Docks])));
    }
}
