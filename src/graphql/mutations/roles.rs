//! The role hierarchy and the roles themselves: `createRole`, `updateRole`, `deleteRole`,
//! `setMemberRole`.
//!
//! Both need settings FULL. On top of it, the hierarchy (docs/security.md): only owners grant,
//! change or revoke the owner role and remove owners; nobody grants a role above their own org
//! role, or changes the role of someone above it ([`check_grantable`]); an organization keeps an
//! owner ([`keep_an_owner`]). [`Grantor`] and [`Standing`] carry the hierarchy to the other
//! modules that hand out or take away roles (teams, clients, members, invitations).

use async_graphql::{Context, ID, Json, Object};
use diesel_async::AsyncPgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::validate::{not_found, valid_name};
use super::{audited, org_full, refusal, settings_act};
use crate::auth::Viewer;
use crate::auth::permissions::{Area, Permissions};
use crate::db::models::access;
use crate::db::models::directory::Role;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::ids;
use crate::graphql::types::directory::{MemberNode, RoleNode};

/// Longest role name.
const MAX_ROLE_NAME: usize = 64;

#[derive(Default)]
pub struct RoleMutations;

#[Object]
impl RoleMutations {
    /// Creates a role. `permissions` is an object from areas (`projects`, `resources`, `docks`,
    /// `operations`, `settings`, `audit`, `monitoring`) to `"read"` or `"full"`; a missing
    /// area is none. Names are 1–64 characters, unique in the organization (built-in names
    /// included). No area may exceed the caller's own org role (`FORBIDDEN`). Returns the
    /// role. Needs settings FULL. `CONFLICT` for a name in use; `BAD_USER_INPUT` for a bad name
    /// or document.
    async fn create_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1–64 characters (trimmed), unique among the organization's roles.")]
        name: String,
        #[graphql(
            desc = "An object from area names to `\"read\"` or `\"full\"`, e.g. `{\"projects\": \"full\", \"audit\": \"read\"}`; an area left out is none."
        )]
        permissions: Json<Value>,
    ) -> async_graphql::Result<RoleNode> {
        let org = viewer(ctx)?.organization.id;
        let name = valid_name(&name, MAX_ROLE_NAME)?;
        valid_permissions(&permissions.0)?;
        let conflict = format!("a role named `{name}` exists");
        let own = viewer(ctx)?.permissions.clone();
        let act = settings_act("role.create", "Role", None);
        let role = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            not_above(&permissions.0, &own)?;
            let role = access::create_role(conn, org, name, &permissions.0)
                .await
                .map_err(|e| refusal(e, &conflict, "no such organization"))?;
            let id = role.id;
            Ok((role, Some(id)))
        })
        .await?;
        Ok(RoleNode(role))
    }

    /// Gives a member of the organization another role of it. The last owner cannot be
    /// demoted (`CONFLICT`); only owners grant or take the owner role, and nobody grants a role
    /// above their own or changes the role of someone above them (`FORBIDDEN`, audited as
    /// denied). Returns the member with the new role. Needs settings FULL. `NOT_FOUND` for
    /// someone who is not a member, or an unknown role.
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member's `User` id.")] user_id: ID,
        #[graphql(desc = "A `Role` of the organization, built-in or custom.")] role_id: ID,
    ) -> async_graphql::Result<MemberNode> {
        let org = viewer(ctx)?.organization.id;
        let user = ids::decode_as(&user_id, "User")?;
        let role = ids::decode_as(&role_id, "Role")?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("member.set_role", "User", Some(user));
        let member = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let owners = access::lock_owners(conn, org).await?;
            let Some(current) = access::lock_membership(conn, org, user).await? else {
                return Err(not_found("member"));
            };
            let role = org_role(conn, org, role).await?;
            if !is_owner_role(&role) {
                keep_an_owner(&owners, user, "demoted")?;
            }
            let standing = grantor.standing(conn, org).await?;
            standing.check(&org_role(conn, org, current).await?)?;
            standing.check(&role)?;
            access::set_member_role(conn, org, user, role.id).await?;
            let member = access::member(conn, org, user)
                .await?
                .ok_or_else(|| not_found("member"))?;
            Ok((member, None))
        })
        .await?;
        Ok(MemberNode(member))
    }

    /// Renames a custom role and returns it. Built-in roles keep their names (`FORBIDDEN`,
    /// audited), and nobody changes a role above their own (`FORBIDDEN`, audited). Needs
    /// settings FULL. `NOT_FOUND` for an unknown role, `CONFLICT` for a name in use,
    /// `BAD_USER_INPUT` for a bad name.
    async fn update_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The role's id.")] id: ID,
        #[graphql(desc = "The new name: 1–64 characters (trimmed), unique among the roles.")]
        name: String,
    ) -> async_graphql::Result<RoleNode> {
        let org = viewer(ctx)?.organization.id;
        let role = ids::decode_as(&id, "Role")?;
        let name = valid_name(&name, MAX_ROLE_NAME)?;
        let conflict = format!("a role named `{name}` exists");
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("role.update", "Role", Some(role));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let current = changeable_role(conn, org, role, grantor).await?;
            let row = access::rename_role(conn, org, current.id, name)
                .await
                .map_err(|e| refusal(e, &conflict, "no such role"))?
                .ok_or_else(|| not_found("role"))?;
            Ok((row, None))
        })
        .await?;
        Ok(RoleNode(row))
    }

    /// Deletes a custom role. One that anyone holds (in the organization, a team or a client)
    /// or that an invitation names, pending or not, is kept (`CONFLICT`): give them another
    /// role first. Built-in roles are never deleted, and nobody deletes a role above their own
    /// (`FORBIDDEN`, audited). Returns its id. Needs settings FULL. `NOT_FOUND` for an unknown
    /// role.
    async fn delete_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The role's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let org = viewer(ctx)?.organization.id;
        let role = ids::decode_as(&id, "Role")?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("role.delete", "Role", Some(role));
        audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let current = changeable_role(conn, org, role, grantor).await?;
            let in_use = || ApiError::Conflict(format!("the role `{}` is in use", current.name));
            if access::role_in_use(conn, org, role).await? {
                return Err(in_use());
            }
            // An invitation naming it (in any state) holds it too.
            let deleted = access::delete_role(conn, org, role)
                .await
                .map_err(|e| match refusal(e, "", "") {
                    ApiError::NotFound(_) => in_use(),
                    other => other,
                })?;
            if !deleted {
                return Err(not_found("role"));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }
}

/// A role of the organization by id.
pub(super) async fn org_role(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    id: Uuid,
) -> Result<Role, ApiError> {
    access::role(conn, org, id)
        .await?
        .ok_or_else(|| not_found("role"))
}

/// A custom role of `org` that `grantor` may change or delete: built-in roles are refused,
/// as are roles above the grantor's own (both `FORBIDDEN`).
async fn changeable_role(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    id: Uuid,
    grantor: Grantor,
) -> Result<Role, ApiError> {
    let role = org_role(conn, org, id).await?;
    if role.is_builtin {
        return Err(ApiError::Forbidden(format!(
            "the built-in role `{}` cannot be renamed or deleted",
            role.name
        )));
    }
    grantor.check(conn, org, &role).await?;
    Ok(role)
}

fn is_owner_role(role: &Role) -> bool {
    role.is_builtin && role.name == "owner"
}

/// Who hands out a role, for the role hierarchy. What they hold is read in the mutation's own
/// transaction ([`Grantor::standing`]), not from the viewer cache, so a demotion committed a
/// moment ago already counts.
#[derive(Clone, Copy)]
pub(super) struct Grantor {
    pub user: Uuid,
    /// A platform admin acting in an organization they do not belong to acts as an owner.
    pub platform_admin: bool,
}

/// What a grantor holds now: their org role's levels, and whether it is the owner role.
pub(super) struct Standing {
    own: Permissions,
    owner: bool,
}

impl Grantor {
    pub fn of(viewer: &Viewer) -> Self {
        Self {
            user: viewer.user.id,
            platform_admin: viewer.as_platform_admin,
        }
    }

    /// The grantor's org role in `org` as of this transaction (none: no levels).
    pub async fn standing(
        &self,
        conn: &mut AsyncPgConnection,
        org: Uuid,
    ) -> Result<Standing, ApiError> {
        if self.platform_admin {
            return Ok(Standing {
                own: Permissions::all(),
                owner: true,
            });
        }
        let role = access::member_role(conn, org, self.user).await?;
        Ok(Standing::of(role.as_ref()))
    }

    /// Refuses `role` unless the grantor may hand it out now.
    pub async fn check(
        &self,
        conn: &mut AsyncPgConnection,
        org: Uuid,
        role: &Role,
    ) -> Result<(), ApiError> {
        self.standing(conn, org).await?.check(role)
    }
}

impl Standing {
    /// The standing an org role gives (`None`: not a member).
    pub fn of(role: Option<&Role>) -> Self {
        Self {
            own: role.map_or_else(Permissions::default, |r| Permissions(r.permissions.clone())),
            owner: role.is_some_and(is_owner_role),
        }
    }

    /// Refuses (`FORBIDDEN`) to grant, change or take away `role` (see [`check_grantable`]).
    pub fn check(&self, role: &Role) -> Result<(), ApiError> {
        check_grantable(role, &self.own, self.owner)
    }
}

/// Refuses (`FORBIDDEN`) a role its grantor may not grant, change or take away: the built-in
/// owner role unless they are an owner, and any role above their own org role (`own`) in some
/// area.
fn check_grantable(role: &Role, own: &Permissions, owner: bool) -> Result<(), ApiError> {
    if is_owner_role(role) && !owner {
        return Err(ApiError::Forbidden(
            "only owners grant, change or revoke the owner role and remove owners".into(),
        ));
    }
    if owner {
        return Ok(());
    }
    not_above(&role.permissions, own).map_err(|_| {
        ApiError::Forbidden(format!(
            "the role `{}` is above your own: nobody grants, changes or revokes a role above their own",
            role.name
        ))
    })
}

/// Refuses (`FORBIDDEN`) a permission document above `own` in some area.
fn not_above(permissions: &Value, own: &Permissions) -> Result<(), ApiError> {
    match Permissions(permissions.clone()).exceeding(own) {
        None => Ok(()),
        Some(area) => Err(ApiError::Forbidden(format!(
            "`{}` above your own level: nobody grants a level above their own",
            area.as_str()
        ))),
    }
}

/// Refuses to leave the organization without an owner; `owners` were locked by
/// [`access::lock_owners`] in this transaction, so no concurrent change can slip past.
pub(super) fn keep_an_owner(owners: &[Uuid], user: Uuid, verb: &str) -> Result<(), ApiError> {
    if owners == [user] {
        return Err(ApiError::Conflict(format!(
            "the last owner of the organization cannot be {verb}: make another member owner first"
        )));
    }
    Ok(())
}

/// A permission document: an object whose keys are areas and whose values are `"read"` or
/// `"full"`, nothing else.
fn valid_permissions(doc: &Value) -> Result<(), ApiError> {
    let Some(levels) = doc.as_object() else {
        return Err(ApiError::BadUserInput(
            "`permissions` must be an object such as {\"projects\": \"full\"}".into(),
        ));
    };
    for (area, level) in levels {
        if !Area::ALL.iter().any(|a| a.as_str() == area) {
            let names: Vec<&str> = Area::ALL.iter().map(|a| a.as_str()).collect();
            let shown: String = area.chars().take(64).collect();
            return Err(ApiError::BadUserInput(format!(
                "unknown area `{shown}` in `permissions`; areas are {}",
                names.join(", ")
            )));
        }
        if !matches!(level.as_str(), Some("read" | "full")) {
            return Err(ApiError::BadUserInput(format!(
                "the level of `{area}` must be \"read\" or \"full\""
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn permission_documents_are_strict() {
        for good in [
            json!({}),
            json!({ "projects": "full", "audit": "read" }),
            json!({ "projects": "read", "resources": "read", "docks": "full", "operations": "read",
                    "settings": "full", "audit": "read", "monitoring": "full" }),
        ] {
            assert!(valid_permissions(&good).is_ok(), "{good}");
        }
        for bad in [
            json!(null),
            json!([]),
            json!("full"),
            json!({ "projects": "none" }),
            json!({ "projects": "FULL" }),
            json!({ "projects": true }),
            json!({ "projects": { "level": "full" } }),
            json!({ "billing": "full" }),
            json!({ "Projects": "full" }),
        ] {
            assert!(valid_permissions(&bad).is_err(), "{bad}");
        }
    }

    fn role(name: &str, builtin: bool, permissions: Value) -> Role {
        Role {
            id: Uuid::new_v4(),
            org_id: Uuid::nil(),
            name: name.into(),
            permissions,
            is_builtin: builtin,
        }
    }

    #[test]
    fn nobody_grants_above_their_own_and_only_owners_grant_owner() {
        let all = Permissions::all();
        let owner_role = role("owner", true, all.0.clone());
        let admin_role = role("admin", true, all.0.clone());
        let member = Permissions(json!({ "projects": "full", "docks": "read" }));
        let docks_full = role("Docks", false, json!({ "docks": "full" }));
        let reader = role("Reader", false, json!({ "docks": "read" }));
        assert!(
            check_grantable(&owner_role, &all, false).is_err(),
            "admin → owner"
        );
        assert!(check_grantable(&owner_role, &all, true).is_ok());
        assert!(check_grantable(&admin_role, &all, false).is_ok());
        assert!(check_grantable(&admin_role, &member, false).is_err());
        assert!(check_grantable(&docks_full, &member, false).is_err());
        assert!(check_grantable(&reader, &member, false).is_ok());
        // A custom role named "owner" is no owner role (built-in names are reserved anyway).
        let fake = role("owner", false, json!({}));
        assert!(check_grantable(&fake, &member, false).is_ok());
        assert!(Standing::of(None).check(&reader).is_err());
        assert!(Standing::of(Some(&owner_role)).check(&owner_role).is_ok());
        assert!(Standing::of(Some(&admin_role)).check(&owner_role).is_err());
    }

    #[test]
    fn only_the_last_owner_is_kept() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(keep_an_owner(&[a], a, "demoted").is_err());
        assert!(keep_an_owner(&[a, b], a, "demoted").is_ok());
        assert!(keep_an_owner(&[a], b, "removed").is_ok());
        assert!(keep_an_owner(&[], a, "removed").is_ok());
    }
}
