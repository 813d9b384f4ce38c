//! `stackgate demo`'s data: the `acme` organization, its owner and a few projects.

use diesel_async::AsyncPgConnection;

use crate::db::models::{membership, organization, project, user};
use crate::db::{DbError, Scope};

/// The demo owner's identity-provider subject (the printed token's `sub`).
pub const OWNER_EXTERNAL_ID: &str = "acme-owner";
/// The demo organization's slug.
pub const ORG_SLUG: &str = "acme";

const PROJECTS: [(&str, &str, &str); 3] = [
    (
        "Marketing website",
        "website",
        "The public site and its CDN",
    ),
    (
        "Mobile API",
        "mobile-api",
        "Backend for the iOS and Android apps",
    ),
    (
        "Data platform",
        "data-platform",
        "Warehouse, pipelines and dashboards",
    ),
];

/// Seeds the demo data; running it again changes nothing.
pub async fn seed(conn: &mut AsyncPgConnection) -> Result<(), DbError> {
    let org = organization::ensure(conn, "Acme Inc", ORG_SLUG).await?;
    let owner = user::ensure(conn, OWNER_EXTERNAL_ID, "owner@acme.example", "Ada Owner").await?;
    Scope::org(org.id, owner.id)
        .transaction_on(conn, async |conn| {
            membership::ensure(conn, org.id, owner.id, "owner").await?;
            for (name, slug, description) in PROJECTS {
                project::ensure(conn, org.id, name, slug, description).await?;
            }
            Ok(())
        })
        .await
}
