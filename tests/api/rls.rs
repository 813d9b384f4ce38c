//! Row-level security as the server's role: the database enforces tenancy by itself.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use stackgate::db::schema::{audit_logs, project_resources, projects, servers};
use stackgate::db::{DbError, Scope, build_pool};
use uuid::Uuid;

use crate::fixtures::{self, Org};
use crate::harness::TestDb;

/// Two orgs, each with a project, a dock, a server, and the project linked to the server.
async fn two_orgs(conn: &mut AsyncPgConnection) -> (Org, Org, Uuid) {
    let a = fixtures::org(conn, "org-a").await;
    let b = fixtures::org(conn, "org-b").await;
    let user = fixtures::member(conn, &a, "alice", "owner").await;
    for org in [&a, &b] {
        fixtures::project(conn, org, "site").await;
        conn.batch_execute(&format!(
            "insert into docks (org_id, name, provider, encrypted_api_key) values ('{o}', 'do', 'digitalocean', '\\x00');
             insert into servers (org_id, dock_id, provider, provider_resource_id, name, status)
               select '{o}', id, 'digitalocean', 'droplet-1', 'web-1', 'active' from docks where org_id = '{o}';
             insert into project_resources (org_id, project_id, resource_kind, server_id, denormalized_name, denormalized_status)
               select '{o}', p.id, 'server', s.id, 'anything', 'unknown' from projects p, servers s
               where p.org_id = '{o}' and s.org_id = '{o}';",
            o = org.id
        ))
        .await
        .expect("fixtures");
    }
    (a, b, user)
}

#[tokio::test(flavor = "multi_thread")]
async fn another_orgs_rows_are_invisible_and_unwritable() {
    let db = TestDb::migrated().await;
    let (a, b, user) = two_orgs(&mut db.owner().await).await;
    let pool = build_pool(&db.url(), 2).expect("pool");
    let scope = Scope::org(a.id, user);

    let visible: Vec<Uuid> = scope
        .transaction(&pool, async |conn| {
            Ok(projects::table.select(projects::org_id).load(conn).await?)
        })
        .await
        .expect("read");
    assert_eq!(visible, vec![a.id], "only org A's project is visible");
    let servers_seen: i64 = scope
        .transaction(&pool, async |conn| {
            Ok(servers::table.count().get_result(conn).await?)
        })
        .await
        .expect("count");
    assert_eq!(servers_seen, 1);

    let insert_into_b = scope
        .transaction(&pool, async |conn| {
            diesel::insert_into(projects::table)
                .values((
                    projects::org_id.eq(b.id),
                    projects::name.eq("x"),
                    projects::slug.eq("x"),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await;
    let message = format!(
        "{:?}",
        insert_into_b.expect_err("insert into org B is refused")
    );
    assert!(message.contains("row-level security"), "{message}");

    let touched = scope
        .transaction(&pool, async |conn| {
            Ok(
                diesel::update(projects::table.filter(projects::org_id.eq(b.id)))
                    .set(projects::name.eq("hijacked"))
                    .execute(conn)
                    .await?,
            )
        })
        .await
        .expect("update runs");
    assert_eq!(touched, 0, "org B's rows cannot be updated");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_org_nothing_is_visible() {
    let db = TestDb::migrated().await;
    two_orgs(&mut db.owner().await).await;
    let pool = build_pool(&db.url(), 1).expect("pool");
    let seen: i64 = Scope::default()
        .transaction(&pool, async |conn| {
            Ok(servers::table.count().get_result(conn).await?)
        })
        .await
        .expect("count");
    assert_eq!(seen, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_logs_are_append_only_for_the_app() {
    let db = TestDb::migrated().await;
    let (a, _, user) = two_orgs(&mut db.owner().await).await;
    let pool = build_pool(&db.url(), 1).expect("pool");
    let scope = Scope::org(a.id, user);
    scope
        .transaction(&pool, async |conn| {
            diesel::insert_into(audit_logs::table)
                .values((
                    audit_logs::org_id.eq(a.id),
                    audit_logs::action.eq("test"),
                    audit_logs::result.eq("success"),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
        .expect("insert is allowed");
    let update: Result<usize, DbError> = scope
        .transaction(&pool, async |conn| {
            Ok(diesel::update(audit_logs::table)
                .set(audit_logs::action.eq("rewritten"))
                .execute(conn)
                .await?)
        })
        .await;
    assert!(format!("{:?}", update.expect_err("update refused")).contains("permission denied"));
    let delete: Result<usize, DbError> = scope
        .transaction(&pool, async |conn| {
            Ok(diesel::delete(audit_logs::table).execute(conn).await?)
        })
        .await;
    assert!(format!("{:?}", delete.expect_err("delete refused")).contains("permission denied"));
}

#[tokio::test(flavor = "multi_thread")]
async fn links_follow_their_resource() {
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;
    let (a, b, _) = two_orgs(&mut conn).await;
    let name: String = project_resources::table
        .filter(project_resources::org_id.eq(a.id))
        .select(project_resources::denormalized_name)
        .first(&mut conn)
        .await
        .expect("link");
    assert_eq!(
        name, "web-1",
        "the trigger fills the denormalized name, whatever the caller passed"
    );

    diesel::update(servers::table.filter(servers::org_id.eq(a.id)))
        .set((
            servers::name.eq("web-renamed"),
            servers::status.eq("stopped"),
        ))
        .execute(&mut conn)
        .await
        .expect("rename");
    let (name, status): (String, String) = project_resources::table
        .filter(project_resources::org_id.eq(a.id))
        .select((
            project_resources::denormalized_name,
            project_resources::denormalized_status,
        ))
        .first(&mut conn)
        .await
        .expect("link");
    assert_eq!((name.as_str(), status.as_str()), ("web-renamed", "stopped"));

    // The health state follows too (the monitor's write), without touching the link's
    // updated_at; a caller's own value for it is replaced by the resource's.
    let link_state = async |conn: &mut AsyncPgConnection| {
        project_resources::table
            .filter(project_resources::org_id.eq(a.id))
            .select((
                project_resources::denormalized_health,
                project_resources::updated_at,
            ))
            .first::<(String, chrono::DateTime<chrono::Utc>)>(conn)
            .await
            .expect("link")
    };
    let (health, before) = link_state(&mut conn).await;
    assert_eq!(health, "unknown");
    diesel::update(servers::table.filter(servers::org_id.eq(a.id)))
        .set(servers::health_state.eq("degraded"))
        .execute(&mut conn)
        .await
        .expect("health");
    let (health, after) = link_state(&mut conn).await;
    assert_eq!(health, "degraded", "the link carries its resource's health");
    assert_eq!(after, before, "a health change is not a change of the link");
    diesel::update(project_resources::table.filter(project_resources::org_id.eq(a.id)))
        .set(project_resources::denormalized_health.eq("healthy"))
        .execute(&mut conn)
        .await
        .expect("forged write");
    assert_eq!(
        link_state(&mut conn).await.0,
        "degraded",
        "not the caller's"
    );

    let cross_org = conn
        .batch_execute(&format!(
            "insert into project_resources (org_id, project_id, resource_kind, server_id, denormalized_name, denormalized_status)
             select '{a}', p.id, 'server', s.id, 'x', 'unknown' from projects p, servers s
             where p.org_id = '{a}' and s.org_id = '{b}'",
            a = a.id,
            b = b.id
        ))
        .await;
    assert!(cross_org.is_err(), "a link cannot point into another org");

    diesel::delete(servers::table.filter(servers::org_id.eq(a.id)))
        .execute(&mut conn)
        .await
        .expect("delete");
    let links: i64 = project_resources::table
        .filter(project_resources::org_id.eq(a.id))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(links, 0, "deleting a resource removes its links");
}
