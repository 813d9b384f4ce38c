//! Per-operation set-up and limits, as an async-graphql extension (so HTTP and WebSocket share it).
//!
//! - Before execution: a [`RequestDb`] in the viewer's scope and its [`Loaders`] join the request.
//! - After execution: the request's transaction ends, its statement count is recorded (tracing
//!   field `statements`, histogram `stackgate_sql_statements_per_request`), and returned in
//!   `extensions.sqlStatements` when the client asked with `X-Stackgate-Trace: statements`.
//! - While parsing: the token and alias limits (`QUERY_TOO_COMPLEX` before any SQL runs).

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextPrepareRequest,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensionValues, Request, Response, ServerError, ServerResult, Value, Variables,
};

use super::loaders::loaders;
use crate::auth::Viewer;
use crate::db::{Pool, RequestDb};
use crate::error::code;

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

/// The extension factory registered on the schema.
pub struct RequestSetup(pub Limits);

impl ExtensionFactory for RequestSetup {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestSetupExtension(self.0))
    }
}

struct RequestSetupExtension(Limits);

#[async_trait::async_trait]
impl Extension for RequestSetupExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let from_request = request
            .data
            .get(&TypeId::of::<Viewer>())
            .and_then(|d| d.downcast_ref::<Viewer>());
        let viewer = from_request.or_else(|| ctx.data_opt::<Viewer>()).cloned();
        if let (Some(viewer), Some(pool)) = (viewer, ctx.data_opt::<Pool>()) {
            let db = Arc::new(RequestDb::new(
                pool.clone(),
                viewer.scope(),
                viewer.visibility().clone(),
            ));
            request = request.data(loaders(db.clone())).data(db);
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let tokens = count_tokens(query);
        if tokens > self.0.max_tokens {
            return Err(too_complex(format!(
                "query has {tokens} tokens; the limit is {}",
                self.0.max_tokens
            )));
        }
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document);
        if aliases > self.0.max_aliases {
            return Err(too_complex(format!(
                "query uses {aliases} aliases; the limit is {}",
                self.0.max_aliases
            )));
        }
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        let Some(db) = ctx.data_opt::<Arc<RequestDb>>() else {
            return response;
        };
        let statements = db.finish().await;
        metrics::histogram!("stackgate_sql_statements_per_request").record(statements as f64);
        tracing::Span::current().record("statements", statements);
        if ctx.data_opt::<TraceStatements>().is_some() {
            return response.extension("sqlStatements", Value::from(statements));
        }
        response
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
