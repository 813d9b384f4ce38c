//! `Organization`: a tenant, and the root of everything a dashboard lists.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::alert::AlertConnection;
use super::audit::{AuditLogConnection, AuditLogNode};
use super::directory::{ClientNode, MemberNode, RoleNode, TeamNode};
use super::dock::{self, DockConnection, DockNode};
use super::invitation::InvitationNode;
use super::operation::{OperationServiceConnection, OperationServiceNode, load as operation};
use super::project::{self, ProjectNode};
use super::resource_filter::{ListArgs, ResourceFilter};
use super::resource_list::{ResourceConnection, resource_page};
use crate::auth::permissions::{Area, Level};
use crate::db::models::organization::Organization;
use crate::db::models::resource::{Kind, Parent};
use crate::db::models::{
    audit, directory, dock as dock_model, health_interval, invitation,
    operation as operation_model, project as project_model,
};
use crate::events::Topic;
use crate::graphql::connection::{Window, connection, node_looks, paginate};
use crate::graphql::context::{record, run, run_reading, viewer, visibility};
use crate::graphql::enums::{HealthState, ResourceKind, ResourceStatus};
use crate::graphql::ids;

/// An organization the viewer belongs to. The request's active organization bounds every read:
/// of any other (`viewer.organizations`, `node`), only `id`, `name` and `slug` show, and every
/// list on it is empty.
pub struct OrganizationNode(pub Organization);

impl OrganizationNode {
    /// True when this is the organization the request acts in.
    fn is_active(&self, ctx: &Context<'_>) -> Result<bool, crate::error::ApiError> {
        Ok(viewer(ctx)?.organization.id == self.0.id)
    }
}

connection!(ProjectConnection, ProjectEdge, ProjectNode, "Project");

/// A tenant: the projects, docks, resources, people and settings of one organization. Of an
/// organization other than the request's active one, only `id`, `name` and `slug` show and every
/// list is empty; pick the active one with the token's `org` claim or `X-Org`.
#[Object(name = "Organization")]
impl OrganizationNode {
    /// The organization's global id.
    pub async fn id(&self) -> ID {
        ids::encode("Organization", self.0.id)
    }
    /// The organization's name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The organization's short name, unique on the server (what `X-Org` takes).
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// Live projects by slug; `search` matches name or slug, case-insensitively.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many projects (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the projects after it.")] after: Option<String>,
        #[graphql(desc = "Only projects whose name or slug contains this, in any case.")]
        search: Option<String>,
    ) -> async_graphql::Result<ProjectConnection> {
        if !self.is_active(ctx)? {
            return Ok(ProjectConnection::empty());
        }
        let window = Window::<String>::new(first, after.as_deref())?;
        let look = ctx.look_ahead();
        let (org, search) = (self.0.id, search.as_deref());
        let counted = look.field("totalCount").exists();
        let visible = visibility(ctx)?.projects.clone();
        // Every change of a project's row changes `Projects`.
        let (rows, total) = run_reading(ctx, [Topic::Projects], async |conn| {
            let rows = project_model::page(
                conn,
                org,
                search,
                visible.as_deref(),
                window.after.as_deref(),
                window.limit(),
            )
            .await?;
            let total = if counted {
                project_model::count(conn, org, search, visible.as_deref()).await?
            } else {
                0
            };
            Ok((rows, total))
        })
        .await?;
        let nodes: Vec<ProjectNode> = rows.into_iter().map(|p| ProjectNode(Arc::new(p))).collect();
        let (edges, info) = paginate(nodes, window.first, window.after.is_some(), |p| {
            p.0.slug.clone()
        });
        let listed: Vec<ProjectNode> = edges.iter().map(|(_, p)| p.clone()).collect();
        for node_look in node_looks(&look) {
            project::load::prime(ctx, &listed, &node_look).await?;
        }
        Ok(ProjectConnection::new(edges, info, total))
    }
    /// Live docks by name.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn docks(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many docks (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the docks after it.")] after: Option<String>,
    ) -> async_graphql::Result<DockConnection> {
        if !self.is_active(ctx)? {
            return Ok(DockConnection::empty());
        }
        let window = Window::<(String, uuid::Uuid)>::new(first, after.as_deref())?;
        let look = ctx.look_ahead();
        let (org, counted) = (self.0.id, look.field("totalCount").exists());
        let visible = visibility(ctx)?.dock_ids();
        let (rows, total) = run_reading(ctx, [Topic::Docks], async |conn| {
            let rows = dock_model::page(
                conn,
                org,
                visible.as_deref(),
                window.after.clone(),
                window.limit(),
            )
            .await?;
            let total = if counted {
                dock_model::count(conn, org, visible.as_deref()).await?
            } else {
                0
            };
            Ok((rows, total))
        })
        .await?;
        // A sync changes its dock's row and names only the dock.
        record(ctx, rows.iter().map(|d| Topic::Dock(d.id)))?;
        let nodes: Vec<DockNode> = rows.into_iter().map(|d| DockNode(Arc::new(d))).collect();
        let (edges, info) = paginate(nodes, window.first, window.after.is_some(), |d| {
            (d.0.name.clone(), d.0.id)
        });
        let listed: Vec<DockNode> = edges.iter().map(|(_, d)| DockNode(d.0.clone())).collect();
        for node_look in node_looks(&look) {
            dock::prime(ctx, &listed, &node_look).await?;
        }
        Ok(DockConnection::new(edges, info, total))
    }
    /// Operation services by name (then id): all of them with operations READ, else those
    /// granted to the viewer's teams (none in the client portal).
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn operation_services(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many services (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the services after it.")] after: Option<String>,
    ) -> async_graphql::Result<OperationServiceConnection> {
        if !self.is_active(ctx)? {
            return Ok(OperationServiceConnection::empty());
        }
        let window = Window::<(String, uuid::Uuid)>::new(first, after.as_deref())?;
        let look = ctx.look_ahead();
        let (org, counted) = (self.0.id, look.field("totalCount").exists());
        let visible = visibility(ctx)?.operation_services.clone();
        let (rows, total) = run_reading(ctx, [Topic::OperationServices], async |conn| {
            let rows = operation_model::page(
                conn,
                org,
                visible.as_deref(),
                window.after.clone(),
                window.limit(),
            )
            .await?;
            let total = if counted {
                operation_model::count(conn, org, visible.as_deref()).await?
            } else {
                0
            };
            Ok((rows, total))
        })
        .await?;
        // A link or a change of a service names only the service.
        record(ctx, rows.iter().map(|s| Topic::OperationService(s.id)))?;
        let nodes: Vec<OperationServiceNode> = rows
            .into_iter()
            .map(|s| OperationServiceNode(Arc::new(s)))
            .collect();
        let (edges, info) = paginate(nodes, window.first, window.after.is_some(), |s| {
            (s.0.name.clone(), s.0.id)
        });
        let listed: Vec<OperationServiceNode> = edges.iter().map(|(_, s)| s.clone()).collect();
        for node_look in node_looks(&look) {
            operation::prime(ctx, &listed, &node_look).await?;
        }
        Ok(OperationServiceConnection::new(edges, info, total))
    }
    /// Every resource of the organization by name, filtered by kind, status and health (as
    /// arguments) and by anything in `filter`; arguments and `filter` must both hold.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    #[expect(
        clippy::too_many_arguments,
        reason = "GraphQL arguments; `kinds`, `status` and `health` predate `filter` and stay"
    )]
    async fn resources(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many resources (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the resources after it.")] after: Option<String>,
        #[graphql(desc = "Only resources of these kinds; all kinds when omitted.")] kinds: Option<
            Vec<ResourceKind>,
        >,
        #[graphql(desc = "Only resources in one of these statuses; any when omitted.")]
        status: Option<Vec<ResourceStatus>>,
        #[graphql(desc = "Only resources in one of these health states; any when omitted.")]
        health: Option<Vec<HealthState>>,
        #[graphql(desc = "Which resources to keep: provider, dock, tags, name and more.")]
        filter: Option<ResourceFilter>,
    ) -> async_graphql::Result<ResourceConnection> {
        if !self.is_active(ctx)? {
            return Ok(ResourceConnection::empty());
        }
        let args = ListArgs {
            first,
            after,
            kinds,
            status,
            health,
            filter,
        };
        let filter = args.page_filter()?;
        Ok(resource_page(
            ctx,
            Parent::Org,
            self.0.id,
            filter,
            first,
            args.after.as_deref(),
        )
        .await?)
    }
    /// The audit log, newest first; needs audit READ. Filters: actions, acting user, since.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn audit_logs(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many entries (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the entries after it.")] after: Option<String>,
        #[graphql(desc = "Only these actions (e.g. `project.create`); all when omitted.")]
        actions: Option<Vec<String>>,
        #[graphql(desc = "Only acts of this user (a `User` id).")] actor_id: Option<ID>,
        #[graphql(desc = "Only entries from this time on.")] since: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<AuditLogConnection> {
        if !self.is_active(ctx)? {
            return Ok(AuditLogConnection::empty());
        }
        if !viewer(ctx)?.can(Area::Audit, Level::Read) {
            return Err(
                crate::error::ApiError::Forbidden("the audit log needs audit READ".into()).into(),
            );
        }
        let window = Window::<(DateTime<Utc>, uuid::Uuid)>::new(first, after.as_deref())?;
        let user_id = actor_id
            .as_deref()
            .map(|id| ids::decode_as(id, "User"))
            .transpose()?;
        let filter = audit::Filter {
            actions,
            user_id,
            since,
            after: window.after,
            limit: window.limit(),
        };
        let org = self.0.id;
        let (rows, total) = run(ctx, async |conn| audit::page(conn, org, &filter).await).await?;
        let nodes: Vec<AuditLogNode> = rows
            .into_iter()
            .map(|r| AuditLogNode(Arc::new(r)))
            .collect();
        let (edges, info) = paginate(nodes, window.first, window.after.is_some(), |a| {
            (a.0.created_at, a.0.id)
        });
        Ok(AuditLogConnection::new(edges, info, total))
    }
    /// Alerts on the resources the viewer sees, newest first; `open` picks open (`true`) or
    /// resolved (`false`) ones. Needs monitoring READ.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many alerts (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the alerts after it.")] after: Option<String>,
        #[graphql(
            desc = "`true`: only open alerts; `false`: only resolved ones; both when omitted."
        )]
        open: Option<bool>,
    ) -> async_graphql::Result<AlertConnection> {
        if !self.is_active(ctx)? {
            return Ok(AlertConnection::empty());
        }
        let page = (first, after.as_deref());
        Ok(super::alert::alerts_of(ctx, self.0.id, page, open).await?)
    }
    /// Where this organization's alerts are sent, by name. Needs monitoring READ.
    #[graphql(complexity = "first.unwrap_or(50).max(0) as usize * child_complexity")]
    async fn notification_channels(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many channels (default 50, at most 500).")] first: Option<i32>,
        #[graphql(desc = "A cursor of this list: the channels after it.")] after: Option<String>,
    ) -> async_graphql::Result<super::notification::NotificationChannelConnection> {
        if !self.is_active(ctx)? {
            return Ok(super::notification::NotificationChannelConnection::empty());
        }
        let page = (first, after.as_deref());
        Ok(super::notification::channels_of(ctx, self.0.id, page).await?)
    }
    /// This organization's probe intervals per resource kind, where they differ from the
    /// server's default (`setHealthCheckInterval`). Needs monitoring READ.
    async fn health_check_intervals(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<HealthCheckInterval>> {
        if !self.is_active(ctx)? {
            return Ok(Vec::new());
        }
        let viewer = viewer(ctx)?;
        if !viewer
            .effective_permissions()
            .allows(Area::Monitoring, Level::Read)
        {
            return Err(crate::error::ApiError::Forbidden(
                "health check intervals need monitoring READ".into(),
            )
            .into());
        }
        let rows = run(ctx, async |conn| health_interval::all(conn).await).await?;
        Ok(intervals_of(rows))
    }
    /// Teams by name (a guest's own teams).
    async fn teams(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TeamNode>> {
        if !self.is_active(ctx)? {
            return Ok(Vec::new());
        }
        let org = self.0.id;
        let visible = visibility(ctx)?;
        let rows = run(ctx, async |conn| directory::teams(conn, org).await).await?;
        Ok(rows
            .into_iter()
            .filter(|t| visible.sees_team(t.id))
            .map(|t| TeamNode(Arc::new(t)))
            .collect())
    }
    /// Clients by name (a guest's own clients).
    async fn clients(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ClientNode>> {
        if !self.is_active(ctx)? {
            return Ok(Vec::new());
        }
        let org = self.0.id;
        let visible = visibility(ctx)?;
        let rows = run(ctx, async |conn| directory::clients(conn, org).await).await?;
        Ok(rows
            .into_iter()
            .filter(|c| visible.sees_client(c.id))
            .map(|c| ClientNode(Arc::new(c)))
            .collect())
    }
    /// Members by name, with their roles (none for guests).
    async fn members(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MemberNode>> {
        let org = self.0.id;
        if !self.is_active(ctx)? || !visibility(ctx)?.members {
            return Ok(Vec::new());
        }
        let rows = run(ctx, async |conn| directory::members(conn, org).await).await?;
        Ok(rows.into_iter().map(MemberNode).collect())
    }
    /// Pending invitations (not accepted, revoked or expired), newest first, at most 500. Needs
    /// settings READ; other organizations than the active one list none.
    async fn invitations(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<InvitationNode>> {
        let org = self.0.id;
        if !self.is_active(ctx)? {
            return Ok(Vec::new());
        }
        if !viewer(ctx)?.can(Area::Settings, Level::Read) {
            return Err(
                crate::error::ApiError::Forbidden("invitations need settings READ".into()).into(),
            );
        }
        let rows = run(ctx, async |conn| {
            invitation::of_org(conn, org, None, true).await
        })
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| InvitationNode(Arc::new(r)))
            .collect())
    }
    /// Roles by name (the built-in four and custom ones; none for guests).
    async fn roles(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RoleNode>> {
        let org = self.0.id;
        if !self.is_active(ctx)? || !visibility(ctx)?.members {
            return Ok(Vec::new());
        }
        let rows = run(ctx, async |conn| directory::roles(conn, org).await).await?;
        Ok(rows.into_iter().map(RoleNode).collect())
    }
    /// When the organization was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the organization was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An organization's probe interval for one kind of resource.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
pub struct HealthCheckInterval {
    /// The kind of resource the interval applies to.
    pub kind: ResourceKind,
    /// Seconds between probes of each resource of that kind.
    pub interval_seconds: i32,
}

/// The stored overrides as GraphQL objects (unknown kind words are skipped).
pub fn intervals_of(rows: Vec<(String, i32)>) -> Vec<HealthCheckInterval> {
    rows.into_iter()
        .filter_map(|(kind, seconds)| {
            Some(HealthCheckInterval {
                kind: Kind::parse(&kind)?.into(),
                interval_seconds: seconds,
            })
        })
        .collect()
}
