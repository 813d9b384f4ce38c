//! Who may do what: `createTeam`, `addTeamMember`, `createClient`, `addClientMember`,
//! `createRole`, `setMemberRole`, `removeMember`, `grantDockAccess`, `revokeDockAccess`,
//! `createApiKey`, `revokeApiKey`.
//!
//! People, teams, clients and roles need settings FULL; dock grants need docks FULL; anyone
//! may create API keys for themselves. Every change is audited by [`audited`].
//!
//! The role hierarchy (docs/security.md): only owners grant, change or revoke the owner role
//! and remove owners; nobody grants a role above their own org role, or changes the role of
//! someone above it ([`check_grantable`]); an organization keeps an owner. People are added to
//! teams and clients only when they already reach the organization; anyone else is invited
//! (`createInvitation`).

use std::sync::Arc;

use async_graphql::{Context, ID, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret;
use serde_json::Value;
use uuid::Uuid;

use super::{Act, audited, org_full, refusal};
use crate::auth::Viewer;
use crate::auth::permissions::{Area, Level, Permissions};
use crate::db::models::access::{self, Grantee, PersonRef};
use crate::db::models::api_key::{self, ApiKey, NewApiKey};
use crate::db::models::directory::{self, Role};
use crate::db::models::user::User;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::enums::AccessLevel;
use crate::graphql::ids;
use crate::graphql::types::directory::{ClientNode, MemberNode, RoleNode, TeamNode};

/// Longest team, client and API key name.
const MAX_NAME: usize = 200;
/// Longest role name.
const MAX_ROLE_NAME: usize = 64;
/// Longest email (RFC 5321 path limit).
const MAX_EMAIL: usize = 320;
/// The areas a permission document may name.
const AREAS: [Area; 7] = Area::ALL;

/// An API key: a token acting as its user in this organization. The secret is never shown
/// again after `createApiKey`.
pub struct ApiKeyNode(pub ApiKey);

#[Object(name = "ApiKey")]
impl ApiKeyNode {
    async fn id(&self) -> ID {
        ids::encode("ApiKey", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The public part of the token `sg_<prefix>_<secret>`, to recognise a key.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the key was last used, to within five minutes.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// A new API key and its token, which is shown this once only.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    pub api_key: ApiKeyNode,
    /// The whole token, `sg_<prefix>_<secret>`, to send as `Authorization: Bearer <token>`.
    /// Only its hash is stored: it cannot be shown again.
    pub secret: String,
}

/// Whom `addTeamMember` and `addClientMember` add.
enum Person {
    Id(Uuid),
    Email(String),
}

#[derive(Default)]
pub struct AccessMutations;

#[Object]
impl AccessMutations {
    /// Creates a team (names 1–200 characters, unique in the organization). Needs settings FULL.
    async fn create_team(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<TeamNode> {
        let org = viewer(ctx)?.organization.id;
        let name = valid_name(&name, MAX_NAME)?;
        let conflict = format!("a team named `{name}` exists");
        let act = settings_act("team.create", "Team", None);
        let team = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let team = access::create_team(conn, org, name)
                .await
                .map_err(|e| refusal(e, &conflict, "no such organization"))?;
            let id = team.id;
            Ok((team, Some(id)))
        })
        .await?;
        Ok(TeamNode(Arc::new(team)))
    }

    /// Adds a person, named by exactly one of `userId` and `email`, to a team with a role of
    /// the organization. They must already reach the organization (as a member, or through a
    /// team or client); anyone else is invited with `createInvitation`, and is answered the same
    /// `NOT_FOUND` whether their e-mail is known or not. The role may not exceed the caller's
    /// own. Needs settings FULL.
    async fn add_team_member(
        &self,
        ctx: &Context<'_>,
        team_id: ID,
        user_id: Option<ID>,
        email: Option<String>,
        role_id: ID,
    ) -> async_graphql::Result<TeamNode> {
        let org = viewer(ctx)?.organization.id;
        let team = ids::decode_as(&team_id, "Team")?;
        let role = ids::decode_as(&role_id, "Role")?;
        let person = person(user_id, email)?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("team.add_member", "Team", Some(team));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = directory::teams_by_ids(conn, &[team])
                .await?
                .into_iter()
                .find(|t| t.org_id == org)
                .ok_or_else(|| not_found("team"))?;
            let role = org_role(conn, org, role).await?;
            grantor.check(conn, org, &role).await?;
            let user = find_person(conn, org, &person).await?;
            access::add_team_member(conn, org, team, user.id, role.id)
                .await
                .map_err(|e| refusal(e, "the user is already in the team", "no such user"))?;
            Ok((row, None))
        })
        .await?;
        Ok(TeamNode(Arc::new(row)))
    }

    /// Creates a client (names 1–200 characters, unique in the organization). Needs settings
    /// FULL.
    async fn create_client(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<ClientNode> {
        let org = viewer(ctx)?.organization.id;
        let name = valid_name(&name, MAX_NAME)?;
        let conflict = format!("a client named `{name}` exists");
        let act = settings_act("client.create", "Client", None);
        let client = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let client = access::create_client(conn, org, name)
                .await
                .map_err(|e| refusal(e, &conflict, "no such organization"))?;
            let id = client.id;
            Ok((client, Some(id)))
        })
        .await?;
        Ok(ClientNode(Arc::new(client)))
    }

    /// Adds a person, named by exactly one of `userId` and `email`, to a client's portal. They
    /// must already reach the organization, as for `addTeamMember`. Client access is read-only
    /// whatever the role says; `roleId` defaults to the built-in `viewer` and may not exceed the
    /// caller's own role. Needs settings FULL.
    async fn add_client_member(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        user_id: Option<ID>,
        email: Option<String>,
        role_id: Option<ID>,
    ) -> async_graphql::Result<ClientNode> {
        let org = viewer(ctx)?.organization.id;
        let client = ids::decode_as(&client_id, "Client")?;
        let role = role_id
            .as_deref()
            .map(|id| ids::decode_as(id, "Role"))
            .transpose()?;
        let person = person(user_id, email)?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("client.add_member", "Client", Some(client));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = directory::clients_by_ids(conn, &[client])
                .await?
                .into_iter()
                .find(|c| c.org_id == org)
                .ok_or_else(|| not_found("client"))?;
            let role = match role {
                Some(role) => org_role(conn, org, role).await?,
                None => access::builtin_role(conn, org, "viewer")
                    .await?
                    .ok_or_else(|| {
                        ApiError::internal(anyhow::anyhow!("no built-in viewer role"))
                    })?,
            };
            grantor.check(conn, org, &role).await?;
            let user = find_person(conn, org, &person).await?;
            access::add_client_member(conn, org, client, user.id, role.id)
                .await
                .map_err(|e| refusal(e, "the user is already in the client", "no such user"))?;
            Ok((row, None))
        })
        .await?;
        Ok(ClientNode(Arc::new(row)))
    }

    /// Creates a role. `permissions` is an object from areas (`projects`, `resources`, `docks`,
    /// `operations`, `settings`, `audit`, `monitoring`) to `"read"` or `"full"`; a missing
    /// area is none. Names are 1–64 characters, unique in the organization (built-in names
    /// included). No area may exceed the caller's own org role (`FORBIDDEN`). Needs settings
    /// FULL.
    async fn create_role(
        &self,
        ctx: &Context<'_>,
        name: String,
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
    /// denied). Needs settings FULL.
    async fn set_member_role(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        role_id: ID,
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

    /// Removes a person from the organization: their membership, their team and client
    /// memberships there, and their API keys there (revoked). The last owner cannot be removed
    /// (`CONFLICT`); only owners remove owners, and nobody removes a member whose role is above
    /// their own (`FORBIDDEN`, audited as denied). Needs settings FULL.
    async fn remove_member(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<bool> {
        let org = viewer(ctx)?.organization.id;
        let user = ids::decode_as(&user_id, "User")?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("member.remove", "User", Some(user));
        Ok(
            audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
                let owners = access::lock_owners(conn, org).await?;
                keep_an_owner(&owners, user, "removed")?;
                if let Some(current) = access::lock_membership(conn, org, user).await? {
                    let role = org_role(conn, org, current).await?;
                    grantor.standing(conn, org).await?.check(&role)?;
                }
                if !access::remove_member(conn, org, user).await? {
                    return Err(not_found("member"));
                }
                api_key::revoke_all_of_user(conn, org, user).await?;
                Ok((true, None))
            })
            .await?,
        )
    }

    /// Grants a team or a client (exactly one) `READ` or `FULL` on a dock, replacing any level
    /// it had; `NONE` is refused (use `revokeDockAccess`). Needs docks FULL.
    async fn grant_dock_access(
        &self,
        ctx: &Context<'_>,
        dock_id: ID,
        team_id: Option<ID>,
        client_id: Option<ID>,
        level: AccessLevel,
    ) -> async_graphql::Result<bool> {
        let org = viewer(ctx)?.organization.id;
        let dock = ids::decode_as(&dock_id, "Dock")?;
        let grantee = grantee(team_id, client_id)?;
        let level = match level {
            AccessLevel::Read => "read",
            AccessLevel::Full => "full",
            AccessLevel::None => {
                return Err(ApiError::BadUserInput(
                    "`level: NONE` grants nothing: use `revokeDockAccess`".into(),
                )
                .into());
            }
        };
        let act = dock_act("dock.grant", dock);
        Ok(
            audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
                check_grant(conn, org, dock, grantee).await?;
                access::grant_dock(conn, org, dock, grantee, level)
                    .await
                    .map_err(|e| refusal(e, "the grant changed meanwhile", "no such grantee"))?;
                Ok((true, None))
            })
            .await?,
        )
    }

    /// Takes a team's or a client's (exactly one) grant on a dock away; false when it had none.
    /// Needs docks FULL.
    async fn revoke_dock_access(
        &self,
        ctx: &Context<'_>,
        dock_id: ID,
        team_id: Option<ID>,
        client_id: Option<ID>,
    ) -> async_graphql::Result<bool> {
        let org = viewer(ctx)?.organization.id;
        let dock = ids::decode_as(&dock_id, "Dock")?;
        let grantee = grantee(team_id, client_id)?;
        let act = dock_act("dock.revoke", dock);
        Ok(
            audited(ctx, act, org_full(ctx, Area::Docks)?, async |conn| {
                check_grant(conn, org, dock, grantee).await?;
                Ok((access::revoke_dock(conn, org, dock, grantee).await?, None))
            })
            .await?,
        )
    }

    /// Creates an API key acting as the viewer in the active organization (names 1–200
    /// characters; `expiresAt`, when given, in the future). The token is in `secret`, this
    /// once. Any member may create their own; a key acts with its user's current roles, so it
    /// never exceeds them. Refused (`FORBIDDEN`, audited) for requests authenticated by an API
    /// key (a key cannot mint keys) and for platform admins outside their own organizations.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        name: String,
        expires_at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<CreatedApiKey> {
        let viewer = viewer(ctx)?;
        let name = valid_name(&name, MAX_NAME)?;
        if expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(ApiError::BadUserInput("`expiresAt` must be in the future".into()).into());
        }
        let key = api_key::generate();
        let new = NewApiKey {
            org_id: viewer.organization.id,
            user_id: viewer.user.id,
            name,
            prefix: &key.prefix,
            secret_hash: &key.secret_hash,
            expires_at,
        };
        let (by_key, as_admin) = (viewer.api_key_id.is_some(), viewer.as_platform_admin);
        let act = settings_act("api_key.create", "ApiKey", None);
        let row = audited(ctx, act, true, async |conn| {
            if by_key {
                return Err(ApiError::Forbidden(
                    "API keys are created with a user's own sign-in, not with another API key"
                        .into(),
                ));
            }
            if as_admin {
                return Err(ApiError::Forbidden(
                    "API keys act in an organization their user belongs to".into(),
                ));
            }
            let row = api_key::create(conn, new).await?;
            let id = row.id;
            Ok((row, Some(id)))
        })
        .await?;
        Ok(CreatedApiKey {
            api_key: ApiKeyNode(row),
            secret: key.token.expose_secret().to_owned(),
        })
    }

    /// Revokes an API key: the viewer's own, or any of the organization's with settings FULL
    /// (others' keys do not exist for anyone else). False when it was already revoked.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let viewer = viewer(ctx)?;
        let (org, me) = (viewer.organization.id, viewer.user.id);
        let any_key = viewer.can(Area::Settings, Level::Full);
        let key = ids::decode_as(&id, "ApiKey")?;
        let act = settings_act("api_key.revoke", "ApiKey", Some(key));
        Ok(audited(ctx, act, true, async |conn| {
            let row = api_key::find(conn, org, key)
                .await?
                .filter(|k| any_key || k.user_id == me)
                .ok_or_else(|| not_found("API key"))?;
            Ok((api_key::revoke(conn, row.id).await?, None))
        })
        .await?)
    }
}

pub(super) fn settings_act<'a>(
    action: &'a str,
    target_type: &'a str,
    target_id: Option<Uuid>,
) -> Act<'a> {
    Act {
        area: Area::Settings,
        action,
        target_type,
        target_id,
    }
}

fn dock_act(action: &str, dock: Uuid) -> Act<'_> {
    Act {
        area: Area::Docks,
        action,
        target_type: "Dock",
        target_id: Some(dock),
    }
}

pub(super) fn not_found(what: &str) -> ApiError {
    ApiError::NotFound(format!("no such {what}"))
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
fn keep_an_owner(owners: &[Uuid], user: Uuid, verb: &str) -> Result<(), ApiError> {
    if owners == [user] {
        return Err(ApiError::Conflict(format!(
            "the last owner of the organization cannot be {verb}: make another member owner first"
        )));
    }
    Ok(())
}

/// Exactly one of `userId` and `email`.
fn person(user_id: Option<ID>, email: Option<String>) -> Result<Person, ApiError> {
    match (user_id, email) {
        (Some(id), None) => Ok(Person::Id(ids::decode_as(&id, "User")?)),
        (None, Some(email)) => Ok(Person::Email(valid_email(&email)?.to_owned())),
        _ => Err(ApiError::BadUserInput(
            "give exactly one of `userId` and `email`".into(),
        )),
    }
}

/// The user a person names, if they already reach the organization. Anyone else gets one
/// answer, whether their e-mail or id is known elsewhere or not at all.
async fn find_person(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    person: &Person,
) -> Result<User, ApiError> {
    let who = match person {
        Person::Id(id) => PersonRef::Id(*id),
        Person::Email(email) => PersonRef::Email(email),
    };
    access::person_reaching(conn, org, who)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(
                "no member with that e-mail or id; invite them with `createInvitation`".into(),
            )
        })
}

/// Exactly one of `teamId` and `clientId`.
fn grantee(team_id: Option<ID>, client_id: Option<ID>) -> Result<Grantee, ApiError> {
    match (team_id, client_id) {
        (Some(team), None) => Ok(Grantee::Team(ids::decode_as(&team, "Team")?)),
        (None, Some(client)) => Ok(Grantee::Client(ids::decode_as(&client, "Client")?)),
        _ => Err(ApiError::BadUserInput(
            "give exactly one of `teamId` and `clientId`".into(),
        )),
    }
}

/// Checks that the dock (live) and the grantee exist in the organization.
async fn check_grant(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    dock: Uuid,
    grantee: Grantee,
) -> Result<(), ApiError> {
    if !access::live_dock(conn, org, dock).await? {
        return Err(not_found("dock"));
    }
    let exists = match grantee {
        Grantee::Team(id) => directory::teams_by_ids(conn, &[id])
            .await?
            .iter()
            .any(|t| t.org_id == org),
        Grantee::Client(id) => directory::clients_by_ids(conn, &[id])
            .await?
            .iter()
            .any(|c| c.org_id == org),
    };
    if !exists {
        return Err(not_found(match grantee {
            Grantee::Team(_) => "team",
            Grantee::Client(_) => "client",
        }));
    }
    Ok(())
}

/// A trimmed name of 1 to `max` characters.
fn valid_name(name: &str, max: usize) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(ApiError::BadUserInput(format!(
            "`name` must be 1 to {max} characters"
        )));
    }
    Ok(name)
}

/// A trimmed address with one `@` between non-empty parts; matched case-insensitively.
pub(super) fn valid_email(email: &str) -> Result<&str, ApiError> {
    let email = email.trim();
    let ok = email.len() <= MAX_EMAIL
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
        && !email.chars().any(char::is_whitespace);
    if !ok {
        return Err(ApiError::BadUserInput(
            "`email` is not an email address".into(),
        ));
    }
    Ok(email)
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
        if !AREAS.iter().any(|a| a.as_str() == area) {
            let names: Vec<&str> = AREAS.iter().map(|a| a.as_str()).collect();
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

    #[test]
    fn emails_and_names_are_checked() {
        assert_eq!(valid_email(" a@b.test ").ok(), Some("a@b.test"));
        for bad in [
            "",
            "ab",
            "@b",
            "a@",
            "a@b@c",
            "a b@c",
            &format!("{}@b", "a".repeat(320)),
        ] {
            assert!(valid_email(bad).is_err(), "{bad}");
        }
        assert_eq!(valid_name(" Ops ", 64).ok(), Some("Ops"));
        assert!(valid_name(" ", 64).is_err());
        assert!(valid_name(&"r".repeat(65), 64).is_err());
        assert!(valid_name(&"é".repeat(64), 64).is_ok());
    }
}
