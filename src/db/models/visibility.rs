//! What a person reaching an organization through teams or clients may see (DESIGN §3).
//!
//! Org-wide reads need an org role. Short of one, a team role reaches the team's projects and
//! the docks granted to the team (and those docks' resources); a client membership reaches, read
//! only, the client's projects and the resources linked to them. [`Visibility`] holds those sets,
//! computed once per request; `None` in a field means the whole organization.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::organization::Organization;
use crate::db::DbError;
use crate::db::schema::{
    client_memberships, dock_permissions, organizations, project_resources, projects, roles,
    team_memberships,
};

/// The sets a restricted viewer may read; `None` = everything in the organization.
#[derive(Clone, Debug, Default)]
pub struct Visibility {
    pub projects: Option<Vec<Uuid>>,
    /// Docks granted to the viewer's teams or clients, with the granted level (`read`/`full`).
    pub docks: Option<Vec<(Uuid, String)>>,
    /// Resources: those on `docks`, plus these (linked to a visible project).
    pub linked_resources: Option<Vec<Uuid>>,
}

impl Visibility {
    /// True when nothing is restricted.
    pub fn is_unrestricted(&self) -> bool {
        self.projects.is_none() && self.docks.is_none() && self.linked_resources.is_none()
    }

    pub fn sees_project(&self, id: Uuid) -> bool {
        self.projects.as_ref().is_none_or(|p| p.contains(&id))
    }

    pub fn sees_dock(&self, id: Uuid) -> bool {
        self.docks
            .as_ref()
            .is_none_or(|d| d.iter().any(|(dock, _)| *dock == id))
    }

    /// A resource is visible on a visible dock, or when linked to a visible project.
    pub fn sees_resource(&self, id: Uuid, dock: Uuid) -> bool {
        let Some(linked) = &self.linked_resources else {
            return true;
        };
        linked.contains(&id)
            || self
                .docks
                .as_ref()
                .is_some_and(|d| d.iter().any(|(x, _)| *x == dock))
    }

    /// Dock ids for SQL filters (`None` = no filter).
    pub fn dock_ids(&self) -> Option<Vec<Uuid>> {
        self.docks
            .as_ref()
            .map(|d| d.iter().map(|(id, _)| *id).collect())
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

/// Projects of the teams and clients, docks granted to them, and resources linked to those
/// projects: three statements, in the organization's scope.
pub async fn reach(
    conn: &mut AsyncPgConnection,
    teams: &[Uuid],
    clients: &[Uuid],
) -> Result<(Vec<(Uuid, Option<Uuid>)>, Vec<(Uuid, String)>, Vec<Uuid>), DbError> {
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
    let grants: Vec<(Uuid, String)> = dock_permissions::table
        .filter(
            dock_permissions::team_id
                .eq_any(teams)
                .or(dock_permissions::client_id.eq_any(clients)),
        )
        .select((dock_permissions::dock_id, dock_permissions::level))
        .load(conn)
        .await?;
    let ids: Vec<Uuid> = visible.iter().map(|(id, _)| *id).collect();
    let linked: Vec<Uuid> = project_resources::table
        .filter(project_resources::project_id.eq_any(&ids))
        .select(project_resources::resource_id)
        .load(conn)
        .await?;
    Ok((visible, grants, linked))
}
