//! How action runs are loaded: the `ActionRun` object's value ([`ActionRunNode`]), runs by id
//! and a resource's newest runs. Apart from the run's fields (`types/action.rs`) so that
//! resources, which list their runs, need not import the module that resolves a run's resource.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::Loader;
use uuid::Uuid;

use crate::db::models::action::{self, ActionRun};
use crate::events::{Reads, Topic};
use crate::graphql::context::load_one;
use crate::graphql::loaders::{DbLoader, LoadError, Recorded, by_id_loader};

/// A loaded run: the value of the `ActionRun` object type (its fields are in
/// `types/action.rs`).
#[derive(Clone)]
pub struct ActionRunNode(pub Arc<ActionRun>);

/// The most runs `Resource.actionRuns` lists.
pub const MAX_RUNS: i32 = 100;

by_id_loader!(
    /// Action runs by id, as far as the viewer may see their resources.
    ActionRunId,
    ActionRun,
    action::by_ids,
    |v, r| v.sees_resource(r.resource_id, r.dock_id),
    |_, _, reads| reads.add(Topic::ActionRuns)
);

/// The newest [`MAX_RUNS`] runs of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceRunsKey(pub Uuid);

impl Loader<ResourceRunsKey> for DbLoader {
    type Value = Arc<Vec<Arc<ActionRun>>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ResourceRunsKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ResourceRunsKey],
    ) -> Result<HashMap<ResourceRunsKey, Self::Value>, LoadError> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .db()
            .run(async |conn| action::of_resources(conn, &ids, i64::from(MAX_RUNS)).await)
            .await
            .map_err(Arc::new)?;
        let visibility = self.db().visibility();
        let mut found: HashMap<Uuid, Vec<Arc<ActionRun>>> =
            ids.iter().map(|id| (*id, Vec::new())).collect();
        for row in rows {
            if visibility.sees_resource(row.resource_id, row.dock_id) {
                found
                    .entry(row.resource_id)
                    .or_default()
                    .push(Arc::new(row));
            }
        }
        Ok(found
            .into_iter()
            .map(|(id, runs)| (ResourceRunsKey(id), Arc::new(runs)))
            .collect())
    }
}

impl Recorded for ResourceRunsKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        reads.add(Topic::ActionRuns);
    }
}

/// `Resource.actionRuns`: the resource's newest `first` runs (at most [`MAX_RUNS`]).
pub async fn runs_of(
    ctx: &Context<'_>,
    resource: Uuid,
    first: Option<i32>,
) -> async_graphql::Result<Vec<ActionRunNode>> {
    let first = usize::try_from(first.unwrap_or(20).clamp(0, MAX_RUNS)).unwrap_or(0);
    let runs = load_one(ctx, ResourceRunsKey(resource)).await?;
    Ok(runs
        .iter()
        .flat_map(|runs| runs.iter())
        .take(first)
        .cloned()
        .map(ActionRunNode)
        .collect())
}
