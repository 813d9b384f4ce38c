//! A span per SQL statement, from diesel's connection events, when traces are exported.
//!
//! The span is named after the statement's first keyword (`SELECT`, `INSERT`, …) and carries
//! its text as `db.query.text`: the SQL diesel built, with `$1`… placeholders, never the bound
//! values. A statement sent as plain text (`batch_execute`: `BEGIN`, `SET …`, role set-up) may
//! hold literals, so only its first keyword is kept.

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// Where diesel's rendering of a statement ends and its bound values begin.
const BINDS: &str = " -- binds: ";
/// Longest statement text kept on a span.
const MAX_TEXT: usize = 2048;
/// Statements started and not finished that a connection remembers (a dropped query future
/// never finishes).
const MAX_OPEN: usize = 32;

/// Makes every connection opened from now on record statement spans.
pub(super) fn install() {
    let _ = diesel::connection::set_default_instrumentation(|| {
        SqlSpans::new().map(|spans| Box::new(spans) as Box<dyn Instrumentation>)
    });
}

/// One connection's open statement spans.
#[derive(Default)]
pub struct SqlSpans {
    open: Vec<(String, tracing::Span)>,
}

impl SqlSpans {
    /// Statement spans for a connection, when traces are exported.
    pub fn new() -> Option<Self> {
        super::exporting().then(Self::default)
    }
}

impl Instrumentation for SqlSpans {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            // Statements outside any traced work (connection set-up, the relay's polling)
            // would each start a trace of their own: they get no span.
            InstrumentationEvent::StartQuery { .. } if tracing::Span::current().is_none() => {}
            InstrumentationEvent::StartQuery { query, .. } => {
                let rendered = query.to_string();
                let text = statement(&rendered);
                let span = tracing::info_span!(
                    target: "stackgate::sql",
                    "sql",
                    otel.name = keyword(&text),
                    otel.kind = "client",
                    db.system.name = "postgresql",
                    db.query.text = %text,
                );
                if self.open.len() >= MAX_OPEN {
                    self.open.remove(0);
                }
                self.open.push((key(&rendered).to_owned(), span));
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                // Finished statements are shown without their binds.
                let rendered = query.to_string();
                let key = key(&rendered);
                if let Some(at) = self.open.iter().position(|(open, _)| open == key) {
                    let (_, span) = self.open.remove(at);
                    if error.is_some() {
                        span.record("otel.status_code", "ERROR");
                    }
                }
            }
            _ => {}
        }
    }
}

/// The SQL of a statement as diesel renders it when it starts (with binds) and when it
/// finishes (without): what pairs the two events.
fn key(rendered: &str) -> &str {
    rendered
        .split_once(BINDS)
        .map_or(rendered, |(sql, _)| sql)
        .trim()
}

/// What of diesel's rendering of a statement may be kept: the SQL without its bound values, or
/// only the first keyword of plain text.
fn statement(rendered: &str) -> String {
    match rendered.split_once(BINDS) {
        Some((sql, _)) => {
            let sql = sql.trim();
            match sql.char_indices().nth(MAX_TEXT) {
                Some((end, _)) => sql[..end].to_owned(),
                None => sql.to_owned(),
            }
        }
        None => keyword(rendered).to_owned(),
    }
}

/// The statement's first keyword, upper case (`SELECT`), or `SQL`.
fn keyword(sql: &str) -> String {
    let word: String = sql
        .trim_start()
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .take(16)
        .collect();
    match word.is_empty() {
        true => "SQL".to_owned(),
        false => word.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_values_and_plain_text_are_not_kept() {
        assert_eq!(
            statement(r#"select "id" from "users" where "id" = $1 -- binds: ["secret"]"#),
            r#"select "id" from "users" where "id" = $1"#
        );
        assert_eq!(statement("alter role x password 'hunter2'"), "ALTER");
        assert_eq!(keyword("  with x as (select 1) select 1"), "WITH");
        assert_eq!(keyword("$$"), "SQL");
    }
}
