//! API keys: `createApiKey`, `revokeApiKey`, and the `ApiKey` and `CreatedApiKey` objects.
//!
//! Any member may create keys for themselves, with their own sign-in (not with another key);
//! a key acts as its user with their current roles, so it never exceeds them. Revoking needs
//! nothing for one's own keys and settings FULL for anyone else's.

use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::validate::{MAX_NAME, not_found, valid_name};
use super::{audited, settings_act};
use crate::auth::permissions::{Area, Level};
use crate::db::models::api_key::{self, ApiKey, NewApiKey};
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::ids;

/// An API key's row, served as the `ApiKey` object.
pub struct ApiKeyNode(pub ApiKey);

/// An API key: a token acting as its user, with that user's current roles, in one
/// organization. Its secret is shown once, by `createApiKey`, and never again.
#[Object(name = "ApiKey")]
impl ApiKeyNode {
    /// The key's global id (for `revokeApiKey`).
    async fn id(&self) -> ID {
        ids::encode("ApiKey", self.0.id)
    }
    /// The name given at creation, to tell keys apart (1–200 characters).
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The public part of the token `sg_<prefix>_<secret>`, to recognise a key.
    async fn prefix(&self) -> &str {
        &self.0.prefix
    }
    /// When the key was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the key was last used, to within five minutes.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
    /// When the key stops working; null: never.
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }
    /// When the key was revoked (it no longer works); null: it was not.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
    /// True when the key runs only documents of the server's trusted documents manifest.
    async fn trusted_documents_only(&self) -> bool {
        self.0.trusted_documents_only
    }
}

/// A new API key and its token, which is shown this once only.
#[derive(SimpleObject)]
pub struct CreatedApiKey {
    /// The key, as later lists and audits name it.
    pub api_key: ApiKeyNode,
    /// The whole token, `sg_<prefix>_<secret>`, to send as `Authorization: Bearer <token>`.
    /// Only its hash is stored: it cannot be shown again.
    pub secret: String,
}

#[derive(Default)]
pub struct ApiKeyMutations;

#[Object]
impl ApiKeyMutations {
    /// Creates an API key acting as the viewer in the active organization (names 1–200
    /// characters; `expiresAt`, when given, in the future). The token is in `secret`, this
    /// once. Any member may create their own; a key acts with its user's current roles, so it
    /// never exceeds them. Refused (`FORBIDDEN`, audited) for requests authenticated by an API
    /// key (a key cannot mint keys) and for platform admins outside their own organizations;
    /// `BAD_USER_INPUT` for a bad name or a past `expiresAt`.
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What the key is for, to tell keys apart: 1–200 characters, trimmed.")]
        name: String,
        #[graphql(desc = "When the key stops working; in the future. Null: it never expires.")]
        expires_at: Option<DateTime<Utc>>,
        #[graphql(
            desc = "True: the key runs only documents of the server's trusted documents manifest (by text or by hash), whatever mode the server runs in; anything else is `PERSISTED_QUERY_NOT_IN_LIST`.",
            default = false
        )]
        trusted_documents_only: bool,
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
            trusted_documents_only,
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

    /// Revokes an API key at once: the viewer's own, or any of the organization's with settings
    /// FULL (others' keys do not exist for anyone else: `NOT_FOUND`). True when it was revoked
    /// now, false when it already was.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `ApiKey`'s id.")] id: ID,
    ) -> async_graphql::Result<bool> {
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
