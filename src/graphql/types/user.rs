//! `User`: a person; visible to members of an organization they belong to.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::models::user::{self, User};
use crate::graphql::ids;
use crate::graphql::loaders::{DbLoader, LoadError};

/// A user.
pub struct UserNode(pub User);

/// A person. Visible to themself, and to the members of an organization they belong to.
#[Object(name = "User")]
impl UserNode {
    /// The user's global id.
    pub async fn id(&self) -> ID {
        ids::encode("User", self.0.id)
    }
    /// The user's e-mail address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// The user's display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// When the user first signed in.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Users by id, as far as the viewer may see them: themself, and the members of the request's
/// organization when the viewer is a member too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemberId(pub Uuid);

// Memberships change only with an `access` event, which touches every result; a user's name
// changes with no event at all. Who may be seen depends on who the viewer is (a guest sees
// only themself).
impl crate::graphql::loaders::Recorded for MemberId {
    fn record(
        &self,
        _: Option<&<DbLoader as Loader<Self>>::Value>,
        reads: &mut crate::events::Reads,
    ) {
        reads.personal();
    }
}

impl Loader<MemberId> for DbLoader {
    type Value = Arc<User>;
    type Error = LoadError;

    #[tracing::instrument(name = "loader", skip_all, fields(otel.name = "load MemberId", loader.keys = keys.len()))]
    async fn load(&self, keys: &[MemberId]) -> Result<HashMap<MemberId, Arc<User>>, LoadError> {
        let visibility = self.db().visibility();
        let Some(org_id) = self.db().scope().org_id else {
            return Ok(HashMap::new());
        };
        let me = visibility.me;
        let others: Vec<Uuid> = keys
            .iter()
            .map(|k| k.0)
            .filter(|id| visibility.sees_user(*id, true) && *id != me)
            .collect();
        let with_me = keys.iter().any(|k| k.0 == me);
        let rows = self
            .db()
            .run(async |conn| {
                let mut rows = user::find_members(conn, org_id, &others).await?;
                if with_me {
                    rows.extend(user::find_by_id(conn, me).await?);
                }
                Ok(rows)
            })
            .await
            .map_err(Arc::new)?;
        Ok(rows
            .into_iter()
            .map(|u| (MemberId(u.id), Arc::new(u)))
            .collect())
    }
}

/// A member of the organization by id, as the viewer may see them.
pub async fn member(
    ctx: &Context<'_>,
    id: Option<Uuid>,
) -> async_graphql::Result<Option<UserNode>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(crate::graphql::context::load_one(ctx, MemberId(id))
        .await?
        .map(|u| UserNode(u.as_ref().clone())))
}
