//! The `Node` interface and the `node(id:)` / `nodes(ids:)` lookups.
//!
//! What the viewer may not see does not exist for them: foreign and unknown ids both give `null`.

use async_graphql::{Context, ID, Interface};
use uuid::Uuid;

use super::ids;
use super::types::organization::OrganizationNode;
use super::types::user::UserNode;
use crate::auth::Viewer;
use crate::db::Pool;
use crate::db::models::user;
use crate::error::ApiError;

/// Anything with a global id.
#[derive(Interface)]
#[graphql(name = "Node", field(name = "id", ty = "ID"))]
pub enum Node {
    Organization(OrganizationNode),
    User(UserNode),
}

/// Resolves many ids at once, in order, with one query per type.
pub async fn resolve_nodes(
    ctx: &Context<'_>,
    raw_ids: &[ID],
) -> Result<Vec<Option<Node>>, ApiError> {
    let viewer = ctx
        .data::<Viewer>()
        .map_err(|_| ApiError::Unauthenticated("authentication required".into()))?;
    let decoded = raw_ids
        .iter()
        .map(|id| ids::decode(id))
        .collect::<Result<Vec<_>, _>>()?;
    let user_ids: Vec<Uuid> = decoded
        .iter()
        .filter(|(t, _)| t == "User")
        .map(|(_, id)| *id)
        .collect();
    let users = load_users(ctx, viewer, &user_ids).await?;
    Ok(decoded
        .into_iter()
        .map(|(type_name, id)| match type_name.as_str() {
            "Organization" => viewer
                .sees_organization(id)
                .cloned()
                .map(|o| Node::Organization(OrganizationNode(o))),
            "User" => users
                .iter()
                .find(|u| u.id == id)
                .cloned()
                .map(|u| Node::User(UserNode(u))),
            _ => None,
        })
        .collect())
}

async fn load_users(
    ctx: &Context<'_>,
    viewer: &Viewer,
    ids: &[Uuid],
) -> Result<Vec<user::User>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let pool = ctx
        .data::<Pool>()
        .map_err(|_| ApiError::internal(anyhow::anyhow!("no pool in schema data")))?;
    let org_id = viewer.organization.id;
    Ok(viewer
        .scope()
        .transaction(pool, async |conn| {
            user::find_members(conn, org_id, ids).await
        })
        .await?)
}
