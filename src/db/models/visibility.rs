//! What a viewer may read of the active organization: one rule per type (docs/security.md).
//!
//! Org-wide reads need an org role with READ in the area. Short of one, a team role reaches the
//! team's projects and the docks granted to the team (and those docks' resources); a client
//! membership reaches, read only, the client's projects and the resources linked to them.
//! Operation services need operations READ org-wide; short of it, a team reaches the services
//! granted to it, and a client membership reaches none.
//! [`Visibility`] holds those sets, computed once per viewer; every loader, `node`, nested field
//! and subscription asks it, so an object is visible or hidden whichever path leads to it.
//! `None` in a set means the whole organization.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::organization::Organization;
use crate::db::DbError;
use crate::db::schema::{
    client_memberships, dock_permissions, organizations, project_resources, projects, roles,
    team_memberships,
};

/// The sets a viewer may read; `None` = everything in the organization.
#[derive(Clone, Debug)]
pub struct Visibility {
    pub projects: Option<Vec<Uuid>>,
    /// Docks granted to the viewer's teams or clients.
    pub docks: Option<Vec<Uuid>>,
    /// Resources: those on `docks`, plus these (linked to a visible project).
    pub linked_resources: Option<Vec<Uuid>>,
    /// Teams: every team for org members, a guest's own teams otherwise.
    pub teams: Option<Vec<Uuid>>,
    /// Clients: every client for org members, a guest's own clients otherwise.
    pub clients: Option<Vec<Uuid>>,
    /// The viewer's own user, always visible to them.
    pub me: Uuid,
    /// True when the viewer may see the organization's members and roles (org members may;
    /// guests, reaching the organization through teams or clients, see only themselves).
    pub members: bool,
    /// Docks whose key hint the viewer may read: docks FULL org-wide (`None`), else docks granted
    /// at `full` to a team whose role has docks FULL.
    pub key_hints: Option<Vec<Uuid>>,
    /// Docks whose resources' provider data (`fullApiData`) the viewer may read: resources FULL
    /// org-wide (`None`), else docks granted at `full` to a team whose role has resources FULL.
    pub api_data: Option<Vec<Uuid>>,
    /// Operation services: every one with operations READ org-wide (`None`), else those granted
    /// to the viewer's teams (client memberships reach none).
    pub operation_services: Option<Vec<Uuid>>,
    /// Services whose configuration hint the viewer may read: operations FULL org-wide (`None`),
    /// else services granted at `full` to a team whose role has operations FULL.
    pub config_hints: Option<Vec<Uuid>>,
}

impl Visibility {
    /// Everything in the organization (an org role with FULL in every area).
    pub fn everything(me: Uuid) -> Self {
        Self {
            projects: None,
            docks: None,
            linked_resources: None,
            teams: None,
            clients: None,
            me,
            members: true,
            key_hints: None,
            api_data: None,
            operation_services: None,
            config_hints: None,
        }
    }

    /// True when nothing is restricted.
    pub fn is_unrestricted(&self) -> bool {
        self.projects.is_none() && self.docks.is_none() && self.linked_resources.is_none()
    }

    pub fn sees_project(&self, id: Uuid) -> bool {
        self.projects.as_ref().is_none_or(|p| p.contains(&id))
    }

    /// Every dock of the organization, or only those granted to the viewer's teams and clients.
    pub fn sees_dock(&self, id: Uuid) -> bool {
        self.docks.as_ref().is_none_or(|d| d.contains(&id))
    }

    /// A resource is visible on a visible dock, or when linked to a visible project.
    pub fn sees_resource(&self, id: Uuid, dock: Uuid) -> bool {
        let Some(linked) = &self.linked_resources else {
            return true;
        };
        linked.contains(&id) || self.docks.as_ref().is_some_and(|d| d.contains(&dock))
    }

    pub fn sees_team(&self, id: Uuid) -> bool {
        self.teams.as_ref().is_none_or(|t| t.contains(&id))
    }

    pub fn sees_client(&self, id: Uuid) -> bool {
        self.clients.as_ref().is_none_or(|c| c.contains(&id))
    }

    /// A user is visible to themself, and to org members when a member of the organization.
    pub fn sees_user(&self, id: Uuid, member_here: bool) -> bool {
        id == self.me || (self.members && member_here)
    }

    /// True when the key hint of visible dock `dock` may be shown.
    pub fn sees_key_hint(&self, dock: Uuid) -> bool {
        self.key_hints.as_ref().is_none_or(|d| d.contains(&dock))
    }

    /// True when the provider data of a visible resource on `dock` may be shown.
    pub fn sees_api_data(&self, dock: Uuid) -> bool {
        self.api_data.as_ref().is_none_or(|d| d.contains(&dock))
    }

    /// Every operation service of the organization, or only those granted to the viewer's teams.
    pub fn sees_operation_service(&self, id: Uuid) -> bool {
        self.operation_services
            .as_ref()
            .is_none_or(|s| s.contains(&id))
    }

    /// True when the configuration hint of visible service `id` may be shown.
    pub fn sees_config_hint(&self, id: Uuid) -> bool {
        self.config_hints.as_ref().is_none_or(|s| s.contains(&id))
    }

    /// Dock ids for SQL filters (`None` = no filter).
    pub fn dock_ids(&self) -> Option<Vec<Uuid>> {
        self.docks.clone()
    }
}

/// A role held through a team or a client membership.
#[derive(Clone, Debug)]
pub struct IndirectRole {
    pub organization: Organization,
    /// The team, for a team membership.
    pub team_id: Option<Uuid>,
    /// The client, for a client membership.
    pub client_id: Option<Uuid>,
    pub permissions: serde_json::Value,
}

/// Every team and client membership of `user_id`, in live organizations.
pub async fn indirect_roles(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
) -> Result<Vec<IndirectRole>, DbError> {
    let teams: Vec<(Organization, Uuid, serde_json::Value)> = team_memberships::table
        .inner_join(organizations::table.on(organizations::id.eq(team_memberships::org_id)))
        .inner_join(roles::table.on(roles::id.eq(team_memberships::role_id)))
        .filter(team_memberships::user_id.eq(user_id))
        .filter(organizations::deleted_at.is_null())
        .select((
            Organization::as_select(),
            team_memberships::team_id,
            roles::permissions,
        ))
        .load(conn)
        .await?;
    let clients: Vec<(Organization, Uuid, serde_json::Value)> = client_memberships::table
        .inner_join(organizations::table.on(organizations::id.eq(client_memberships::org_id)))
        .inner_join(roles::table.on(roles::id.eq(client_memberships::role_id)))
        .filter(client_memberships::user_id.eq(user_id))
        .filter(organizations::deleted_at.is_null())
        .select((
            Organization::as_select(),
            client_memberships::client_id,
            roles::permissions,
        ))
        .load(conn)
        .await?;
    let teams = teams
        .into_iter()
        .map(|(organization, team, permissions)| IndirectRole {
            organization,
            team_id: Some(team),
            client_id: None,
            permissions,
        });
    let clients = clients
        .into_iter()
        .map(|(organization, client, permissions)| IndirectRole {
            organization,
            team_id: None,
            client_id: Some(client),
            permissions,
        });
    Ok(teams.chain(clients).collect())
}

/// A dock granted to a team or a client, at `read` or `full`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub dock: Uuid,
    /// The team granted (`None` for a client's grant).
    pub team: Option<Uuid>,
    pub level: String,
}

/// An operation service granted to a team, at `read` or `full`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceGrant {
    pub service: Uuid,
    pub team: Uuid,
    pub level: String,
}

/// What teams and clients reach: projects (with their team), dock grants, linked resources,
/// operation service grants.
pub type Reached = (
    Vec<(Uuid, Option<Uuid>)>,
    Vec<Grant>,
    Vec<Uuid>,
    Vec<ServiceGrant>,
);

/// Projects of the teams and clients, docks granted to them, resources linked to those
/// projects, and operation services granted to the teams: four statements, in the
/// organization's scope.
pub async fn reach(
    conn: &mut AsyncPgConnection,
    teams: &[Uuid],
    clients: &[Uuid],
) -> Result<Reached, DbError> {
    let visible: Vec<(Uuid, Option<Uuid>)> = projects::table
        .filter(projects::deleted_at.is_null())
        .filter(
            projects::team_id
                .eq_any(teams)
                .or(projects::client_id.eq_any(clients)),
        )
        .select((projects::id, projects::team_id))
        .load(conn)
        .await?;
    let grants: Vec<(Uuid, Option<Uuid>, String)> = dock_permissions::table
        .filter(
            dock_permissions::team_id
                .eq_any(teams)
                .or(dock_permissions::client_id.eq_any(clients)),
        )
        .select((
            dock_permissions::dock_id,
            dock_permissions::team_id,
            dock_permissions::level,
        ))
        .load(conn)
        .await?;
    let grants = grants
        .into_iter()
        .map(|(dock, team, level)| Grant { dock, team, level })
        .collect();
    let ids: Vec<Uuid> = visible.iter().map(|(id, _)| *id).collect();
    let linked: Vec<Uuid> = project_resources::table
        .filter(project_resources::project_id.eq_any(&ids))
        .select(project_resources::resource_id)
        .load(conn)
        .await?;
    let services = super::operation::permissions_of_teams(conn, teams)
        .await?
        .into_iter()
        .map(|p| ServiceGrant {
            service: p.operation_service_id,
            team: p.team_id,
            level: p.level,
        })
        .collect();
    Ok((visible, grants, linked, services))
}
