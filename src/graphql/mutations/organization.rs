//! Organizations themselves: `createOrganization` (any signed-in user, who becomes its owner),
//! `updateOrganization` (settings FULL) and `deleteOrganization` (owners; a soft delete).
//!
//! A new organization is created in a transaction scoped to its own (new) id, so its built-in
//! roles and the creator's owner membership pass row-level security like any write of that
//! organization, and the act is audited there. How many organizations one user may create is
//! bounded (`STACKGATE_MAX_ORGANIZATIONS_PER_USER`), counted on their user row in the same
//! transaction.

use async_graphql::{Context, ID, InputObject, Object};
use uuid::Uuid;

use super::validate::{MAX_NAME, not_found, valid_name, valid_slug};
use super::{Act, actor, audited, org_full, pool, refusal};
use crate::auth::permissions::Area;
use crate::db::Scope;
use crate::db::models::audit::{self, Entry};
use crate::db::models::{membership, organization, user};
use crate::error::ApiError;
use crate::graphql::context::{caller, viewer};
use crate::graphql::ids;
use crate::graphql::types::organization::OrganizationNode;
use crate::security::settings::Onboarding;

/// What `createOrganization` takes.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// 1–200 characters (trimmed).
    pub name: String,
    /// 1–63 lowercase letters, digits or dashes, starting with a letter or digit; unique on
    /// the server (what `X-Org` and the token's `org` claim name).
    pub slug: String,
}

/// What `updateOrganization` takes; a field left out or `null` is unchanged.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    /// A new name, 1–200 characters (trimmed).
    pub name: Option<String>,
    /// A new slug, as for `createOrganization`. Tokens and clients that name the old slug
    /// (`org` claim, `X-Org`) stop reaching the organization.
    pub slug: Option<String>,
}

#[derive(Default)]
pub struct OrganizationMutations;

#[Object]
impl OrganizationMutations {
    /// Creates an organization whose owner (built-in `owner` role) is the caller, and returns
    /// it. Any signed-in user may, including one who belongs to no organization yet; not with
    /// an API key (`FORBIDDEN`: keys act only in their own organization). Each user may create
    /// a bounded number of organizations (`FORBIDDEN` past it). `CONFLICT` for a slug in use
    /// (by a deleted organization too); `BAD_USER_INPUT` for a bad name or slug. The new
    /// organization is not this request's active one: act in it with `X-Org` or the token's
    /// `org` claim (or no choice at all when it is the caller's only one).
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new organization's name and slug.")] input: CreateOrganizationInput,
    ) -> async_graphql::Result<OrganizationNode> {
        let caller = caller(ctx)?;
        if caller.api_key_id.is_some() {
            return Err(ApiError::Forbidden(
                "organizations are created with your own sign-in, not with an API key".into(),
            )
            .into());
        }
        let name = valid_name(&input.name, MAX_NAME)?;
        let slug = valid_slug(&input.slug)?;
        let max = ctx
            .data_opt::<Onboarding>()
            .copied()
            .unwrap_or_default()
            .max_organizations_per_user;
        let id = Uuid::new_v4();
        let me = caller.user.id;
        let actor = audit::Actor {
            org_id: id,
            ..actor(ctx, caller)
        };
        let conflict = format!("an organization with slug `{slug}` exists");
        let pool = pool(ctx).await?;
        let org = Scope::org(id, me)
            .try_transaction(pool, async |conn| {
                if !user::count_created_organization(conn, me, max).await? {
                    return Err(ApiError::Forbidden(format!(
                        "a user may create at most {max} organizations"
                    )));
                }
                let org = organization::create(conn, id, name, slug)
                    .await
                    .map_err(|e| refusal(e, &conflict, "no such user"))?;
                membership::ensure(conn, id, me, "owner").await?;
                let entry = Entry {
                    action: "organization.create",
                    target_type: Some("Organization"),
                    target_id: Some(id),
                    result: "success",
                    message: None,
                    metadata: serde_json::json!({}),
                };
                audit::record(conn, &actor, &entry).await?;
                Ok(org)
            })
            .await?;
        clear_viewers(ctx);
        Ok(OrganizationNode(org))
    }

    /// Renames the active organization and/or changes its slug, and returns it. Needs settings
    /// FULL. `NOT_FOUND` for any organization but the active one; `CONFLICT` for a slug in
    /// use; `BAD_USER_INPUT` for a bad name or slug.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The active organization's id.")] id: ID,
        #[graphql(desc = "What to change.")] input: UpdateOrganizationInput,
    ) -> async_graphql::Result<OrganizationNode> {
        let org = active(ctx, &id)?;
        let name = input
            .name
            .as_deref()
            .map(|n| valid_name(n, MAX_NAME))
            .transpose()?;
        let slug = input.slug.as_deref().map(valid_slug).transpose()?;
        let conflict = format!(
            "an organization with slug `{}` exists",
            slug.unwrap_or_default()
        );
        let act = organization_act("organization.update", org);
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = organization::update(conn, org, name, slug)
                .await
                .map_err(|e| refusal(e, &conflict, "no such organization"))?
                .ok_or_else(|| not_found("organization"))?;
            Ok((row, None))
        })
        .await?;
        Ok(OrganizationNode(row))
    }

    /// Soft-deletes the active organization: it vanishes for every member at once (their
    /// requests in it are refused), its slug stays taken, and its data stays in the database.
    /// Only its owners may (`FORBIDDEN`, audited, for anyone else). Returns its id;
    /// `NOT_FOUND` for any organization but the active one.
    async fn delete_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The active organization's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let org = active(ctx, &id)?;
        let viewer = viewer(ctx)?;
        let owner = viewer.role == "owner" && !viewer.as_platform_admin;
        let act = organization_act("organization.delete", org);
        audited(ctx, act, owner, async |conn| {
            if !organization::soft_delete(conn, org).await? {
                return Err(not_found("organization"));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }
}

/// The active organization, when `id` names it; any other (or a malformed id) is `NOT_FOUND`.
fn active(ctx: &Context<'_>, id: &ID) -> Result<Uuid, ApiError> {
    let org = viewer(ctx)?.organization.id;
    match ids::decode_as(id, "Organization") {
        Ok(id) if id == org => Ok(org),
        Ok(_) => Err(not_found("organization")),
        Err(e) => Err(e),
    }
}

fn organization_act(action: &str, id: Uuid) -> Act<'_> {
    Act {
        area: Area::Settings,
        action,
        target_type: "Organization",
        target_id: Some(id),
    }
}

/// Memberships changed: resolve this replica's viewers afresh (other replicas follow the
/// membership's access event).
fn clear_viewers(ctx: &Context<'_>) {
    if let Some(cache) = ctx.data_opt::<std::sync::Arc<crate::auth::cache::ViewerCache>>() {
        cache.clear();
    }
}
