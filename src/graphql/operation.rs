//! One GraphQL operation's set-up and end, shared by HTTP and WebSocket.
//!
//! - Before execution: the token and alias limits ([`check_limits`], `QUERY_TOO_COMPLEX` before
//!   any SQL runs), then a [`RequestDb`] in the viewer's scope and its loaders join the request
//!   ([`attach`]).
//! - After execution ([`finish`]): the request's transaction ends, its statement count is
//!   recorded (tracing field `statements`, histogram `stackgate_sql_statements_per_request`) and
//!   returned in `extensions.sqlStatements` when asked (`X-Stackgate-Trace: statements`); a
//!   platform admin's act in an organization they do not belong to is audited.
//!
//! HTTP calls these around `Schema::execute` itself: an async-graphql extension would put every
//! field of every response through the extension chain, which costs more than all our loaders.

use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Request, Response, ServerError, Value};

use super::loaders::{Loaders, loaders};
use crate::auth::Viewer;
use crate::db::models::audit::{self, Actor, Entry};
use crate::db::{Pool, RequestDb};
use crate::error::code;
use crate::graphql::mutations::ClientInfo;

/// Marks a request whose response should carry its statement count.
#[derive(Clone, Copy, Debug)]
pub struct TraceStatements;

/// Limits checked before execution (depth and complexity are the schema's own).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_tokens: usize,
    pub max_aliases: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_tokens: 5_000,
            max_aliases: 50,
        }
    }
}

/// Checks the token limit on the text and the alias limit on the parsed document (which the
/// request keeps, so it is parsed once).
pub fn check_limits(request: &mut Request, limits: &Limits) -> Result<(), ServerError> {
    let tokens = count_tokens(&request.query);
    if tokens > limits.max_tokens {
        return Err(too_complex(format!(
            "query has {tokens} tokens; the limit is {}",
            limits.max_tokens
        )));
    }
    let aliases = count_aliases(request.parsed_query()?);
    if aliases > limits.max_aliases {
        return Err(too_complex(format!(
            "query uses {aliases} aliases; the limit is {}",
            limits.max_aliases
        )));
    }
    Ok(())
}

/// The operation's name: the one asked for, else the document's only operation's own name.
pub fn operation_name(request: &mut Request) -> Option<String> {
    use async_graphql::parser::types::DocumentOperations;
    if let Some(name) = &request.operation_name {
        return Some(name.clone());
    }
    match &request.parsed_query().ok()?.operations {
        DocumentOperations::Multiple(ops) if ops.len() == 1 => {
            ops.keys().next().map(|n| n.to_string())
        }
        _ => None,
    }
}

/// Adds the viewer's per-request database handle and loaders to the request.
pub fn attach(
    request: Request,
    pool: &Pool,
    viewer: &Viewer,
) -> (Request, Arc<RequestDb>, Arc<Loaders>) {
    let db = Arc::new(RequestDb::new(
        pool.clone(),
        viewer.scope(),
        viewer.visibility().clone(),
    ));
    let loaders = loaders(db.clone());
    (request.data(loaders.clone()).data(db.clone()), db, loaders)
}

/// Ends the operation: closes its transaction, records its statements, audits platform admins.
pub async fn finish(
    db: &RequestDb,
    pool: &Pool,
    viewer: &Viewer,
    client: Option<&ClientInfo>,
    operation: Option<&str>,
    trace: bool,
    response: Response,
) -> Response {
    let statements = db.finish().await;
    metrics::histogram!("stackgate_sql_statements_per_request").record(statements as f64);
    tracing::Span::current().record("statements", statements);
    if viewer.as_platform_admin {
        audit_platform_admin(pool, viewer, client, operation, &response).await;
    }
    if trace {
        return response.extension("sqlStatements", Value::from(statements));
    }
    response
}

/// Records an act of a platform admin inside an organization they do not belong to.
async fn audit_platform_admin(
    pool: &Pool,
    viewer: &Viewer,
    client: Option<&ClientInfo>,
    operation: Option<&str>,
    response: &Response,
) {
    let client = client.cloned().unwrap_or_default();
    let actor = Actor {
        org_id: viewer.organization.id,
        user_id: Some(viewer.user.id),
        api_key_id: viewer.api_key_id,
        ip_address: client.ip_address,
        user_agent: client.user_agent,
    };
    let entry = Entry {
        action: "platform_admin.request",
        target_type: Some("Organization"),
        target_id: Some(viewer.organization.id),
        result: if response.is_ok() { "success" } else { "error" },
        message: operation,
        metadata: serde_json::json!({}),
    };
    let recorded = viewer
        .scope()
        .transaction(pool, async |conn| audit::record(conn, &actor, &entry).await)
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not audit a platform admin's request");
    }
}

fn too_complex(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code::QUERY_TOO_COMPLEX);
    error.extensions = Some(extensions);
    error
}

/// Counts GraphQL lexical tokens (names, numbers, strings, punctuators) without parsing.
fn count_tokens(query: &str) -> usize {
    let mut tokens = 0;
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                tokens += 1;
                let mut escaped = false;
                for c in chars.by_ref() {
                    match (escaped, c) {
                        (false, '\\') => escaped = true,
                        (false, '"') => break,
                        _ => escaped = false,
                    }
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' => {
                tokens += 1;
                while chars
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                {
                    chars.next();
                }
            }
            c if c.is_whitespace() || c == ',' => {}
            _ => tokens += 1,
        }
    }
    tokens
}

/// Counts aliased fields in every operation and fragment.
fn count_aliases(document: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(f) => {
                    usize::from(f.node.alias.is_some()) + walk(&f.node.selection_set.node)
                }
                Selection::InlineFragment(f) => walk(&f.node.selection_set.node),
                Selection::FragmentSpread(_) => 0,
            })
            .sum()
    }
    let operations: usize = document
        .operations
        .iter()
        .map(|(_, op)| walk(&op.node.selection_set.node))
        .sum();
    let fragments: usize = document
        .fragments
        .values()
        .map(|f| walk(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_counted_without_comments() {
        assert_eq!(count_tokens("{ viewer { name } }"), 6);
        assert_eq!(count_tokens("# a comment { { {\n{ a(x: \"s { }\") }"), 8);
    }

    #[test]
    fn aliases_are_counted_everywhere() {
        let doc = async_graphql::parser::parse_query(
            "{ a: x b: y { c: z } ...F } fragment F on Q { d: w }",
        )
        .expect("parses");
        assert_eq!(count_aliases(&doc), 4);
    }
}
