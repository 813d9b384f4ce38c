//! Authentication: from an `Authorization` value to a [`Viewer`] acting in one organization.
//!
//! HTTP and WebSocket both call [`authenticate`], so the two can never disagree.

pub mod cache;
pub mod identity;
pub mod jwks;
pub mod jwt;
pub mod permissions;

use uuid::Uuid;

use crate::db::models::api_key;
use crate::db::models::organization::Organization;
use crate::db::models::user::User;
use crate::db::models::visibility::Visibility;
use crate::db::{Pool, Scope};
use crate::error::ApiError;
use cache::{Lookup, ViewerCache};
use identity::{Identity, Reach};
use jwt::JwtKeys;
use permissions::{Area, Level, Permissions};

/// The authenticated caller of one request, inside its active organization.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub user: User,
    pub organization: Organization,
    /// The caller's org role here (`guest` when reached only through teams or clients).
    pub role: String,
    /// What the org role allows, organization-wide.
    pub permissions: Permissions,
    /// Team roles, projects and docks reached through teams and clients.
    pub reach: Reach,
    /// The API key the request authenticated with, if any.
    pub api_key_id: Option<Uuid>,
    /// The API key may run only documents of the trusted documents manifest.
    pub trusted_documents_only: bool,
    /// True for a platform admin acting in an organization they do not belong to (audited).
    pub as_platform_admin: bool,
    /// Every organization the caller reaches.
    pub organizations: Vec<Organization>,
    /// The caller's role in each of `organizations`, by organization id (`guest` where they
    /// reach it only through teams or clients).
    pub roles: Vec<(Uuid, String)>,
}

impl Viewer {
    /// The database scope every statement of this viewer's requests runs in.
    pub fn scope(&self) -> Scope {
        Scope::org(self.organization.id, self.user.id)
    }

    /// A hash of everything that decides what this viewer may read in their organization, and
    /// nothing of who they are: viewers with equal fingerprints are shown the same rows of the
    /// organization's data (their own user, memberships and invitations aside). Answers that read
    /// nothing of the viewer's own are shared by fingerprint (the response cache).
    pub fn permission_fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        fn sorted(ids: &Option<Vec<Uuid>>) -> Option<Vec<Uuid>> {
            ids.as_ref().map(|ids| {
                let mut ids = ids.clone();
                ids.sort_unstable();
                ids
            })
        }
        let visibility = self.visibility();
        let mut teams: Vec<(Uuid, String)> = (self.reach.teams.iter())
            .map(|(team, permissions)| (*team, permissions.0.to_string()))
            .collect();
        teams.sort_unstable();
        let mut clients = self.reach.clients.clone();
        clients.sort_unstable();
        let mut project_teams = self.reach.project_teams.clone();
        project_teams.sort_unstable();
        let parts = serde_json::json!({
            "org": self.organization.id,
            "role": self.role,
            "permissions": self.permissions.0,
            "teams": teams,
            "clients": clients,
            "project_teams": project_teams,
            "projects": sorted(&visibility.projects),
            "docks": sorted(&visibility.docks),
            "linked_resources": sorted(&visibility.linked_resources),
            "visible_teams": sorted(&visibility.teams),
            "visible_clients": sorted(&visibility.clients),
            "members": visibility.members,
            "key_hints": sorted(&visibility.key_hints),
            "api_data": sorted(&visibility.api_data),
            "operation_services": sorted(&visibility.operation_services),
            "config_hints": sorted(&visibility.config_hints),
            "api_key": self.api_key_id.is_some(),
            "trusted_documents_only": self.trusted_documents_only,
            "as_platform_admin": self.as_platform_admin,
        });
        Sha256::digest(parts.to_string().as_bytes()).into()
    }

    /// True when the caller's org role grants at least `level` in `area`, organization-wide.
    pub fn can(&self, area: Area, level: Level) -> bool {
        self.permissions.allows(area, level)
    }

    /// What the caller may read of this organization (sets for team/client-only access).
    pub fn visibility(&self) -> &Visibility {
        &self.reach.visibility
    }

    /// The most generous level per area over the org role and every team and client role
    /// (client roles are read-only).
    pub fn effective_permissions(&self) -> Permissions {
        let mut merged = self.permissions.clone();
        for (_, team) in &self.reach.teams {
            merged = merged.merge(team);
        }
        if !self.reach.teams.is_empty() || !self.reach.clients.is_empty() {
            merged = merged.merge(&Permissions::read_only(&[Area::Projects, Area::Resources]));
        }
        merged
    }

    /// True when the caller may change project `project` of team `team` (org role, or a team
    /// role with projects FULL over that team's projects).
    pub fn can_write_project(&self, team: Option<Uuid>) -> bool {
        self.can(Area::Projects, Level::Full)
            || team.is_some_and(|team| {
                self.reach
                    .teams
                    .iter()
                    .any(|(t, p)| *t == team && p.allows(Area::Projects, Level::Full))
            })
    }

    /// False for a caller who belongs to no organization yet (see [`identity::choose`]): they
    /// may only see and accept their invitations.
    pub fn in_organization(&self) -> bool {
        !self.organization.id.is_nil()
    }

    /// True when the caller reaches this organization only through teams or clients.
    pub fn is_guest(&self) -> bool {
        self.role == "guest"
    }

    /// Guests see their own teams; members see every team.
    pub fn sees_team(&self, id: Uuid) -> bool {
        self.visibility().sees_team(id)
    }

    /// Guests see their own clients; members see every client.
    pub fn sees_client(&self, id: Uuid) -> bool {
        self.visibility().sees_client(id)
    }

    /// True when the caller may change project `id` (org role, or its team's role), given it is
    /// visible to them.
    pub fn can_write_project_id(&self, id: Uuid) -> bool {
        self.can(Area::Projects, Level::Full)
            || self
                .reach
                .project_teams
                .iter()
                .any(|(p, team)| *p == id && self.can_write_project(*team))
    }

    /// True when the caller may see organization `id` (one they reach, or the active one). Of
    /// any but the active one, only its id, name and slug are shown.
    pub fn sees_organization(&self, id: Uuid) -> Option<&Organization> {
        std::iter::once(&self.organization)
            .chain(&self.organizations)
            .find(|o| o.id == id)
    }
}

/// What authentication needs: the pool, the token keys, and the cache of resolved viewers.
pub struct Authenticator<'a> {
    pub pool: &'a Pool,
    pub keys: &'a JwtKeys,
    pub cache: &'a ViewerCache,
    /// Create the user of an unknown subject from the token's claims (`identity::provision`).
    pub provision_users: bool,
    /// Resolve from the database even when the cache holds the caller (the result is still
    /// cached): a connection's re-check must not read an entry that an access change it is
    /// reacting to has not cleared yet.
    pub fresh: bool,
}

/// Resolves an `Authorization` header value (and an optional `X-Org` slug) to a viewer.
pub async fn authenticate(
    auth: &Authenticator<'_>,
    authorization: Option<&str>,
    x_org: Option<&str>,
) -> Result<Viewer, ApiError> {
    let token = bearer_token(authorization)?;
    if token.starts_with("sg_") {
        return authenticate_key(auth, token, x_org).await;
    }
    let claims = auth.keys.verify(token).await?;
    let wanted_org = claims.org.as_deref().or(x_org).map(str::to_owned);
    let subject = format!("jwt:{}", claims.sub);
    cached(auth, &subject, wanted_org.as_deref(), async || {
        let identity = match identity::load(auth.pool, Some(&claims.sub), None).await {
            Err(ApiError::Unauthenticated(_)) if auth.provision_users => {
                identity::provision(auth.pool, &claims).await?;
                identity::load(auth.pool, Some(&claims.sub), None).await?
            }
            loaded => loaded?,
        };
        viewer_in(auth.pool, identity, wanted_org.clone(), None).await
    })
    .await
}

/// The cached viewer of `subject` in `org`, or the one `resolve` gives, kept for later callers
/// (`cache::Lookup`). A caller chosen to refresh a busy entry resolves it; should the database
/// fail or its pool stay busy meanwhile, it goes on with the cached viewer (still within the
/// TTL), and any other error (the access is gone) drops the entry. A refresher that is dropped
/// midway leaves the entry to expire; the next caller after that resolves it.
async fn cached(
    auth: &Authenticator<'_>,
    subject: &str,
    org: Option<&str>,
    resolve: impl AsyncFnOnce() -> Result<Viewer, ApiError>,
) -> Result<Viewer, ApiError> {
    let lookup = if auth.fresh {
        Lookup::Miss(auth.cache.ticket())
    } else {
        auth.cache.lookup(subject, org)
    };
    let (ticket, cached) = match lookup {
        Lookup::Hit(viewer) => return Ok(viewer),
        Lookup::Refresh(viewer, ticket) => (ticket, Some(viewer)),
        Lookup::Miss(ticket) => (ticket, None),
    };
    match (resolve().await, cached) {
        (Ok(viewer), _) => {
            auth.cache.put(ticket, subject, org, &viewer);
            Ok(viewer)
        }
        // The database failed or its pool stayed busy: nothing is known of the access.
        (Err(e @ (ApiError::Internal(_) | ApiError::RateLimited(_))), Some(viewer)) => {
            let detail = match &e {
                ApiError::Internal(source) => format!("{source:#}"),
                other => other.message().to_owned(),
            };
            tracing::warn!(
                error = detail,
                "could not resolve a cached viewer again; using it until it expires"
            );
            auth.cache.refresh_failed(subject, org);
            Ok(viewer)
        }
        (Err(e), cached) => {
            if cached.is_some() {
                auth.cache.forget(subject, org);
            }
            Err(e)
        }
    }
}

/// Resolves an API key (`sg_<prefix>_<secret>`): the key's user, acting in the key's organization.
async fn authenticate_key(
    auth: &Authenticator<'_>,
    token: &str,
    x_org: Option<&str>,
) -> Result<Viewer, ApiError> {
    let invalid = || ApiError::Unauthenticated("invalid API key".into());
    let (prefix, secret) = api_key::parse_key(token).ok_or_else(invalid)?;
    let subject = format!(
        "key:{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            api_key::hash_secret(token)
        )
    );
    cached(auth, &subject, x_org, async || {
        let mut conn = auth.pool.get().await.map_err(crate::db::DbError::from)?;
        let key = api_key::find_for_auth(&mut conn, prefix)
            .await?
            .ok_or_else(invalid)?;
        drop(conn);
        if !api_key::verify_secret(secret, &key.secret_hash) {
            return Err(invalid());
        }
        if key.revoked_at.is_some() {
            return Err(ApiError::Unauthenticated("API key revoked".into()));
        }
        if key.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
            return Err(ApiError::Unauthenticated("API key expired".into()));
        }
        let identity = identity::load(auth.pool, None, Some(key.user_id)).await?;
        let org = identity
            .organizations()
            .into_iter()
            .find(|o| o.id == key.org_id);
        let org = org.ok_or_else(|| {
            ApiError::Forbidden("the key's user no longer belongs to its organization".into())
        })?;
        if x_org.is_some_and(|slug| slug != org.slug) {
            return Err(ApiError::Forbidden(
                "an API key acts only in its own organization".into(),
            ));
        }
        let mut viewer = viewer_in(auth.pool, identity, Some(org.slug), Some(key.id)).await?;
        viewer.trusted_documents_only = key.trusted_documents_only;
        let touched = viewer
            .scope()
            .transaction(auth.pool, async |conn| api_key::touch(conn, key.id).await)
            .await;
        if let Err(e) = touched {
            tracing::warn!(error = %e, "could not record an API key's use");
        }
        Ok(viewer)
    })
    .await
}

/// Builds the viewer of `identity` in the wanted (or only) organization.
async fn viewer_in(
    pool: &Pool,
    identity: Identity,
    wanted_org: Option<String>,
    api_key_id: Option<Uuid>,
) -> Result<Viewer, ApiError> {
    let active = identity::choose(pool, &identity, wanted_org).await?;
    let reach = identity::reach(pool, &identity, &active).await?;
    let organizations = identity.organizations();
    let roles = organizations
        .iter()
        .map(|org| {
            let role = identity
                .memberships
                .iter()
                .find(|m| m.organization.id == org.id)
                .map_or_else(|| "guest".to_owned(), |m| m.role.clone());
            (org.id, role)
        })
        .collect();
    Ok(Viewer {
        organizations,
        roles,
        user: identity.user,
        organization: active.organization,
        role: active.role,
        permissions: active.permissions,
        reach,
        api_key_id,
        trusted_documents_only: false,
        as_platform_admin: active.as_platform_admin,
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

/// A long-lived connection's caller, authenticated again in the background: every `every`
/// (±20%), a task of the connection re-resolves the credentials it connected with, and
/// subscriptions read the latest outcome before each delivery without waiting for it. A revoked
/// membership or key, or an expired token, ends them; changed teams and grants are followed; a
/// failure to check (the database restarting) keeps the last viewer and tries again.
#[derive(Clone)]
pub struct Renewal(pub tokio::sync::watch::Receiver<Standing>);

/// The outcome of the latest check.
#[derive(Clone, Debug)]
pub enum Standing {
    Current(Box<Viewer>),
    /// The credentials no longer authenticate (`UNAUTHENTICATED`) or no longer reach the
    /// organization (`FORBIDDEN`).
    Revoked {
        unauthenticated: bool,
        message: String,
    },
}

impl Standing {
    pub fn error(&self) -> Option<ApiError> {
        match self {
            Standing::Current(_) => None,
            Standing::Revoked {
                unauthenticated: true,
                message,
            } => Some(ApiError::Unauthenticated(message.clone())),
            Standing::Revoked { message, .. } => Some(ApiError::Forbidden(message.clone())),
        }
    }
}

impl Renewal {
    /// Starts checking `source`: every `every` (±20%), soon after an access change of the
    /// viewer's organization commits anywhere (`access`, from the event bus), and just after
    /// `expires` (the token's expiry). The task ends after a revocation or once every receiver
    /// (the connection's and its subscriptions') is gone.
    pub fn start(
        viewer: Viewer,
        every: std::time::Duration,
        source: std::sync::Arc<dyn Reauthenticate>,
        access: Option<tokio::sync::broadcast::Receiver<crate::events::Delivery>>,
        expires: Option<std::time::SystemTime>,
    ) -> Self {
        let org = viewer.organization.id;
        let (sender, receiver) = tokio::sync::watch::channel(Standing::Current(Box::new(viewer)));
        tokio::spawn(async move {
            let mut access = access;
            loop {
                let factor = 0.8 + 0.4 * rand::random::<f64>();
                let mut wait = every.mul_f64(factor);
                if let Some(left) =
                    expires.and_then(|at| at.duration_since(std::time::SystemTime::now()).ok())
                {
                    wait = wait.min(left + std::time::Duration::from_millis(50));
                }
                // After an access change, past the viewer cache: this replica's cache may not
                // have seen the change yet (it is cleared by another receiver of the bus).
                let fresh = tokio::select! {
                    _ = tokio::time::sleep(wait) => false,
                    () = access_change(&mut access, org) => {
                        // Spread the re-checks of many connections of one organization.
                        let spread = std::time::Duration::from_millis(rand::random::<u64>() % 200);
                        tokio::time::sleep(spread).await;
                        true
                    }
                };
                if sender.is_closed() {
                    return;
                }
                if let Some(standing) = recheck(&*source, fresh).await {
                    let revoked = matches!(standing, Standing::Revoked { .. });
                    sender.send_replace(standing);
                    if revoked {
                        return;
                    }
                }
            }
        });
        Self(receiver)
    }
}

/// Waits for an access change that may concern `org` (or a gap in the stream, which may hide
/// one); never returns without a bus.
async fn access_change(
    access: &mut Option<tokio::sync::broadcast::Receiver<crate::events::Delivery>>,
    org: Uuid,
) {
    use crate::events::Delivery;
    use tokio::sync::broadcast::error::RecvError;
    let Some(receiver) = access else {
        return std::future::pending().await;
    };
    loop {
        match receiver.recv().await {
            // Only access events: a link change alters a client-portal viewer's reach too, but
            // re-checking every socket of an organization on every link would cost more than the
            // periodic check's delay.
            Ok(Delivery::Event(envelope)) => {
                if let crate::events::Event::Access(change) = &envelope.event
                    && change.concerns(org)
                {
                    return;
                }
            }
            Ok(Delivery::Gap) | Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => {
                *access = None;
                return std::future::pending().await;
            }
        }
    }
}

/// One re-check: the new standing, or `None` when the check itself failed (the database
/// restarting): the last standing is kept.
async fn recheck(source: &dyn Reauthenticate, fresh: bool) -> Option<Standing> {
    match source.viewer(fresh).await {
        // A caller left with no organization may only list and accept invitations: whatever
        // the connection subscribed to in its organization ends now.
        Ok(viewer) if !viewer.in_organization() => Some(Standing::Revoked {
            unauthenticated: false,
            message: "not a member of any organization".into(),
        }),
        Ok(viewer) => Some(Standing::Current(Box::new(viewer))),
        Err(ApiError::Unauthenticated(message)) => Some(Standing::Revoked {
            unauthenticated: true,
            message,
        }),
        Err(ApiError::Forbidden(message) | ApiError::NotFound(message)) => {
            Some(Standing::Revoked {
                unauthenticated: false,
                message,
            })
        }
        Err(e) => {
            tracing::warn!(error = ?e, "could not check a connection's caller again; keeping the last check");
            None
        }
    }
}

/// Authenticates a connection's caller again, with the credentials it connected with;
/// `fresh`: from the database, past the viewer cache.
#[async_trait::async_trait]
pub trait Reauthenticate: Send + Sync {
    async fn viewer(&self, fresh: bool) -> Result<Viewer, ApiError>;
}
