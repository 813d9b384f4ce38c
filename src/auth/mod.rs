//! Authentication: from an `Authorization` value to a [`Viewer`] acting in one organization.
//!
//! HTTP and WebSocket both call [`authenticate`], so the two can never disagree.

pub mod jwt;
pub mod permissions;

use uuid::Uuid;

use crate::db::models::membership::{self, Membership};
use crate::db::models::organization::{self, Organization};
use crate::db::models::user::{self, User};
use crate::db::{Pool, Scope};
use crate::error::ApiError;
use jwt::JwtKeys;
use permissions::{Area, Level, Permissions};

/// The authenticated caller of one request, inside its active organization.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: User,
    pub organization: Organization,
    /// The name of the caller's role in the active organization.
    pub role: String,
    /// What that role allows.
    pub permissions: Permissions,
    /// The API key the request authenticated with, if any.
    pub api_key_id: Option<Uuid>,
    /// Every organization the caller is a member of.
    pub organizations: Vec<Organization>,
}

impl Viewer {
    /// The database scope every statement of this viewer's requests runs in.
    pub fn scope(&self) -> Scope {
        Scope::org(self.organization.id, self.user.id)
    }

    /// True when the caller's role grants at least `level` in `area`.
    pub fn can(&self, area: Area, level: Level) -> bool {
        self.permissions.allows(area, level)
    }

    /// True when the caller may see organization `id` (a member, or it is the active one).
    pub fn sees_organization(&self, id: Uuid) -> Option<&Organization> {
        std::iter::once(&self.organization)
            .chain(&self.organizations)
            .find(|o| o.id == id)
    }
}

/// Resolves an `Authorization` header value (and an optional `X-Org` slug) to a viewer.
pub async fn authenticate(
    pool: &Pool,
    keys: &JwtKeys,
    authorization: Option<&str>,
    x_org: Option<&str>,
) -> Result<Viewer, ApiError> {
    let token = bearer_token(authorization)?;
    let claims = keys.verify(token)?;
    let wanted_org = claims.org.as_deref().or(x_org).map(str::to_owned);
    let (user, memberships) = load_identity(pool, &claims.sub).await?;
    let active = choose_organization(pool, &user, &memberships, wanted_org).await?;
    let organizations = memberships.into_iter().map(|m| m.organization).collect();
    Ok(Viewer {
        user,
        organization: active.organization,
        role: active.role,
        permissions: Permissions(active.permissions),
        api_key_id: None,
        organizations,
    })
}

/// Extracts the token from `Bearer <token>`.
fn bearer_token(authorization: Option<&str>) -> Result<&str, ApiError> {
    let value = authorization.ok_or_else(|| {
        ApiError::Unauthenticated(
            "authentication required: send `Authorization: Bearer <token>`".into(),
        )
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::Unauthenticated(
            "malformed Authorization header: expected `Bearer <token>`".into(),
        ));
    }
    Ok(token)
}

async fn load_identity(
    pool: &Pool,
    external_id: &str,
) -> Result<(User, Vec<Membership>), ApiError> {
    let lookup = Scope {
        external_id: Some(external_id.to_owned()),
        ..Scope::default()
    };
    let found = lookup
        .transaction(pool, async |conn| {
            let Some(user) = user::find_by_external_id(conn, external_id).await? else {
                return Ok(None);
            };
            Scope {
                user_id: Some(user.id),
                ..Scope::default()
            }
            .apply(conn)
            .await?;
            let memberships = membership::of_user(conn, user.id).await?;
            Ok(Some((user, memberships)))
        })
        .await?;
    found.ok_or_else(|| ApiError::Unauthenticated("unknown user".into()))
}

/// Picks the active organization: the token's `org` claim, else `X-Org`, else the only one.
async fn choose_organization(
    pool: &Pool,
    user: &User,
    memberships: &[Membership],
    wanted: Option<String>,
) -> Result<Membership, ApiError> {
    let Some(slug) = wanted else {
        return match memberships {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::Forbidden("not a member of any organization".into())),
            _ => Err(ApiError::BadUserInput(
                "member of several organizations: choose one with the token's `org` claim or an X-Org header".into(),
            )),
        };
    };
    if let Some(m) = memberships.iter().find(|m| m.organization.slug == slug) {
        return Ok(m.clone());
    }
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
        if let Some(org) = org {
            let permissions = Permissions::all().0;
            return Ok(Membership {
                organization: org,
                role: "platform_admin".into(),
                permissions,
            });
        }
    }
    // An unknown slug and a foreign one answer alike, so slugs of other tenants leak nothing.
    Err(ApiError::Forbidden(format!(
        "not a member of organization `{slug}`"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token(Some("Bearer abc")).ok(), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")).ok(), Some("abc"));
        for bad in [
            None,
            Some("abc"),
            Some("Basic abc"),
            Some("Bearer "),
            Some(""),
        ] {
            assert!(
                matches!(bearer_token(bad), Err(ApiError::Unauthenticated(_))),
                "{bad:?}"
            );
        }
    }
}
