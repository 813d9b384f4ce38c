//! Who belongs to the organization: `removeMember`, and [`find_person`], the one way
//! `addTeamMember` and `addClientMember` find whom they add.
//!
//! `removeMember` needs settings FULL and obeys the role hierarchy ([`super::roles`]): the last
//! owner stays, only owners remove owners, nobody removes a member above their own role.

use async_graphql::{Context, ID, Object};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::roles::{Grantor, keep_an_owner, org_role};
use super::validate::{not_found, valid_email};
use super::{audited, org_full, settings_act};
use crate::auth::permissions::Area;
use crate::db::models::access::{self, PersonRef};
use crate::db::models::api_key;
use crate::db::models::user::User;
use crate::error::ApiError;
use crate::graphql::context::viewer;
use crate::graphql::ids;

/// Whom `addTeamMember` and `addClientMember` add.
pub(super) enum Person {
    Id(Uuid),
    Email(String),
}

#[derive(Default)]
pub struct MemberMutations;

#[Object]
impl MemberMutations {
    /// Removes a person from the organization: their membership, their team and client
    /// memberships there, and their API keys there (revoked). The last owner cannot be removed
    /// (`CONFLICT`); only owners remove owners, and nobody removes a member whose role is above
    /// their own (`FORBIDDEN`, audited as denied). True once removed; `NOT_FOUND` for someone
    /// who is not a member. Needs settings FULL.
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The member's `User` id.")] user_id: ID,
    ) -> async_graphql::Result<bool> {
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
}

/// Exactly one of `userId` and `email`.
pub(super) fn person(user_id: Option<ID>, email: Option<String>) -> Result<Person, ApiError> {
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
pub(super) async fn find_person(
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
