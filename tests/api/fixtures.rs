//! Small builders for test data, written as the schema owner.

use diesel_async::AsyncPgConnection;
use stackgate::db::models::{membership, organization, project, user};
use uuid::Uuid;

pub struct Org {
    pub id: Uuid,
}

/// An organization with slug `slug` (built-in roles come with it).
pub async fn org(conn: &mut AsyncPgConnection, slug: &str) -> Org {
    let o = organization::ensure(conn, &format!("Org {slug}"), slug)
        .await
        .expect("org");
    Org { id: o.id }
}

/// A user with external id `external_id`.
pub async fn user(conn: &mut AsyncPgConnection, external_id: &str) -> Uuid {
    user::ensure(
        conn,
        external_id,
        &format!("{external_id}@example.test"),
        external_id,
    )
    .await
    .expect("user")
    .id
}

/// A user who is a member of `org` with built-in role `role`.
pub async fn member(
    conn: &mut AsyncPgConnection,
    org: &Org,
    external_id: &str,
    role: &str,
) -> Uuid {
    let id = user(conn, external_id).await;
    membership::ensure(conn, org.id, id, role)
        .await
        .expect("membership");
    id
}

/// A project in `org`.
pub async fn project(conn: &mut AsyncPgConnection, org: &Org, slug: &str) {
    project::ensure(conn, org.id, &format!("Project {slug}"), slug, "")
        .await
        .expect("project");
}
