//! `ResourceConnection`: resources under an organization or a dock, filtered and paged.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Lookahead};
use uuid::Uuid;

use super::resource::ResourceInterface;
use super::resource::load::{ResourceKey, load_and_prime};
use super::resource_filter::ListArgs;
use crate::db::models::keyset;
use crate::db::models::resource::{self, Filter, Kind, PageRow, Parent};
use crate::error::ApiError;
use crate::graphql::connection::{Window, connection, node_looks, paginate};
use crate::graphql::context::{load_one, loaders};
use crate::graphql::loaders::{DbLoader, LoadError, group_by};

connection!(
    ResourceConnection,
    ResourceEdge,
    ResourceInterface,
    "Resource"
);

type Cursor = (String, String, Uuid);

/// A page of resources under one parent (org or dock).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourcePageKey {
    pub parent: Parent,
    pub id: Uuid,
    pub filter: resource::Filter,
}

/// Ids of one page of resources, and how many match in all.
pub type ResourcePage = keyset::Page<PageRow>;

impl crate::graphql::loaders::Recorded for ResourcePageKey {
    fn record(
        &self,
        _: Option<&<DbLoader as Loader<Self>>::Value>,
        reads: &mut crate::events::Reads,
    ) {
        use crate::events::Topic;
        reads.add(Topic::Resources);
        if self.parent == Parent::Dock {
            reads.add(Topic::Dock(self.id));
        }
        // Which resources a health filter keeps changes with every health transition.
        if self.filter.matching.reads_health() {
            reads.add(Topic::Health);
        }
    }
}

impl Loader<ResourcePageKey> for DbLoader {
    type Value = Arc<ResourcePage>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ResourcePageKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ResourcePageKey],
    ) -> Result<HashMap<ResourcePageKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| (k.parent, k.filter.clone()));
        self.db()
            .run(async |conn| {
                let mut found = HashMap::new();
                for ((parent, filter), members) in groups {
                    let ids: Vec<Uuid> = members.iter().map(|k| k.id).collect();
                    let visibility = self.db().visibility();
                    let restricted = resource::Filter {
                        visible: visibility
                            .linked_resources
                            .clone()
                            .map(|linked| (visibility.dock_ids().unwrap_or_default(), linked)),
                        ..filter.clone()
                    };
                    let mut pages =
                        keyset::pages(resource::page_ids(conn, parent, &ids, &restricted).await?);
                    for id in ids {
                        let page = pages.remove(&id).unwrap_or_default();
                        found.insert(
                            ResourcePageKey {
                                parent,
                                id,
                                filter: filter.clone(),
                            },
                            Arc::new(page),
                        );
                    }
                }
                Ok(found)
            })
            .await
            .map_err(Arc::new)
    }
}

fn page_key(
    parent: Parent,
    id: Uuid,
    mut filter: Filter,
    window: &Window<Cursor>,
) -> ResourcePageKey {
    filter.after = window.after.clone();
    filter.limit = window.limit();
    ResourcePageKey { parent, id, filter }
}

fn key_of(row: &PageRow) -> Option<ResourceKey> {
    Some(ResourceKey(Kind::parse(&row.kind)?, row.id))
}

/// One page of resources under `parent` `id`, ordered by `(name, kind, id)`.
pub async fn resource_page(
    ctx: &Context<'_>,
    parent: Parent,
    id: Uuid,
    filter: Filter,
    first: Option<i32>,
    after: Option<&str>,
) -> Result<ResourceConnection, ApiError> {
    let window = Window::<Cursor>::new(first, after)?;
    let page = load_one(ctx, page_key(parent, id, filter, &window))
        .await?
        .unwrap_or_default();
    let keys = page.rows.iter().filter_map(key_of).collect();
    let resources = load_and_prime(ctx, keys, &node_looks(&ctx.look_ahead())).await?;
    let (edges, info) = paginate(
        page.rows.clone(),
        window.first,
        window.after.is_some(),
        |r| (r.name.clone(), r.kind.clone(), r.id),
    );
    let edges = edges
        .into_iter()
        .filter_map(|(cursor, row)| {
            Some((
                cursor,
                ResourceInterface::from_row(resources.get(&key_of(&row)?)?.clone()),
            ))
        })
        .collect();
    Ok(ResourceConnection::new(edges, info, page.total))
}

/// Primes the `resources` pages a selection asks of each of many parents (`look` is the selection
/// on each parent), with their resources.
pub async fn prime_pages(
    ctx: &Context<'_>,
    parent: Parent,
    ids: &[Uuid],
    look: &Lookahead<'_>,
) -> Result<(), ApiError> {
    let field = look.field("resources");
    for selection in field.selection_fields() {
        let Some(args) = ListArgs::of_selection(&selection) else {
            continue;
        };
        let (Ok(filter), Ok(window)) = (
            args.page_filter(),
            Window::<Cursor>::new(args.first, args.after.as_deref()),
        ) else {
            continue;
        };
        let keys = ids
            .iter()
            .map(|id| page_key(parent, *id, filter.clone(), &window));
        let pages = loaders(ctx)?.load_many(keys).await?;
        let resource_keys = pages
            .values()
            .flat_map(|p| p.rows.iter().filter_map(key_of))
            .collect();
        load_and_prime(ctx, resource_keys, &node_looks(&field)).await?;
    }
    Ok(())
}
