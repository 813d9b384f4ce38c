//! Projects: `createProject`, `updateProject`, `deleteProject`, `linkResource`,
//! `unlinkResource`.
//!
//! Each needs projects FULL: from the caller's org role, or from their role in the project's
//! team (a team-scoped writer may only create, move or keep projects in such a team). A
//! project the caller cannot see is `NOT_FOUND`, never `FORBIDDEN`.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use uuid::Uuid;

use super::validate::{MAX_NAME, not_found, optional_id, valid_name, valid_slug};
use super::{Act, audited, refusal};
use crate::auth::permissions::Area;
use crate::db::models::directory;
use crate::db::models::link;
use crate::db::models::project::{self, NewProject, ProjectChanges};
use crate::db::models::resource;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::ids;
use crate::graphql::types::project::{ProjectNode, ProjectResourceEdge};
use crate::graphql::types::resource::ResourceInterface;

/// Longest project description.
const MAX_DESCRIPTION: usize = 4000;

/// What `createProject` takes.
#[derive(InputObject)]
pub struct CreateProjectInput {
    /// 1–200 characters (trimmed).
    pub name: String,
    /// Lowercase letters, digits and dashes, starting with a letter or digit, at most 63;
    /// unique among the organization's projects.
    pub slug: String,
    /// Free text, at most 4000 characters.
    pub description: Option<String>,
    /// The client the project is for, if any.
    pub client_id: Option<ID>,
    /// The team that owns the project, if any: its members with projects FULL may change it.
    pub team_id: Option<ID>,
}

/// Fields left out stay as they are; `null` clears `description`, `clientId` or `teamId`.
#[derive(InputObject)]
pub struct UpdateProjectInput {
    /// A new name, 1–200 characters (trimmed); `null` or left out: unchanged.
    pub name: Option<String>,
    /// A new slug, as for `createProject`; `null` or left out: unchanged.
    pub slug: Option<String>,
    /// A new description (at most 4000 characters); `null` clears it.
    pub description: MaybeUndefined<String>,
    /// Another client; `null`: for no client.
    pub client_id: MaybeUndefined<ID>,
    /// Another owning team (the caller needs projects FULL there too); `null`: no team.
    pub team_id: MaybeUndefined<ID>,
}

#[derive(Default)]
pub struct ProjectMutations;

#[Object]
impl ProjectMutations {
    /// Creates a project and returns it. Needs projects FULL (or FULL in `teamId`'s team).
    /// `CONFLICT` for a slug in use; `NOT_FOUND` for an unknown client or team;
    /// `BAD_USER_INPUT` for a bad field.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new project.")] input: CreateProjectInput,
    ) -> async_graphql::Result<ProjectNode> {
        let viewer = viewer(ctx)?;
        let name = valid_name(&input.name, MAX_NAME)?;
        let slug = valid_slug(&input.slug)?;
        let description = input
            .description
            .as_deref()
            .map(valid_description)
            .transpose()?;
        let client_id = optional_id(input.client_id.as_ref(), "Client")?;
        let team_id = optional_id(input.team_id.as_ref(), "Team")?;
        let new = NewProject {
            org_id: viewer.organization.id,
            name,
            slug,
            description,
            client_id,
            team_id,
            created_by: viewer.user.id,
        };
        let conflict = format!("a project with slug `{slug}` exists");
        let act = Act {
            area: Area::Projects,
            action: "project.create",
            target_type: "Project",
            target_id: None,
        };
        let created = audited(ctx, act, viewer.can_write_project(team_id), async |conn| {
            check_owners(conn, client_id, team_id).await?;
            let created = project::create(conn, new)
                .await
                .map_err(|e| refusal(e, &conflict, "no such client or team"))?;
            let id = created.id;
            Ok((created, Some(id)))
        })
        .await?;
        Ok(ProjectNode(Arc::new(created)))
    }

    /// Changes a project and returns it. Needs projects FULL (in the organization, or in the
    /// project's team and in any team it moves to). `NOT_FOUND` for a project the caller cannot
    /// see or an unknown client or team; `CONFLICT` for a slug in use.
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's id.")] id: ID,
        #[graphql(desc = "The changes; fields left out stay as they are.")]
        input: UpdateProjectInput,
    ) -> async_graphql::Result<ProjectNode> {
        let project_id = ids::decode_as(&id, "Project")?;
        let changes = ProjectChanges {
            name: input
                .name
                .as_deref()
                .map(|name| valid_name(name, MAX_NAME))
                .transpose()?
                .map(str::to_owned),
            slug: input
                .slug
                .as_deref()
                .map(valid_slug)
                .transpose()?
                .map(str::to_owned),
            description: optional(input.description, |d| Ok(valid_description(&d)?.to_owned()))?,
            client_id: optional(input.client_id, |id| ids::decode_as(&id, "Client"))?,
            team_id: optional(input.team_id, |id| ids::decode_as(&id, "Team"))?,
        };
        let (client, team) = (changes.client_id.flatten(), changes.team_id.flatten());
        let act = Act {
            area: Area::Projects,
            action: "project.update",
            target_type: "Project",
            target_id: Some(project_id),
        };
        let updated = audited(ctx, act, may_write(ctx, project_id, team)?, async |conn| {
            check_owners(conn, client, team).await?;
            let updated = project::update(conn, project_id, changes)
                .await
                .map_err(|e| {
                    refusal(e, "another project has that slug", "no such client or team")
                })?;
            Ok((updated.ok_or_else(|| no_project(&id))?, None))
        })
        .await?;
        Ok(ProjectNode(Arc::new(updated)))
    }

    /// Soft-deletes a project: it vanishes from every read. Returns its id; `NOT_FOUND` for a
    /// project the caller cannot see. Needs projects FULL.
    async fn delete_project(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let project_id = ids::decode_as(&id, "Project")?;
        let act = Act {
            area: Area::Projects,
            action: "project.delete",
            target_type: "Project",
            target_id: Some(project_id),
        };
        audited(ctx, act, may_write(ctx, project_id, None)?, async |conn| {
            if !project::soft_delete(conn, project_id).await? {
                return Err(no_project(&id));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }

    /// Links a resource to a project and returns the new edge of `Project.resources`.
    /// `NOT_FOUND` for a project or resource the caller cannot see; `CONFLICT` when they are
    /// linked already. Needs projects FULL.
    async fn link_resource(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's id.")] project_id: ID,
        #[graphql(desc = "The resource's id (a server, web service, domain or database).")]
        resource_id: ID,
    ) -> async_graphql::Result<ProjectResourceEdge> {
        let viewer = viewer(ctx)?;
        let project = ids::decode_as(&project_id, "Project")?;
        let (kind, resource) = ids::decode_resource(&resource_id)?;
        let (org, user) = (viewer.organization.id, viewer.user.id);
        let visibility = viewer.visibility();
        let act = Act {
            area: Area::Projects,
            action: "project.link_resource",
            target_type: "Project",
            target_id: Some(project),
        };
        let (link, row) = audited(ctx, act, may_write(ctx, project, None)?, async |conn| {
            if project::by_ids(conn, &[project]).await?.is_empty() {
                return Err(not_found("project"));
            }
            let row = resource::by_ids(conn, kind, &[resource]).await?.pop();
            let Some(row) = row.filter(|r| visibility.sees_resource(r.common.id, r.common.dock_id))
            else {
                return Err(not_found("resource"));
            };
            if link::link(conn, org, project, kind, resource, user)
                .await?
                .is_none()
            {
                return Err(ApiError::Conflict(
                    "the resource is already linked to the project".into(),
                ));
            }
            let link = link::find(conn, project, resource)
                .await?
                .ok_or_else(|| not_found("link"))?;
            Ok(((link, row), None))
        })
        .await?;
        Ok(ProjectResourceEdge::single(
            link,
            ResourceInterface::from_row(Arc::new(row)),
        ))
    }

    /// Unlinks a resource from a project; true when they were linked, false when they were
    /// not. `NOT_FOUND` for an unknown project or resource. Needs projects FULL.
    async fn unlink_resource(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The project's id.")] project_id: ID,
        #[graphql(desc = "The resource's id.")] resource_id: ID,
    ) -> async_graphql::Result<bool> {
        let project = ids::decode_as(&project_id, "Project")?;
        let (kind, resource) = ids::decode_resource(&resource_id)?;
        let act = Act {
            area: Area::Projects,
            action: "project.unlink_resource",
            target_type: "Project",
            target_id: Some(project),
        };
        Ok(
            audited(ctx, act, may_write(ctx, project, None)?, async |conn| {
                if project::by_ids(conn, &[project]).await?.is_empty() {
                    return Err(not_found("project"));
                }
                if !resource::exists(conn, kind, resource).await? {
                    return Err(not_found("resource"));
                }
                Ok((link::unlink(conn, project, resource).await?, None))
            })
            .await?,
        )
    }
}

/// Whether the viewer may change project `id` (moving it to `new_team`, if given). A project
/// they cannot see does not exist for them.
pub(super) fn may_write(
    ctx: &Context<'_>,
    id: Uuid,
    new_team: Option<Uuid>,
) -> Result<bool, ApiError> {
    let viewer = viewer(ctx)?;
    if !viewer.visibility().sees_project(id) {
        return Err(not_found("project"));
    }
    let moves_ok = new_team.is_none_or(|team| viewer.can_write_project(Some(team)));
    Ok(viewer.can_write_project_id(id) && moves_ok)
}

/// `NOT_FOUND` for a project named by the caller's id (shortened).
fn no_project(id: &ID) -> ApiError {
    ApiError::NotFound(format!(
        "no project with id `{}`",
        id.get(..64).unwrap_or(id)
    ))
}

/// Checks that the client and team a project names exist in the org.
async fn check_owners(
    conn: &mut diesel_async::AsyncPgConnection,
    client: Option<Uuid>,
    team: Option<Uuid>,
) -> Result<(), ApiError> {
    if let Some(client) = client
        && directory::clients_by_ids(conn, &[client]).await?.is_empty()
    {
        return Err(not_found("client"));
    }
    if let Some(team) = team
        && directory::teams_by_ids(conn, &[team]).await?.is_empty()
    {
        return Err(not_found("team"));
    }
    Ok(())
}

/// `undefined` → no change, `null` → clear, a value → validated and set.
fn optional<T, U>(
    value: MaybeUndefined<T>,
    check: impl FnOnce(T) -> Result<U, ApiError>,
) -> Result<Option<Option<U>>, ApiError> {
    match value {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(v) => Ok(Some(Some(check(v)?))),
    }
}

fn valid_description(description: &str) -> Result<&str, ApiError> {
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::BadUserInput(format!(
            "`description` may have at most {MAX_DESCRIPTION} characters"
        )));
    }
    Ok(description)
}
