//! `User`: a person; visible to members of an organization they belong to.

use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

use crate::db::models::user::User;
use crate::graphql::ids;

/// A user.
pub struct UserNode(pub User);

#[Object(name = "User")]
impl UserNode {
    pub async fn id(&self) -> ID {
        ids::encode("User", self.0.id)
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
