//! [`Serial`]: an object resolved in place, its fields one after another, the plain ones without
//! a future at all.
//!
//! async-graphql resolves an object's fields concurrently: every object of a response gets a set
//! of futures to poll (a heap allocation, a task slot and a waker per field), and every field goes
//! through the derive's resolver, an `async fn` that matches the field's name. Where every field
//! is already in memory — the dashboard's resources, their health and dock, all loaded up front by
//! the look-ahead-primed loaders — that machinery is most of the object's cost and the
//! concurrency buys nothing. Lists still resolve their items concurrently, so a loader still sees
//! every item's key in one batch.
//!
//! A type that implements [`Plain`] answers its plain fields (no arguments, nothing to wait for,
//! never an error) as values directly; [`Serial`] resolves such an object by walking its
//! selection (fragments, aliases, `__typename`, repeated fields merged as async-graphql merges
//! them) and asks the derive's resolver, awaited in turn, only for the other fields. An object
//! whose whole selection is plain (a resource's `health`) is answered inside its parent's plain
//! field ([`now`]). With a field directive present, the object goes through async-graphql's own
//! serial resolution instead. The schema installs no extension (`schema_builder`): plain fields
//! would not pass through one's hooks. Debug builds check every plain answer
//! against the derive's resolver, so the test suite catches a plain field that says otherwise.
//!
//! The field futures async-graphql moves onto the heap, one per field, are all as large as the
//! object's largest: a field that waits on the database therefore boxes its own wait
//! (`Box::pin(…).await`), so that `name` or `status` does not copy a loader's state around.
//!
//! When the answer goes out as one body written by [`crate::graphql::json`] (an HTTP query:
//! [`JsonText`]), such an object is answered as its JSON text rather than as a map of values.
//!
//! Object types that are not [`Plain`] take the derive's own `#[Object(serial)]`. The schema is
//! unchanged: `Serial<T>` is `T`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;

use async_graphql::indexmap::IndexMap;
use async_graphql::indexmap::map::Entry;
use async_graphql::parser::types::{
    Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container_serial};
use async_graphql::{
    Context, ContextSelectionSet, Name, OutputType, Positioned, ServerError, ServerResult, Value,
};

use crate::graphql::json;

/// An object that answers some of its fields without resolving them (see the module's doc).
pub trait Plain: ContainerType + Send + Sync {
    /// The value of the field `ctx` names when it is one of this object's plain fields — it
    /// takes no arguments, needs nothing it must wait for, and cannot fail — exactly as the
    /// derive's resolver would give it. `None`: the resolver answers it.
    fn plain(&self, ctx: &Context<'_>) -> Option<Value>;

    /// Resolves the object in place; an interface resolves its concrete object instead (its own
    /// resolver answers only the interface's fields).
    fn in_place<'a>(
        &'a self,
        ctx: &'a ContextSelectionSet<'a>,
    ) -> impl Future<Output = ServerResult<Value>> + Send + 'a {
        in_place(ctx, self)
    }
}

impl<T: Plain + ?Sized> Plain for &T {
    fn plain(&self, ctx: &Context<'_>) -> Option<Value> {
        T::plain(*self, ctx)
    }

    fn in_place<'a>(
        &'a self,
        ctx: &'a ContextSelectionSet<'a>,
    ) -> impl Future<Output = ServerResult<Value>> + Send + 'a {
        T::in_place(*self, ctx)
    }
}

/// `T`, resolved in place.
pub struct Serial<T>(pub T);

impl<T: Plain> OutputType for Serial<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        _field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        self.0.in_place(ctx).await
    }
}

/// Resolves `root` with the selection `ctx` holds: plain fields directly, the others through
/// the derive's resolver one after another.
pub async fn in_place<T: Plain + ?Sized>(
    ctx: &ContextSelectionSet<'_>,
    root: &T,
) -> ServerResult<Value> {
    let mut fields = Vec::with_capacity(ctx.item.node.items.len());
    if !flatten(ctx, root, &ctx.item.node, &mut fields)? {
        return resolve_container_serial(ctx, root).await;
    }
    let mut object = Object::new(ctx, fields.len());
    for field in fields {
        let ctx_field = ctx.with_field(field);
        let value = match answer_now(root, &ctx_field) {
            Some(value) => {
                #[cfg(debug_assertions)]
                check_plain(root, &ctx_field, &value).await;
                value
            }
            None => match root.resolve_field(&ctx_field).await {
                Ok(value) => value.unwrap_or_default(),
                Err(err) => {
                    ctx.add_error(err);
                    continue;
                }
            },
        };
        object.put(&field.node.response_key().node, value);
    }
    Ok(object.finish())
}

/// The value of the object field `ctx` names, with `root` its object, when every field it
/// selects is plain; `None` otherwise (the field's resolver answers it then). For an object
/// valued plain field: `Some(now(ctx, &child))`.
pub fn now<T: Plain + ?Sized>(ctx: &Context<'_>, root: &T) -> Option<Value> {
    let ctx = ctx.with_selection_set(&ctx.item.node.selection_set);
    let mut fields = Vec::with_capacity(ctx.item.node.items.len());
    if !flatten(&ctx, root, &ctx.item.node, &mut fields).ok()? {
        return None;
    }
    let mut object = Object::new(&ctx, fields.len());
    for field in fields {
        let value = answer_now(root, &ctx.with_field(field))?;
        object.put(&field.node.response_key().node, value);
    }
    Some(object.finish())
}

/// `__typename`, or a plain field's value, of the field `ctx` names; `None`: its resolver
/// answers it.
fn answer_now<T: Plain + ?Sized>(root: &T, ctx: &Context<'_>) -> Option<Value> {
    if ctx.item.node.name.node == "__typename" {
        Some(Value::String(root.introspection_type_name().into_owned()))
    } else {
        root.plain(ctx)
    }
}

/// An object's answer, built from its fields' values: a map, or its JSON text when
/// [`JsonText`] allows it.
enum Object {
    Map(IndexMap<Name, Value>),
    Text(Vec<u8>),
}

impl Object {
    fn new(ctx: &ContextSelectionSet<'_>, fields: usize) -> Self {
        if JsonText::allowed(ctx) {
            Self::Text(Vec::with_capacity(32 * fields))
        } else {
            Self::Map(IndexMap::with_capacity(fields))
        }
    }

    fn put(&mut self, key: &Name, value: Value) {
        match self {
            Self::Map(map) => merge(map, key.clone(), value),
            Self::Text(text) => {
                // A nested object's text is copied whole: room for it at once, not by doublings.
                if let Value::Binary(json) = &value {
                    text.reserve(key.len() + json.len() + 4);
                }
                text.push(if text.is_empty() { b'{' } else { b',' });
                json::write_member(text, key, &value);
            }
        }
    }

    /// `null` when no field applied, as async-graphql answers it.
    fn finish(self) -> Value {
        match self {
            Self::Map(map) if map.is_empty() => Value::Null,
            Self::Map(map) => Value::Object(map),
            Self::Text(text) if text.is_empty() => Value::Null,
            Self::Text(mut text) => {
                text.push(b'}');
                json::text(text)
            }
        }
    }
}

/// Request data saying that the response goes out as one body written by
/// [`crate::graphql::json`] (an HTTP query's), which copies an object's JSON text where it
/// stands: objects resolved in place are then answered as their JSON text rather than as maps
/// of values, which saves building, walking and dropping a map and a value per field. Only
/// when no selection set of the document repeats a response key: async-graphql merges a
/// repeated key's objects, and text cannot be merged.
#[derive(Default)]
pub struct JsonText(OnceLock<bool>);

impl JsonText {
    fn allowed(ctx: &ContextSelectionSet<'_>) -> bool {
        ctx.data_opt::<JsonText>().is_some_and(|text| {
            *text.0.get_or_init(|| {
                keys_never_repeat(&ctx.query_env.operation, &ctx.query_env.fragments)
            })
        })
    }
}

/// Selections looked at, at most, to decide [`JsonText`] (beyond: maps are used).
const KEYS_LOOKED_AT: usize = 20_000;

/// Fragments nested in one another, at most, that [`JsonText`] looks through (deeper: maps are
/// used), so that a hostile document cannot make the look recurse as deep as it is long.
const FRAGMENTS_NESTED: usize = 64;

/// True when no selection set of the operation, nor of a fragment, gives the same response key
/// twice, through its fragments (whatever their type conditions: a key repeated under two
/// types counts as repeated).
fn keys_never_repeat(
    operation: &Positioned<OperationDefinition>,
    fragments: &HashMap<Name, Positioned<FragmentDefinition>>,
) -> bool {
    let mut sets = vec![&operation.node.selection_set.node];
    sets.extend(fragments.values().map(|f| &f.node.selection_set.node));
    let mut budget = KEYS_LOOKED_AT;
    let mut keys = Vec::new();
    while let Some(set) = sets.pop() {
        keys.clear();
        if !response_keys(set, fragments, &mut keys, Some(&mut sets), &mut budget, 0) {
            return false;
        }
        keys.sort_unstable();
        if keys.windows(2).any(|pair| pair[0] == pair[1]) {
            return false;
        }
    }
    true
}

/// The response keys `set` gives its object, through fragments, onto `keys`; the selection
/// sets of its fields onto `nested` when given (a fragment's are looked at from its definition).
/// `false` when the budget runs out, fragments nest deeper than [`FRAGMENTS_NESTED`] or a
/// fragment is unknown.
fn response_keys<'a>(
    set: &'a SelectionSet,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    keys: &mut Vec<&'a str>,
    mut nested: Option<&mut Vec<&'a SelectionSet>>,
    budget: &mut usize,
    depth: usize,
) -> bool {
    for selection in &set.items {
        let Some(left) = budget.checked_sub(1) else {
            return false;
        };
        *budget = left;
        let found = match &selection.node {
            Selection::Field(field) => {
                keys.push(field.node.response_key().node.as_str());
                if let Some(nested) = nested.as_deref_mut() {
                    nested.push(&field.node.selection_set.node);
                }
                true
            }
            Selection::FragmentSpread(_) | Selection::InlineFragment(_)
                if depth == FRAGMENTS_NESTED =>
            {
                false
            }
            Selection::FragmentSpread(spread) => {
                match fragments.get(&spread.node.fragment_name.node) {
                    Some(fragment) => response_keys(
                        &fragment.node.selection_set.node,
                        fragments,
                        keys,
                        None,
                        budget,
                        depth + 1,
                    ),
                    None => false,
                }
            }
            Selection::InlineFragment(inline) => response_keys(
                &inline.node.selection_set.node,
                fragments,
                keys,
                nested.as_deref_mut(),
                budget,
                depth + 1,
            ),
        };
        if !found {
            return false;
        }
    }
    true
}

/// The fields `set` selects on `root`, in order, through the fragments that apply to it (as
/// async-graphql's `Fields::add_set` finds them); `false` when a field carries a directive.
fn flatten<'a, T: Plain + ?Sized>(
    ctx: &ContextSelectionSet<'a>,
    root: &T,
    set: &'a SelectionSet,
    out: &mut Vec<&'a Positioned<Field>>,
) -> ServerResult<bool> {
    for selection in &set.items {
        let (condition, selection_set) = match &selection.node {
            Selection::Field(field) => {
                if !field.node.directives.is_empty() {
                    return Ok(false);
                }
                out.push(field);
                continue;
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                let Some(fragment) = ctx.query_env.fragments.get(name) else {
                    return Err(ServerError::new(
                        format!(r#"Unknown fragment "{name}"."#),
                        Some(spread.pos),
                    ));
                };
                (
                    Some(&fragment.node.type_condition),
                    &fragment.node.selection_set,
                )
            }
            Selection::InlineFragment(fragment) => (
                fragment.node.type_condition.as_ref(),
                &fragment.node.selection_set,
            ),
        };
        let condition = condition.map(|c| c.node.on.node.as_str());
        let concrete = root.introspection_type_name();
        let applies = condition.is_none_or(|condition| {
            *concrete == *condition
                || ctx
                    .schema_env
                    .registry
                    .implements
                    .get(&*concrete)
                    .is_some_and(|interfaces| interfaces.contains(condition))
                || T::type_name() == condition
        });
        if applies && !flatten(ctx, root, &selection_set.node, out)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Puts a field's value in its object, merging a repeated response key's objects (and lists of
/// objects) as async-graphql does.
fn merge(target: &mut IndexMap<Name, Value>, name: Name, value: Value) {
    // One lookup (`entry`), not a `get_mut` then an `insert`: every field of every in-place
    // object comes through here, and the key's hash is SipHash.
    let mut previous = match target.entry(name) {
        Entry::Vacant(slot) => {
            slot.insert(value);
            return;
        }
        Entry::Occupied(slot) => slot,
    };
    match (previous.get_mut(), value) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                merge(into, key, value);
            }
        }
        (Value::List(into), Value::List(from)) => {
            for (index, value) in from.into_iter().enumerate() {
                if let (Some(Value::Object(into)), Value::Object(from)) =
                    (into.get_mut(index), value)
                {
                    for (key, value) in from {
                        merge(into, key, value);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Debug builds: a plain answer must be the derive resolver's.
#[cfg(debug_assertions)]
async fn check_plain<T: Plain + ?Sized>(root: &T, ctx: &Context<'_>, plain: &Value) {
    if ctx.item.node.name.node == "__typename" {
        return; // not a resolver's field
    }
    let resolved = root
        .resolve_field(ctx)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    // Compared as JSON: either may be an object's text (`JsonText`).
    assert_eq!(
        json::value(&resolved),
        json::value(plain),
        "the plain answer of {}.{} differs from its resolver's",
        T::type_name(),
        ctx.item.node.name.node
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never_repeat(document: &str) -> bool {
        let document = async_graphql::parser::parse_query(document).expect("parses");
        let (_, operation) = document.operations.iter().next().expect("an operation");
        let operation = Positioned::new(operation.node.clone(), operation.pos);
        keys_never_repeat(&operation, &document.fragments)
    }

    #[test]
    fn a_response_key_repeated_anywhere_turns_text_off() {
        assert!(never_repeat(
            "{ a b: a c { a b } ...F ... on T { d } } fragment F on Q { e f { a } }"
        ));
        // At the root, nested, through an inline fragment, a spread, or inside a fragment.
        assert!(!never_repeat("{ a a }"));
        assert!(!never_repeat("{ a b: c b }"));
        assert!(!never_repeat("{ c { x x } }"));
        assert!(!never_repeat("{ a ... on T { a } }"));
        assert!(!never_repeat("{ a ...F } fragment F on Q { a }"));
        assert!(!never_repeat("{ ...F } fragment F on Q { f { y y } }"));
        assert!(!never_repeat(
            "{ c { ... on T { z { w ... on U { w } } } } }"
        ));
        // Two spreads of one fragment repeat its keys.
        assert!(!never_repeat("{ ...F ...F } fragment F on Q { a }"));
        // An unknown fragment: maps (execution reports it).
        assert!(!never_repeat("{ ...Missing }"));
    }

    #[test]
    fn fragments_nested_too_deep_to_look_through_are_answered_with_maps() {
        // A chain of spreads: the parser bounds how deep a document nests, not how long a
        // chain of fragments spreading the next one is.
        // `nest(n)`: n fragments, each spread in the one before.
        let nest = |n: usize| {
            let chain: String = (1..n)
                .map(|i| format!("fragment F{} on Q {{ ...F{i} }} ", i - 1))
                .collect();
            format!("{{ ...F0 }} {chain} fragment F{} on Q {{ a }}", n - 1)
        };
        assert!(never_repeat(&nest(1)));
        assert!(never_repeat(&nest(FRAGMENTS_NESTED)));
        assert!(!never_repeat(&nest(FRAGMENTS_NESTED + 1)));
    }

    #[test]
    fn a_document_too_large_to_look_at_is_answered_with_maps() {
        let fields: Vec<String> = (0..KEYS_LOOKED_AT + 1).map(|i| format!("f{i}")).collect();
        assert!(!never_repeat(&format!("{{ {} }}", fields.join(" "))));
        let fields: Vec<String> = (0..100).map(|i| format!("f{i}")).collect();
        assert!(never_repeat(&format!("{{ {} }}", fields.join(" "))));
    }
}
