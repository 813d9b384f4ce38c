//! The statement of keyset pages under many parents at once: one statement gives each parent
//! its first rows after a cursor, in order, with the parent's total whatever the cursor.

use std::collections::HashMap;

use uuid::Uuid;

/// A page statement over `source` (`from … where …`, selecting `columns`): per value of
/// `parent`, the rows ordered by `order` for which `after` (the cursor's predicate) holds, at
/// most `limit` (a parameter) of them, each with `total` (the parent's rows, the cursor aside)
/// and `in_page`.
///
/// One sort of each parent's rows by `order` gives every count: the total over the partition,
/// a row's position, and its position among the rows after the cursor as a running count
/// filtered on `after`. The rows leave in that order, so nothing is sorted again. A parent with
/// no row after the cursor still gives its last row, with `in_page` false, for its total (the
/// total came from the page's rows before, and read 0 past the last).
///
/// The caller's row type reads the columns it names (`total` and `in_page` among them); the
/// statement also returns `pos`, `rn` and `after_cursor`.
pub(crate) fn pages_sql(
    columns: &str,
    source: &str,
    parent: &str,
    order: &str,
    after: &str,
    limit: &str,
) -> String {
    format!(
        "select *, after_cursor and rn <= {limit} as in_page from ( \
           select {columns}, \
                  count(*) over by_parent as total, \
                  count(*) over by_order as pos, \
                  count(*) filter (where {after}) over by_order as rn, \
                  ({after}) as after_cursor \
           {source} \
           window by_parent as (partition by {parent}), \
                  by_order as (by_parent order by {order} rows unbounded preceding) \
         ) t where (after_cursor and rn <= {limit}) or (rn = 0 and pos = total) \
         order by {parent}, {order}"
    )
}

/// One parent's page: its rows on the page, in order, and how many it has in all.
#[derive(Clone, Debug)]
pub struct Page<R> {
    pub rows: Vec<R>,
    pub total: i64,
}

impl<R> Default for Page<R> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            total: 0,
        }
    }
}

/// A row of a [`pages_sql`] statement: whose page it is on, the parent's total, and whether it
/// is on the page or only carries that total.
pub trait PageRow {
    fn parent(&self) -> Uuid;
    fn total(&self) -> i64;
    fn in_page(&self) -> bool;
}

/// The rows of a [`pages_sql`] statement as each parent's page (a parent without rows has none).
pub fn pages<R: PageRow>(rows: Vec<R>) -> HashMap<Uuid, Page<R>> {
    let mut pages: HashMap<Uuid, Page<R>> = HashMap::new();
    for row in rows {
        let page = pages.entry(row.parent()).or_default();
        page.total = row.total();
        if row.in_page() {
            page.rows.push(row);
        }
    }
    pages
}

/// [`PageRow`] for a row type: the parent's column, `total` and `in_page`.
macro_rules! page_row {
    ($row:ty, $parent:ident) => {
        impl $crate::db::models::keyset::PageRow for $row {
            fn parent(&self) -> ::uuid::Uuid {
                self.$parent
            }
            fn total(&self) -> i64 {
                self.total
            }
            fn in_page(&self) -> bool {
                self.in_page
            }
        }
    };
}
pub(crate) use page_row;
