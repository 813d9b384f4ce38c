//! How docks are loaded: the `Dock` object's value ([`DockNode`]), docks and sync runs by id, and
//! pages of a dock's sync runs. Apart from the dock's fields (`types/dock.rs`) so that resources,
//! which name their dock, need not import the module that lists resources.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::db::models::dock::{self, Dock, SyncRunRow};
use crate::db::models::keyset;
use crate::events::{Reads, Topic};
use crate::graphql::loaders::{DbLoader, LoadError, Recorded, by_id_loader, group_by};

/// A loaded dock: the value of the `Dock` object type (its fields are in `types/dock.rs`).
pub struct DockNode(pub Arc<Dock>);

by_id_loader!(
    /// Live docks by id, as far as the viewer may see them.
    DockId,
    Dock,
    dock::by_ids,
    |v, d| d.deleted_at.is_none() && v.sees_dock(d.id),
    |id, _, reads| reads.add(Topic::Dock(id))
);
by_id_loader!(
    /// Sync runs by id, of the docks the viewer may see.
    SyncRunId,
    SyncRunRow,
    dock::sync_runs_by_ids,
    |v, r| v.sees_dock(r.dock_id),
    |_, run, reads| reads.extend(run.map(|r| Topic::Dock(r.dock_id)))
);

impl Recorded for SyncRunsKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::Dock(self.dock));
    }
}

/// A page of one dock's sync runs, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SyncRunsKey {
    pub dock: Uuid,
    pub after: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
    pub limit: i64,
}

impl Loader<SyncRunsKey> for DbLoader {
    type Value = Arc<keyset::Page<SyncRunRow>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load SyncRunsKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[SyncRunsKey],
    ) -> Result<HashMap<SyncRunsKey, Self::Value>, LoadError> {
        let groups = group_by(keys, |k| (k.after, k.limit));
        self.db()
            .run(async |conn| {
                let mut found = HashMap::new();
                for ((after, limit), members) in groups {
                    let docks: Vec<Uuid> = members.iter().map(|k| k.dock).collect();
                    let mut pages =
                        keyset::pages(dock::sync_runs_page(conn, &docks, after, limit).await?);
                    for dock in docks {
                        let page = pages.remove(&dock).unwrap_or_default();
                        found.insert(SyncRunsKey { dock, after, limit }, Arc::new(page));
                    }
                }
                Ok(found)
            })
            .await
            .map_err(Arc::new)
    }
}
