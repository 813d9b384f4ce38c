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

/// Every unique key and index of the public schema, as `table: definition`.
const KEYS_AND_INDEXES: &str = "select conrelid::regclass::text || ': ' || pg_get_constraintdef(oid) as name \
       from pg_constraint where connamespace = 'public'::regnamespace \
     union all select tablename::text || ': ' || indexdef from pg_indexes where schemaname = 'public' \
     order by 1";

const CITUS_READY: &str = "/migrations/2026-12-04-000004_citus_ready";

/// The `citus_ready` migration rebuilds six unique keys with `org_id` first and changes nothing
/// else: undone, exactly those keys (and their indexes) lose `org_id`; redone, the schema is
/// what it was (docs/scale-out.md, "What the schema takes now").
#[tokio::test(flavor = "multi_thread")]
async fn the_citus_ready_migration_only_puts_org_id_into_six_unique_keys() {
    use diesel_async::SimpleAsyncConnection;
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;
    let read = |file: &str| {
        std::fs::read_to_string(format!(
            "{}{CITUS_READY}/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect(file)
    };
    let after = names(&mut conn, KEYS_AND_INDEXES).await;
    conn.batch_execute(&read("down.sql")).await.expect("down");
    let before = names(&mut conn, KEYS_AND_INDEXES).await;
    let added: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
    let removed: Vec<&String> = before.iter().filter(|k| !after.contains(k)).collect();
    assert_eq!(added.len(), 12, "six keys and their indexes: {added:#?}");
    let mut without_org: Vec<String> = added
        .iter()
        .map(|k| {
            assert!(k.contains("(org_id, "), "{k}");
            k.replacen("(org_id, ", "(", 1)
        })
        .collect();
    without_org.sort();
    let mut removed: Vec<String> = removed.into_iter().cloned().collect();
    removed.sort();
    assert_eq!(without_org, removed, "the same keys, without org_id");
    conn.batch_execute(&read("up.sql")).await.expect("up");
    assert_eq!(names(&mut conn, KEYS_AND_INDEXES).await, after);
}

/// A table distributed by `org_id` enforces only unique keys that contain it. Every unique key
/// of a tenant table does, but the primary keys on `id` and the keys listed in
/// docs/scale-out.md ("Keys and constraints"), which the move to Citus changes with the code
/// that names them.
#[tokio::test(flavor = "multi_thread")]
async fn unique_keys_of_tenant_tables_contain_org_id_or_are_planned() {
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;
    let without_org_id = names(
        &mut conn,
        "select i.indexrelid::regclass::text as name from pg_index i \
           join pg_class c on c.oid = i.indrelid \
          where i.indisunique and not i.indisprimary \
            and c.relnamespace = 'public'::regnamespace \
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'org_id') \
            and not exists (select 1 from pg_attribute a where a.attrelid = c.oid \
                            and a.attname = 'org_id' and a.attnum = any(i.indkey::int2[])) \
          order by 1",
    )
    .await;
    assert_eq!(
        without_org_id,
        [
            "api_keys_prefix_key",
            "databases_dock_id_provider_resource_id_key",
            "domains_dock_id_provider_resource_id_key",
            "notification_deliveries_channel_alert_event_key",
            "project_resources_project_id_resource_id_key",
            "servers_dock_id_provider_resource_id_key",
            "web_services_dock_id_provider_resource_id_key",
        ],
        "a new unique key of a tenant table names org_id (docs/scale-out.md)"
    );
}
