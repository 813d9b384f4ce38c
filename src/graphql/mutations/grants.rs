//! Dock grants: `grantDockAccess`, `revokeDockAccess`. Both need docks FULL.
//!
//! A grant gives a team or a client `READ` or `FULL` on one live dock of the organization and
//! so on the resources synced from it (docs/security.md, scope rules).

use async_graphql::{Context, ID, Object};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::validate::not_found;
use super::{Act, audited, org_full, refusal};
use crate::auth::permissions::Area;
use crate::db::models::access::{self, Grantee};
use crate::db::models::directory;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::enums::AccessLevel;
use crate::graphql::ids;

#[derive(Default)]
pub struct GrantMutations;

#[Object]
impl GrantMutations {
    /// Grants a team or a client (exactly one) `READ` or `FULL` on a dock, replacing any level
    /// it had; `NONE` is refused (`BAD_USER_INPUT`: use `revokeDockAccess`). True once
    /// granted; `NOT_FOUND` for an unknown or deleted dock, team or client. Needs docks FULL.
    async fn grant_dock_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dock's id (a live dock of the organization).")] dock_id: ID,
        #[graphql(desc = "The team to grant to; give this or `clientId`, not both.")]
        team_id: Option<ID>,
        #[graphql(desc = "The client to grant to; give this or `teamId`, not both.")]
        client_id: Option<ID>,
        #[graphql(desc = "`READ` or `FULL` on the dock and the resources synced from it.")]
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

    /// Takes a team's or a client's (exactly one) grant on a dock away; true when it had one,
    /// false when it had none. `NOT_FOUND` for an unknown or deleted dock, team or client.
    /// Needs docks FULL.
    async fn revoke_dock_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The dock's id.")] dock_id: ID,
        #[graphql(desc = "The team whose grant goes; give this or `clientId`, not both.")]
        team_id: Option<ID>,
        #[graphql(desc = "The client whose grant goes; give this or `teamId`, not both.")]
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
}

fn dock_act(action: &str, dock: Uuid) -> Act<'_> {
    Act {
        area: Area::Docks,
        action,
        target_type: "Dock",
        target_id: Some(dock),
    }
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
