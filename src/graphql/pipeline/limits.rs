//! Budgets checked before a document reaches async-graphql's validation, on the raw text and the
//! parsed document: each costs time linear in the document's size, so no document can cost more
//! than its own length to refuse.
//!
//! - tokens, counted on the text before parsing;
//! - aliases;
//! - expanded selections: the number of fields and fragments a document selects once every
//!   fragment spread is expanded. Spreads can nest (`...A1 ...B1` per level doubles the work at
//!   each level), and async-graphql's validation walks every expansion, so a 2 KB document could
//!   cost 2^k steps before its complexity is known. Here each fragment's expanded size is computed
//!   once (memoised, saturating), so the count costs one walk of the document;
//! - fragment cycles (refused here too, before any recursive walk).

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::error::ApiError;

/// Limits checked before validation (depth and complexity are async-graphql's own, checked after).
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

impl Limits {
    /// The most selections a document may expand to: as many as a fragment-free document of the
    /// token limit could hold (each field is at least one token).
    pub fn max_selections(&self) -> usize {
        self.max_tokens
    }
}

/// Checks the text's token count before it is parsed.
pub fn check_text(query: &str, limits: &Limits) -> Result<(), ApiError> {
    let tokens = count_tokens(query);
    if tokens > limits.max_tokens {
        return Err(ApiError::QueryTooComplex(format!(
            "query has {tokens} tokens; the limit is {}",
            limits.max_tokens
        )));
    }
    Ok(())
}

/// Checks the parsed document: aliases, fragment cycles, expanded selections.
pub fn check_document(document: &ExecutableDocument, limits: &Limits) -> Result<(), ApiError> {
    let aliases = count_aliases(document);
    if aliases > limits.max_aliases {
        return Err(ApiError::QueryTooComplex(format!(
            "query uses {aliases} aliases; the limit is {}",
            limits.max_aliases
        )));
    }
    let selections = expanded_selections(document)?;
    if selections > limits.max_selections() {
        return Err(ApiError::QueryTooComplex(format!(
            "query expands to more than {} selections once its fragments are spread",
            limits.max_selections()
        )));
    }
    Ok(())
}

/// Counts GraphQL lexical tokens (names, numbers, strings, punctuators) without parsing.
pub fn count_tokens(query: &str) -> usize {
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

/// A fragment's expanded size while it is computed: `None` marks one being walked (a spread of
/// it then is a cycle).
type Sizes<'d> = HashMap<&'d str, Option<usize>>;

/// Every operation's selections with fragments expanded, summed (saturating), each fragment
/// sized once.
fn expanded_selections(document: &ExecutableDocument) -> Result<usize, ApiError> {
    let mut sizes = Sizes::new();
    let mut total = 0usize;
    for (_, op) in document.operations.iter() {
        total = total.saturating_add(size_of(&op.node.selection_set.node, document, &mut sizes)?);
    }
    for name in document.fragments.keys() {
        fragment_size(name.as_str(), document, &mut sizes)?;
    }
    Ok(total)
}

fn size_of<'d>(
    set: &'d SelectionSet,
    document: &'d ExecutableDocument,
    sizes: &mut Sizes<'d>,
) -> Result<usize, ApiError> {
    let mut total = 0usize;
    for item in &set.items {
        let size = match &item.node {
            Selection::Field(f) => {
                1usize.saturating_add(size_of(&f.node.selection_set.node, document, sizes)?)
            }
            Selection::InlineFragment(f) => size_of(&f.node.selection_set.node, document, sizes)?,
            Selection::FragmentSpread(s) => {
                fragment_size(s.node.fragment_name.node.as_str(), document, sizes)?
            }
        };
        total = total.saturating_add(size);
    }
    Ok(total)
}

fn fragment_size<'d>(
    name: &'d str,
    document: &'d ExecutableDocument,
    sizes: &mut Sizes<'d>,
) -> Result<usize, ApiError> {
    match sizes.get(name) {
        Some(Some(size)) => return Ok(*size),
        Some(None) => {
            return Err(ApiError::BadUserInput(format!(
                "fragment `{name}` spreads itself"
            )));
        }
        None => {}
    }
    // An unknown fragment is validation's to report; it adds nothing here.
    let Some((key, fragment)) = document.fragments.get_key_value(name) else {
        return Ok(0);
    };
    sizes.insert(key.as_str(), None);
    let size = size_of(&fragment.node.selection_set.node, document, sizes)?;
    sizes.insert(key.as_str(), Some(size));
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(q).expect("parses")
    }

    #[test]
    fn tokens_are_counted_without_comments() {
        assert_eq!(count_tokens("{ viewer { name } }"), 6);
        assert_eq!(count_tokens("# a comment { { {\n{ a(x: \"s { }\") }"), 8);
    }

    #[test]
    fn aliases_are_counted_everywhere() {
        let doc = parse("{ a: x b: y { c: z } ...F } fragment F on Q { d: w }");
        assert_eq!(count_aliases(&doc), 4);
    }

    /// A document of `levels` fragments, each spreading the next twice: 2^levels selections.
    fn doubling(levels: usize) -> String {
        let mut q = String::from("{ ...F0 }\n");
        for i in 0..levels {
            q.push_str(&format!(
                "fragment F{i} on Query {{ viewer {{ ...F{n} }} node(id: \"x\") {{ ...F{n} }} }}\n",
                n = i + 1
            ));
        }
        q.push_str(&format!("fragment F{levels} on Query {{ __typename }}\n"));
        q
    }

    #[test]
    fn expansion_is_counted_once_per_fragment_and_saturates() {
        let doc = parse(&doubling(3));
        // Each level: 2 fields + 2 × the next; the last: 1.
        assert_eq!(
            expanded_selections(&doc).ok(),
            Some(2 + 2 * (2 + 2 * (2 + 2)))
        );
        let huge = parse(&doubling(200));
        assert_eq!(expanded_selections(&huge).ok(), Some(usize::MAX));
        assert!(check_document(&huge, &Limits::default()).is_err());
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let doc = parse("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }");
        assert!(matches!(
            expanded_selections(&doc),
            Err(ApiError::BadUserInput(_))
        ));
    }
}
