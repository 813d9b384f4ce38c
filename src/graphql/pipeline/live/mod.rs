//! Live queries: a query operation marked `@live` streams its result, then a new result each time
//! a committed change could alter it (over WebSocket and Server-Sent Events).
//!
//! The pipeline ([`super::Pipeline`]) runs the loop; this module holds its parts:
//! - [`strip`]: recognises `@live` on the selected operation and removes it before validation
//!   (the schema declares no such directive; the transport, not the executor, acts on it);
//! - [`Source`]: what a re-run is rebuilt from (the text, operation name, variables);
//! - [`concerns`]: whether a delivered event may change a result of a viewer of `org` that read
//!   `reads`: an event of the organization that changed a topic it read, an access change that
//!   concerns the organization, or a gap in the event stream;
//! - [`hub`]: identical live queries run once and share their results;
//! - [`fingerprint`]: a result's hash, so a result equal to the last one sent is not sent again.
//!
//! Every re-run goes through the whole pipeline again — limits, the caller's credentials, rate
//! limits, a fresh tenant transaction and loaders — so permissions are re-checked each time, and
//! a caller who lost access gets the error and the end of the stream. Re-runs are coalesced: at
//! most one per `STACKGATE_LIVE_INTERVAL_MS` per live query, however many events arrive.

pub mod hub;
pub mod member;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{Request, Response, Variables};
use uuid::Uuid;

use crate::events::{Delivery, Event, Reads};

/// The directive that makes a query live.
pub const DIRECTIVE: &str = "live";

/// Finds `@live` on the operation `name` selects (the only one when `None`) and removes it from
/// the request's parsed document. `Some(kind)` of the operation when it was there.
pub fn strip(request: &mut Request, name: Option<&str>) -> Option<OperationType> {
    let document = request.parsed_query().ok()?;
    let mut document: ExecutableDocument = document.clone();
    let operation = match (&mut document.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get_mut(name)?,
        (DocumentOperations::Multiple(ops), None) => ops.values_mut().next()?,
    };
    let directives = &mut operation.node.directives;
    let before = directives.len();
    directives.retain(|d| d.node.name.node != DIRECTIVE);
    if directives.len() == before {
        return None;
    }
    let kind = operation.node.ty;
    request.set_parsed_query(document);
    Some(kind)
}

/// True when the text may carry `@live` (a cheap test before [`strip`] clones the document).
pub fn mentions(query: &str) -> bool {
    query.contains("@live")
}

/// What each re-run of a live query is built from.
#[derive(Clone)]
pub struct Source {
    query: String,
    operation_name: Option<String>,
    variables: Variables,
}

impl Source {
    pub fn of(request: &Request) -> Self {
        Self {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
        }
    }

    /// A fresh request for the next run.
    pub fn request(&self) -> Request {
        let mut request = Request::new(self.query.clone()).variables(self.variables.clone());
        request.operation_name = self.operation_name.clone();
        request
    }
}

/// Whether `delivery` may change a result, read as `reads` by a viewer acting in `org`.
pub fn concerns(delivery: &Delivery, org: Uuid, reads: &Reads) -> bool {
    match delivery {
        Delivery::Gap => true,
        Delivery::Event(envelope) => match &envelope.event {
            Event::Access(access) => access.concerns(org),
            event => event.org_id() == org && reads.touched_by(&event.changes()),
        },
    }
}

/// A hash of a result as it would be sent.
pub fn fingerprint(response: &Response) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    crate::graphql::json::response(response).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_is_found_and_removed_on_the_selected_operation_only() {
        let mut request = Request::new("query A @live { a } query B { b }");
        assert_eq!(strip(&mut request, Some("B")), None);
        assert_eq!(strip(&mut request, Some("A")), Some(OperationType::Query));
        assert_eq!(strip(&mut request, Some("A")), None, "removed");
        let mut subscription = Request::new("subscription @live { s }");
        assert_eq!(
            strip(&mut subscription, None),
            Some(OperationType::Subscription)
        );
        let mut field_level = Request::new("{ a @live }");
        assert_eq!(strip(&mut field_level, None), None);
    }

    #[test]
    fn events_concern_what_was_read_in_their_organization_and_gaps_everything() {
        let (org, other) = (Uuid::new_v4(), Uuid::new_v4());
        let change = |org_id| {
            Delivery::Event(std::sync::Arc::new(crate::events::Envelope::new(
                Event::Change(crate::events::ChangeEvent {
                    org_id,
                    table: "projects".into(),
                    id: Uuid::new_v4(),
                }),
            )))
        };
        let mut lists = Reads::default();
        lists.add(crate::events::Topic::Projects);
        let mut docks = Reads::default();
        docks.add(crate::events::Topic::Docks);
        assert!(concerns(&change(org), org, &lists));
        assert!(!concerns(&change(org), org, &docks), "not read");
        assert!(!concerns(&change(other), org, &lists));
        assert!(concerns(&Delivery::Gap, org, &docks));
        let user_level = Delivery::Event(std::sync::Arc::new(crate::events::Envelope::new(
            Event::Access(crate::events::AccessEvent { org_id: None }),
        )));
        assert!(concerns(&user_level, org, &docks));
    }
}
