//! From a verified subject to the organization it acts in and what it reaches there.

use uuid::Uuid;

use super::jwt::Claims;
use super::permissions::{Area, Level, Permissions};
use crate::db::models::membership::{self, Membership};
use crate::db::models::organization::{self, Organization};
use crate::db::models::user::{self, User};
use crate::db::models::visibility::{self, Grant, IndirectRole, ServiceGrant, Visibility};
use crate::db::{Pool, Scope};
use crate::error::ApiError;

/// A user and every way they belong to organizations.
pub struct Identity {
    pub user: User,
    pub memberships: Vec<Membership>,
    pub indirect: Vec<IndirectRole>,
}

impl Identity {
    /// Every organization the user reaches, by slug, each once.
    pub fn organizations(&self) -> Vec<Organization> {
        let mut orgs: Vec<Organization> = self
            .memberships
            .iter()
            .map(|m| m.organization.clone())
            .collect();
        for role in &self.indirect {
            if !orgs.iter().any(|o| o.id == role.organization.id) {
                orgs.push(role.organization.clone());
            }
        }
        orgs.sort_by(|a, b| a.slug.cmp(&b.slug));
        orgs
    }
}

/// Loads the user a token's subject names (by external id) or a key names (by id).
pub async fn load(
    pool: &Pool,
    external_id: Option<&str>,
    user_id: Option<Uuid>,
) -> Result<Identity, ApiError> {
    let lookup = Scope {
        external_id: external_id.map(str::to_owned),
        user_id,
        ..Scope::default()
    };
    let found = lookup
        .transaction(pool, async |conn| {
            let user = match (external_id, user_id) {
                (Some(external), _) => user::find_by_external_id(conn, external).await?,
                (None, Some(id)) => user::find_by_id(conn, id).await?,
                (None, None) => None,
            };
            let Some(user) = user else { return Ok(None) };
            Scope {
                user_id: Some(user.id),
                ..Scope::default()
            }
            .apply(conn)
            .await?;
            let memberships = membership::of_user(conn, user.id).await?;
            let indirect = visibility::indirect_roles(conn, user.id).await?;
            Ok(Some(Identity {
                user,
                memberships,
                indirect,
            }))
        })
        .await?;
    found.ok_or_else(|| ApiError::Unauthenticated("unknown user".into()))
}

/// The longest token subject a user is provisioned for (bytes).
pub const MAX_SUBJECT: usize = 255;
/// The longest e-mail a user is provisioned with (bytes, the SMTP path limit).
pub const MAX_EMAIL: usize = 320;
/// The longest display name a user is provisioned with (characters).
pub const MAX_NAME: usize = 200;

/// Creates the user of a verified token whose subject is unknown, from its `email` and `name`
/// claims (`name` defaults to the e-mail's local part). Refused (`UNAUTHENTICATED`, the subject
/// stays unknown) without a usable e-mail, for claims over their bounds, and when another user
/// has the e-mail (compared case-insensitively): a new subject never takes over an account.
/// Concurrent first requests of one subject create one user.
pub async fn provision(pool: &Pool, claims: &Claims) -> Result<(), ApiError> {
    let (email, name) = profile(claims)?;
    let scope = Scope {
        external_id: Some(claims.sub.clone()),
        ..Scope::default()
    };
    let created = scope
        .transaction(pool, async |conn| {
            user::provision(conn, &email, &name).await
        })
        .await?;
    match created {
        Some(_) => Ok(()),
        None => Err(refuse(
            "the token's e-mail belongs to another user; sign in as that user or ask an administrator",
        )),
    }
}

fn refuse(why: &str) -> ApiError {
    ApiError::Unauthenticated(format!("unknown user: {why}"))
}

/// The e-mail and name a new user gets from `claims`, checked and bounded.
fn profile(claims: &Claims) -> Result<(String, String), ApiError> {
    let printable = |s: &str| !s.chars().any(char::is_control);
    if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT || !printable(&claims.sub) {
        return Err(refuse(&format!(
            "the token's `sub` must be 1 to {MAX_SUBJECT} bytes"
        )));
    }
    let email = claims.email.as_deref().map(str::trim).unwrap_or_default();
    let email_ok = email.len() <= MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !email_ok {
        return Err(refuse(
            "the token carries no usable `email` claim to create the user from",
        ));
    }
    let local = email.split('@').next().unwrap_or(email);
    let name = claims
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(local);
    if name.chars().count() > MAX_NAME || !printable(name) {
        return Err(refuse(&format!(
            "the token's `name` must be at most {MAX_NAME} printable characters"
        )));
    }
    Ok((email.to_owned(), name.to_owned()))
}

/// The organization a request acts in and the org-wide role held there (if any).
pub struct Active {
    pub organization: Organization,
    pub role: String,
    pub permissions: Permissions,
    /// True for a platform admin in an organization they do not belong to.
    pub as_platform_admin: bool,
}

impl Active {
    /// A caller who reaches no organization: no organization (the nil id, which no row carries,
    /// so row-level security shows nothing) and no permissions. Such a caller may only list and
    /// accept their invitations; every other resolver refuses them (`graphql::context::viewer`).
    fn outside() -> Self {
        Self {
            organization: Organization {
                id: Uuid::nil(),
                name: String::new(),
                slug: String::new(),
                created_at: chrono::DateTime::UNIX_EPOCH,
                updated_at: chrono::DateTime::UNIX_EPOCH,
            },
            role: "none".into(),
            permissions: Permissions::default(),
            as_platform_admin: false,
        }
    }
}

/// Picks the active organization: the wanted slug, else the only one reached; a caller who
/// reaches none and names none gets [`Active::outside`].
pub async fn choose(
    pool: &Pool,
    identity: &Identity,
    wanted: Option<String>,
) -> Result<Active, ApiError> {
    let orgs = identity.organizations();
    let org = match (wanted, orgs.as_slice()) {
        (Some(slug), _) => match orgs.iter().find(|o| o.slug == slug) {
            Some(org) => org.clone(),
            None => return admin_entry(pool, &identity.user, slug).await,
        },
        (None, [only]) => only.clone(),
        (None, []) => return Ok(Active::outside()),
        (None, _) => {
            return Err(ApiError::BadUserInput(
                "member of several organizations: choose one with the token's `org` claim or an X-Org header".into(),
            ));
        }
    };
    let direct = identity
        .memberships
        .iter()
        .find(|m| m.organization.id == org.id);
    Ok(match direct {
        Some(m) => Active {
            organization: org,
            role: m.role.clone(),
            permissions: Permissions(m.permissions.clone()),
            as_platform_admin: false,
        },
        None => Active {
            organization: org,
            role: "guest".into(),
            permissions: Permissions::default(),
            as_platform_admin: false,
        },
    })
}

async fn admin_entry(pool: &Pool, user: &User, slug: String) -> Result<Active, ApiError> {
    if user.is_platform_admin {
        let scope = Scope {
            user_id: Some(user.id),
            admin_org_slug: Some(slug.clone()),
            ..Scope::default()
        };
        let org = scope
            .transaction(pool, async |conn| {
                organization::find_by_slug(conn, &slug).await
            })
            .await?;
        if let Some(organization) = org {
            return Ok(Active {
                organization,
                role: "platform_admin".into(),
                permissions: Permissions::all(),
                as_platform_admin: true,
            });
        }
    }
    // An unknown slug and a foreign one answer alike, so slugs of other tenants leak nothing.
    Err(ApiError::Forbidden(format!(
        "not a member of organization `{slug}`"
    )))
}

/// What a viewer reaches through teams and clients in the active organization.
#[derive(Clone, Debug)]
pub struct Reach {
    /// The viewer's team roles here.
    pub teams: Vec<(Uuid, Permissions)>,
    /// The clients the viewer belongs to here.
    pub clients: Vec<Uuid>,
    /// Visible projects with their team (through teams and clients).
    pub project_teams: Vec<(Uuid, Option<Uuid>)>,
    pub visibility: Visibility,
}

/// Computes the reach in `active` (four statements, only for users with team or client roles
/// there) and from it what the viewer may read: org-wide READ in an area lifts the restriction
/// for that area; short of it, only what teams and clients reach.
pub async fn reach(pool: &Pool, identity: &Identity, active: &Active) -> Result<Reach, ApiError> {
    let here: Vec<&IndirectRole> = identity
        .indirect
        .iter()
        .filter(|r| r.organization.id == active.organization.id)
        .collect();
    let teams: Vec<(Uuid, Permissions)> = here
        .iter()
        .filter_map(|r| Some((r.team_id?, Permissions(r.permissions.clone()))))
        .collect();
    let team_ids: Vec<Uuid> = teams.iter().map(|(t, _)| *t).collect();
    let client_ids: Vec<Uuid> = here.iter().filter_map(|r| r.client_id).collect();
    let (projects, grants, linked, services) = if here.is_empty() {
        (Vec::new(), Vec::new(), Vec::new(), Vec::new())
    } else {
        let scope = Scope::org(active.organization.id, identity.user.id);
        scope
            .transaction(pool, async |conn| {
                visibility::reach(conn, &team_ids, &client_ids).await
            })
            .await?
    };
    let org = &active.permissions;
    let restricted = |area| !org.allows(area, Level::Read);
    // Guests reach the organization only through teams or clients; callers outside every
    // organization reach nothing.
    let guest = matches!(active.role.as_str(), "guest" | "none");
    let full_via_teams = |area| full_grants(&grants, &teams, area);
    let visibility = Visibility {
        projects: restricted(Area::Projects).then(|| projects.iter().map(|(id, _)| *id).collect()),
        docks: restricted(Area::Docks).then(|| grants.iter().map(|g| g.dock).collect()),
        linked_resources: restricted(Area::Resources).then_some(linked),
        teams: guest.then(|| team_ids.clone()),
        clients: guest.then(|| client_ids.clone()),
        me: identity.user.id,
        members: !guest,
        key_hints: (!org.allows(Area::Docks, Level::Full)).then(|| full_via_teams(Area::Docks)),
        api_data: (!org.allows(Area::Resources, Level::Full))
            .then(|| full_via_teams(Area::Resources)),
        operation_services: restricted(Area::Operations)
            .then(|| services.iter().map(|g| g.service).collect()),
        config_hints: (!org.allows(Area::Operations, Level::Full))
            .then(|| full_service_grants(&services, &teams)),
    };
    Ok(Reach {
        teams,
        clients: client_ids,
        project_teams: projects,
        visibility,
    })
}

/// Operation services granted at `full` to a team whose role has operations FULL.
fn full_service_grants(grants: &[ServiceGrant], teams: &[(Uuid, Permissions)]) -> Vec<Uuid> {
    grants
        .iter()
        .filter(|g| g.level == "full")
        .filter(|g| {
            teams
                .iter()
                .any(|(t, role)| *t == g.team && role.allows(Area::Operations, Level::Full))
        })
        .map(|g| g.service)
        .collect()
}

/// Docks granted at `full` to a team whose role has FULL in `area` (client grants are read-only).
fn full_grants(grants: &[Grant], teams: &[(Uuid, Permissions)], area: Area) -> Vec<Uuid> {
    grants
        .iter()
        .filter(|g| g.level == "full")
        .filter(|g| {
            g.team.is_some_and(|team| {
                teams
                    .iter()
                    .any(|(t, role)| *t == team && role.allows(area, Level::Full))
            })
        })
        .map(|g| g.dock)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, email: Option<&str>, name: Option<&str>) -> Claims {
        Claims {
            sub: sub.into(),
            org: None,
            exp: 0,
            iat: 0,
            email: email.map(Into::into),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn profiles_are_checked_and_bounded() {
        let ok = profile(&claims("s", Some(" ann@example.invalid "), None)).expect("ok");
        assert_eq!(ok, ("ann@example.invalid".into(), "ann".into()));
        let named = profile(&claims("s", Some("a@example.invalid"), Some(" Ann "))).expect("ok");
        assert_eq!(named.1, "Ann");
        for bad in [
            claims("s", None, None),
            claims("s", Some("nobody"), None),
            claims("s", Some("a b@example.invalid"), None),
            claims(
                "s",
                Some(&format!("{}@example.invalid", "a".repeat(320))),
                None,
            ),
            claims("s", Some("a@example.invalid"), Some(&"n".repeat(201))),
            claims("s", Some("a@example.invalid"), Some("a\u{7}b")),
            claims("", Some("a@example.invalid"), None),
            claims(&"s".repeat(256), Some("a@example.invalid"), None),
        ] {
            assert!(
                matches!(profile(&bad), Err(ApiError::Unauthenticated(_))),
                "{bad:?}"
            );
        }
    }
}
