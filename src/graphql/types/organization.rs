//! `Organization`: a tenant.

use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

use crate::db::models::organization::Organization;
use crate::graphql::ids;

/// An organization the viewer belongs to.
pub struct OrganizationNode(pub Organization);

#[Object(name = "Organization")]
impl OrganizationNode {
    pub async fn id(&self) -> ID {
        ids::encode("Organization", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
