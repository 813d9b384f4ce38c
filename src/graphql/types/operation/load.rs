//! How operation services are loaded: the `OperationService` object's value
//! ([`OperationServiceNode`]), services by id, the services of projects, the projects and grants
//! of services, and [`prime`], which loads what a list of services' selection asks for. Apart
//! from the service's fields (`types/operation.rs`) so that projects, which list their services,
//! need not import the module that lists projects.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, Lookahead};
use uuid::Uuid;

use crate::db::models::operation::{self, LinkPair, OperationService, Permission};
use crate::error::ApiError;
use crate::events::{Reads, Topic};
use crate::graphql::context::loaders;
use crate::graphql::loaders::{DbLoader, LoadError, Recorded, by_id_loader};
use crate::graphql::types::directory::TeamId;

/// Most services listed on one project, and most projects listed on one service.
pub const MAX_LINKED: i64 = 500;

/// A loaded service: the value of the `OperationService` object type (its fields are in
/// `types/operation.rs`).
#[derive(Clone)]
pub struct OperationServiceNode(pub Arc<OperationService>);

by_id_loader!(
    /// Operation services by id, as far as the viewer may see them.
    OperationServiceId,
    OperationService,
    operation::by_ids,
    |v, s| v.sees_operation_service(s.id),
    |id, _, reads| reads.add(Topic::OperationService(id))
);

/// The services linked to a project (ids, by service name, at most [`MAX_LINKED`]), as far as
/// the viewer may see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProjectServicesKey(pub Uuid);

/// The live projects a service is linked to (ids, by slug, at most [`MAX_LINKED`]), as far as
/// the viewer may see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceProjectsKey(pub Uuid);

/// The team grants on a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServicePermissionsKey(pub Uuid);

/// Groups link pairs by one end, in the statement's order; every key gets a (maybe empty) list.
fn by_end(
    keys: impl Iterator<Item = Uuid>,
    pairs: Vec<LinkPair>,
    end: impl Fn(&LinkPair) -> (Uuid, Uuid),
) -> HashMap<Uuid, Arc<Vec<Uuid>>> {
    let mut found: HashMap<Uuid, Vec<Uuid>> = keys.map(|k| (k, Vec::new())).collect();
    for pair in &pairs {
        let (key, other) = end(pair);
        found.entry(key).or_default().push(other);
    }
    found.into_iter().map(|(k, v)| (k, Arc::new(v))).collect()
}

impl Loader<ProjectServicesKey> for DbLoader {
    type Value = Arc<Vec<Uuid>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ProjectServicesKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ProjectServicesKey],
    ) -> Result<HashMap<ProjectServicesKey, Self::Value>, LoadError> {
        let projects: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let visible = self.db().visibility().operation_services.clone();
        let pairs = self
            .db()
            .run(async |conn| {
                operation::services_of_projects(conn, &projects, visible.as_deref(), MAX_LINKED)
                    .await
            })
            .await
            .map_err(Arc::new)?;
        let found = by_end(projects.iter().copied(), pairs, |p| {
            (p.project_id, p.operation_service_id)
        });
        Ok(found
            .into_iter()
            .map(|(k, v)| (ProjectServicesKey(k), v))
            .collect())
    }
}

impl Recorded for ProjectServicesKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        // A link made or removed publishes a change of its project.
        reads.add(Topic::Project(self.0));
    }
}

impl Loader<ServiceProjectsKey> for DbLoader {
    type Value = Arc<Vec<Uuid>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ServiceProjectsKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ServiceProjectsKey],
    ) -> Result<HashMap<ServiceProjectsKey, Self::Value>, LoadError> {
        let services: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let visible = self.db().visibility().projects.clone();
        let pairs = self
            .db()
            .run(async |conn| {
                operation::projects_of_services(conn, &services, visible.as_deref(), MAX_LINKED)
                    .await
            })
            .await
            .map_err(Arc::new)?;
        let found = by_end(services.iter().copied(), pairs, |p| {
            (p.operation_service_id, p.project_id)
        });
        Ok(found
            .into_iter()
            .map(|(k, v)| (ServiceProjectsKey(k), v))
            .collect())
    }
}

impl Recorded for ServiceProjectsKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        // A link made or removed publishes a change of its service.
        reads.add(Topic::OperationService(self.0));
    }
}

impl Loader<ServicePermissionsKey> for DbLoader {
    type Value = Arc<Vec<Permission>>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load ServicePermissionsKey", loader.keys = keys.len()))]
    async fn load(
        &self,
        keys: &[ServicePermissionsKey],
    ) -> Result<HashMap<ServicePermissionsKey, Self::Value>, LoadError> {
        let services: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let rows = self
            .db()
            .run(async |conn| operation::permissions_of(conn, &services).await)
            .await
            .map_err(Arc::new)?;
        let mut found: HashMap<ServicePermissionsKey, Vec<Permission>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            found
                .entry(ServicePermissionsKey(row.operation_service_id))
                .or_default()
                .push(row);
        }
        Ok(found.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
    }
}

impl Recorded for ServicePermissionsKey {
    fn record(&self, _: Option<&<DbLoader as Loader<Self>>::Value>, reads: &mut Reads) {
        // Grants change with an `access` event, which touches every result; the service's own
        // topic keeps the read classified.
        reads.add(Topic::OperationService(self.0));
    }
}

/// Loads, for every service of a list at once, the grants (and their teams) and the linked
/// project ids that `look` (the selection on each service) asks for; the projects themselves
/// are batched by their loader when the services resolve.
pub async fn prime(
    ctx: &Context<'_>,
    services: &[OperationServiceNode],
    look: &Lookahead<'_>,
) -> Result<(), ApiError> {
    if services.is_empty() {
        return Ok(());
    }
    let loaders = loaders(ctx)?;
    let ids = || services.iter().map(|s| s.0.id);
    if look.field("permissions").exists() {
        let grants = loaders.load_many(ids().map(ServicePermissionsKey)).await?;
        let teams: Vec<TeamId> = grants
            .values()
            .flat_map(|g| g.iter().map(|p| TeamId(p.team_id)))
            .collect();
        loaders.load_many(teams).await?;
    }
    if look.field("projects").exists() {
        loaders.load_many(ids().map(ServiceProjectsKey)).await?;
    }
    Ok(())
}

/// Loads the services of many projects at once (one statement for the links, one for the
/// services) and primes what `look` (the selection on each service) asks for.
pub async fn prime_of_projects(
    ctx: &Context<'_>,
    projects: &[Uuid],
    look: &Lookahead<'_>,
) -> Result<(), ApiError> {
    let loaders = loaders(ctx)?;
    let links = loaders
        .load_many(projects.iter().copied().map(ProjectServicesKey))
        .await?;
    let ids: Vec<OperationServiceId> = links
        .values()
        .flat_map(|l| l.iter().copied().map(OperationServiceId))
        .collect();
    let services = loaders.load_many(ids).await?;
    let nodes: Vec<OperationServiceNode> =
        services.into_values().map(OperationServiceNode).collect();
    prime(ctx, &nodes, look).await
}
