//! Relay connections: page arguments, opaque keyset cursors, `PageInfo`.
//!
//! Every list is ordered by a stable key; a cursor is that key, opaque to clients (URL-safe
//! base64 of JSON). `first` defaults to 50 and may not exceed 500; only forward paging
//! (`first`/`after`) is offered.

use async_graphql::{Lookahead, SimpleObject};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub const DEFAULT_FIRST: i32 = 50;
pub const MAX_FIRST: i32 = 500;

/// A validated window: how many rows, and after which key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Window<K> {
    pub first: i64,
    pub after: Option<K>,
}

impl<K: DeserializeOwned> Window<K> {
    /// Checks `first` and decodes `after`.
    pub fn new(first: Option<i32>, after: Option<&str>) -> Result<Self, ApiError> {
        let first = first.unwrap_or(DEFAULT_FIRST);
        if !(0..=MAX_FIRST).contains(&first) {
            return Err(ApiError::BadUserInput(format!(
                "`first` must be between 0 and {MAX_FIRST}, got {first}"
            )));
        }
        let after = after.map(decode_cursor).transpose()?;
        Ok(Self {
            first: i64::from(first),
            after,
        })
    }

    /// Rows to fetch: one more than asked, to learn whether a next page exists.
    pub fn limit(&self) -> i64 {
        self.first + 1
    }
}

/// Encodes a sort key as an opaque cursor.
pub fn encode_cursor(key: &impl Serialize) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`] for the same list.
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| {
            ApiError::BadUserInput(
                "invalid cursor: pass an `endCursor` or edge `cursor` of this list".into(),
            )
        })
}

/// Relay's page information: where this page sits in its list. Page forward by passing
/// `endCursor` as the next call's `after`, while `hasNextPage` is true.
#[derive(SimpleObject, Clone, Debug, Default)]
pub struct PageInfo {
    /// True when more items follow this page.
    pub has_next_page: bool,
    /// True when this page was asked for with `after` (items precede it).
    pub has_previous_page: bool,
    /// The cursor of the page's first item; `null` for an empty page.
    pub start_cursor: Option<String>,
    /// The cursor of the page's last item (the next page's `after`); `null` for an empty page.
    pub end_cursor: Option<String>,
}

/// Trims the extra row fetched by [`Window::limit`] and builds the page information.
pub fn paginate<T, K: Serialize>(
    mut rows: Vec<T>,
    window_first: i64,
    had_after: bool,
    key: impl Fn(&T) -> K,
) -> (Vec<(String, T)>, PageInfo) {
    let (len, info) = page_of(&rows, window_first, had_after, &key);
    rows.truncate(len);
    let edges = rows
        .into_iter()
        .map(|row| (encode_cursor(&key(&row)), row))
        .collect();
    (edges, info)
}

/// How many of `rows` (fetched with the extra row of [`Window::limit`]) make the page, and the
/// page information. Only the first and last item's cursors are encoded: for edges that encode
/// their own cursor when a selection asks for it.
pub fn page_of<T, K: Serialize>(
    rows: &[T],
    window_first: i64,
    had_after: bool,
    key: impl Fn(&T) -> K,
) -> (usize, PageInfo) {
    let len = rows.len().min(usize::try_from(window_first).unwrap_or(0));
    let page = &rows[..len];
    let info = PageInfo {
        has_next_page: rows.len() > len,
        has_previous_page: had_after,
        start_cursor: page.first().map(|row| encode_cursor(&key(row))),
        end_cursor: page.last().map(|row| encode_cursor(&key(row))),
    };
    (len, info)
}

/// The selections that apply to each node of a connection (`edges.node` and `nodes`).
pub fn node_looks<'a>(connection: &Lookahead<'a>) -> Vec<Lookahead<'a>> {
    vec![
        connection.field("edges").field("node"),
        connection.field("nodes"),
    ]
}

/// Defines a connection type and its edge type over a node type (`$name`: the node's GraphQL
/// type, for the descriptions).
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $name:literal) => {
        /// An edge of the list: a node and its cursor.
        pub struct $edge {
            pub cursor: String,
            pub node: $node,
        }

        #[doc = concat!("One `", $name, "` of a list, with its cursor.")]
        #[async_graphql::Object]
        impl $edge {
            /// Opaque position of this item in the list: pass it as `after` to get the items
            /// that follow it.
            async fn cursor(&self) -> &str {
                &self.cursor
            }
            #[doc = concat!("The `", $name, "`.")]
            async fn node(&self) -> &$node {
                &self.node
            }
        }

        /// A page of the list (Relay connection).
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: $crate::graphql::connection::PageInfo,
            pub total_count: i64,
        }

        #[doc = concat!(
                    "A page of a list of `", $name, "` (Relay connection), in the list's order. ",
                    "Ask for `first` items (default 50, at most 500) `after` a cursor."
                )]
        #[async_graphql::Object]
        impl $conn {
            /// The page's items with their cursors, in order.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }
            /// The page's items, in order (`edges` without cursors).
            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }
            /// Whether more items follow, and the cursors to page on.
            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }
            /// How many items the whole list has (all pages). Some lists count only when this
            /// field is asked for.
            async fn total_count(&self) -> i64 {
                self.total_count
            }
        }

        impl $conn {
            /// A list with nothing in it (what the viewer may not see).
            pub fn empty() -> Self {
                Self::new(Vec::new(), Default::default(), 0)
            }

            /// Builds the connection from `(cursor, node)` pairs.
            pub fn new(
                edges: Vec<(String, $node)>,
                page_info: $crate::graphql::connection::PageInfo,
                total_count: i64,
            ) -> Self {
                Self {
                    edges: edges
                        .into_iter()
                        .map(|(cursor, node)| $edge { cursor, node })
                        .collect(),
                    page_info,
                    total_count,
                }
            }
        }
    };
}

pub(crate) use connection;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_bounded() {
        assert_eq!(
            Window::<String>::new(None, None).expect("default").first,
            50
        );
        assert!(matches!(
            Window::<String>::new(Some(501), None),
            Err(ApiError::BadUserInput(_))
        ));
        assert!(matches!(
            Window::<String>::new(Some(-1), None),
            Err(ApiError::BadUserInput(_))
        ));
        assert_eq!(
            Window::<String>::new(Some(0), None).expect("zero").limit(),
            1
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = encode_cursor(&("web", 3));
        assert_eq!(
            decode_cursor::<(String, i32)>(&cursor).expect("decodes"),
            ("web".to_owned(), 3)
        );
        assert!(decode_cursor::<(String, i32)>("%%%").is_err());
        assert!(decode_cursor::<(String, i32)>(&encode_cursor(&"other shape")).is_err());
    }

    #[test]
    fn paginate_trims_and_reports() {
        let (edges, info) = paginate(vec![1, 2, 3], 2, false, |n| *n);
        assert_eq!(edges.len(), 2);
        assert!(info.has_next_page && !info.has_previous_page);
        assert_eq!(info.end_cursor, Some(encode_cursor(&2)));
        let (edges, info) = paginate(Vec::<i32>::new(), 2, true, |n| *n);
        assert!(edges.is_empty() && !info.has_next_page && info.start_cursor.is_none());
    }
}
