//! Clients (the customers a client portal serves): `createClient`, `updateClient`,
//! `deleteClient`, `addClientMember`, `removeClientMember`. All need settings FULL.
//!
//! Client access is read-only whatever the role says; the role may still not exceed the
//! caller's own ([`Grantor`]). Only people who already reach the organization are added;
//! anyone else is invited (`createInvitation`).

use std::sync::Arc;

use async_graphql::{Context, ID, Object};

use super::members::{find_person, person};
use super::roles::{Grantor, org_role};
use super::validate::{MAX_NAME, not_found, optional_id, valid_name};
use super::{audited, org_full, refusal, settings_act};
use crate::auth::permissions::Area;
use crate::db::models::access;
use crate::db::models::directory;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::ids;
use crate::graphql::types::directory::ClientNode;

#[derive(Default)]
pub struct ClientMutations;

#[Object]
impl ClientMutations {
    /// Creates a client and returns it. Needs settings FULL. `CONFLICT` when the organization
    /// has a client of that name; `BAD_USER_INPUT` for a bad name.
    async fn create_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "1–200 characters (trimmed), unique among the organization's clients.")]
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
    /// caller's own role (`FORBIDDEN`, audited). Returns the client. Needs settings FULL.
    /// `NOT_FOUND` for an unknown client or role, `CONFLICT` when the person is in the client
    /// already.
    async fn add_client_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The client's id.")] client_id: ID,
        #[graphql(desc = "The person's `User` id; give this or `email`, not both.")]
        user_id: Option<ID>,
        #[graphql(desc = "The person's e-mail (case-insensitive); give this or `userId`.")]
        email: Option<String>,
        #[graphql(desc = "A `Role` of the organization; null: the built-in `viewer`.")]
        role_id: Option<ID>,
    ) -> async_graphql::Result<ClientNode> {
        let org = viewer(ctx)?.organization.id;
        let client = ids::decode_as(&client_id, "Client")?;
        let role = optional_id(role_id.as_ref(), "Role")?;
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

    /// Renames a client and returns it. Needs settings FULL. `NOT_FOUND` for an unknown client,
    /// `CONFLICT` when the organization has a client of that name, `BAD_USER_INPUT` for a bad
    /// name.
    async fn update_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The client's id.")] id: ID,
        #[graphql(desc = "The new name: 1–200 characters (trimmed), unique among the clients.")]
        name: String,
    ) -> async_graphql::Result<ClientNode> {
        let org = viewer(ctx)?.organization.id;
        let client = ids::decode_as(&id, "Client")?;
        let name = valid_name(&name, MAX_NAME)?;
        let conflict = format!("a client named `{name}` exists");
        let act = settings_act("client.update", "Client", Some(client));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = access::rename_client(conn, org, client, name)
                .await
                .map_err(|e| refusal(e, &conflict, "no such client"))?
                .ok_or_else(|| not_found("client"))?;
            Ok((row, None))
        })
        .await?;
        Ok(ClientNode(Arc::new(row)))
    }

    /// Deletes a client: its portal's members lose what they reached through it (at once, on
    /// every connection), its dock grants and pending invitations go, and its projects stay
    /// without a client. Returns its id. Needs settings FULL. `NOT_FOUND` for an unknown client.
    async fn delete_client(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The client's id.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let org = viewer(ctx)?.organization.id;
        let client = ids::decode_as(&id, "Client")?;
        let act = settings_act("client.delete", "Client", Some(client));
        audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            if !access::delete_client(conn, org, client).await? {
                return Err(not_found("client"));
            }
            Ok(((), None))
        })
        .await?;
        Ok(id)
    }

    /// Takes a person out of a client's portal: they lose what they read through it at once.
    /// Nobody takes away a client role above their own org role, and only owners an owner one
    /// (`FORBIDDEN`, audited). Returns the client. Needs settings FULL. `NOT_FOUND` for an
    /// unknown client or someone who is not in it.
    async fn remove_client_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The client's id.")] client_id: ID,
        #[graphql(desc = "The person's `User` id.")] user_id: ID,
    ) -> async_graphql::Result<ClientNode> {
        let org = viewer(ctx)?.organization.id;
        let client = ids::decode_as(&client_id, "Client")?;
        let user = ids::decode_as(&user_id, "User")?;
        let grantor = Grantor::of(viewer(ctx)?);
        let act = settings_act("client.remove_member", "Client", Some(client));
        let row = audited(ctx, act, org_full(ctx, Area::Settings)?, async |conn| {
            let row = directory::clients_by_ids(conn, &[client])
                .await?
                .into_iter()
                .find(|t| t.org_id == org)
                .ok_or_else(|| not_found("client"))?;
            let role = access::client_member_role(conn, org, client, user)
                .await?
                .ok_or_else(|| not_found("client member"))?;
            grantor.check(conn, org, &role).await?;
            access::remove_client_member(conn, org, client, user).await?;
            Ok((row, None))
        })
        .await?;
        Ok(ClientNode(Arc::new(row)))
    }
}
