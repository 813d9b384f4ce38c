//! Migrations: up, down, up; and structural guarantees of the schema they build.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use stackgate::db::{revert_all_migrations, run_migrations};

use crate::harness::TestDb;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn names(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Name>(conn)
        .await
        .expect(sql)
        .into_iter()
        .map(|r| r.name)
        .collect()
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .expect(sql)
        .n
}

const TABLES: &str = "select tablename::text as name from pg_tables where schemaname = 'public' \
                      and tablename <> '__diesel_schema_migrations' order by 1";

#[tokio::test(flavor = "multi_thread")]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDb::empty().await;
    let total = stackgate::db::migration_versions().len();
    assert!(total >= 7, "{total} migrations embedded");
    assert_eq!(run_migrations(&db.url()).await.expect("up").len(), total);
    let mut conn = db.owner().await;
    let tables = names(&mut conn, TABLES).await;
    for table in [
        "organizations",
        "users",
        "docks",
        "servers",
        "project_resources",
        "audit_logs",
        "api_keys",
    ] {
        assert!(
            tables.contains(&table.to_owned()),
            "{table} missing from {tables:?}"
        );
    }
    assert_eq!(
        revert_all_migrations(&db.url()).await.expect("down").len(),
        total
    );
    assert!(
        names(&mut conn, TABLES).await.is_empty(),
        "down left tables behind"
    );
    let leftovers = "select proname::text as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
                     where n.nspname = 'public'";
    assert!(
        names(&mut conn, leftovers).await.is_empty(),
        "down left functions behind"
    );
    assert_eq!(
        run_migrations(&db.url()).await.expect("up again").len(),
        total
    );
    assert_eq!(names(&mut conn, TABLES).await, tables);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tenant_table_forces_row_level_security() {
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;
    let tenant_tables = names(
        &mut conn,
        "select c.relname::text as name from pg_class c join pg_attribute a on a.attrelid = c.oid \
         where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace and a.attname = 'org_id' order by 1",
    )
    .await;
    assert!(tenant_tables.len() >= 20, "{tenant_tables:?}");
    let unprotected = names(
        &mut conn,
        "select c.relname::text as name from pg_class c join pg_attribute a on a.attrelid = c.oid \
         where c.relkind = 'r' and c.relnamespace = 'public'::regnamespace and a.attname = 'org_id' \
         and not (c.relrowsecurity and c.relforcerowsecurity and exists \
                  (select 1 from pg_policy p where p.polrelid = c.oid))",
    )
    .await;
    assert!(
        unprotected.is_empty(),
        "tenant tables without forced RLS: {unprotected:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_role_owns_nothing_and_cannot_bypass_rls() {
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;
    let role = "select count(*) as n from pg_roles where rolname = 'stackgate_app' \
                and not rolbypassrls and not rolsuper and not rolcanlogin";
    assert_eq!(count(&mut conn, role).await, 1);
    let owned = "select count(*) as n from pg_class where relowner = 'stackgate_app'::regrole";
    assert_eq!(count(&mut conn, owned).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_foreign_key_has_an_index() {
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;
    let unindexed = names(
        &mut conn,
        "select c.conrelid::regclass::text || '(' || c.conname || ')' as name from pg_constraint c \
         where c.contype = 'f' and c.connamespace = 'public'::regnamespace and not exists ( \
           select 1 from pg_index i where i.indrelid = c.conrelid \
           and (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1] @> c.conkey \
           and c.conkey @> (i.indkey::int2[])[0:array_length(c.conkey, 1) - 1])",
    )
    .await;
    assert!(
        unindexed.is_empty(),
        "foreign keys without an index: {unindexed:?}"
    );
}
