//! `stackgate seed`: the data set's shape, and that seeding twice changes nothing.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::harness::TestDb;

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Per-org and per-project shape checks: every line is a (key, count) that must be the same for
/// each organization or project.
async fn shape(conn: &mut AsyncPgConnection) -> Vec<Row> {
    diesel::sql_query(
        "with o as (select id, slug from organizations where slug ~ '^org-[0-9]$')
         select key, count(*) as n from (
           select 'orgs' as key from o
           union all
           select 'projects per org: ' || (select count(*) from projects where org_id = o.id) from o
           union all
           select 'resources per org: ' || (select count(*) from servers where org_id = o.id)
                   || '/' || (select count(*) from web_services where org_id = o.id)
                   || '/' || (select count(*) from domains where org_id = o.id)
                   || '/' || (select count(*) from databases where org_id = o.id) from o
           union all
           select 'docks per org: '
                   || (select string_agg(provider, ',' order by provider) from docks where org_id = o.id)
             from o
           union all
           select 'teams per org: '
                   || (select string_agg(slug, ',' order by slug) from teams where org_id = o.id)
             from o
           union all
           select 'links per project: ' || count(*) || ', ' || count(distinct resource_id)
                   || ' distinct, ' || count(distinct resource_kind) || ' kinds'
             from project_resources pr join o on o.id = pr.org_id group by project_id
           union all
           select 'sync runs per dock: ' || count(*)
             from sync_runs s join o on o.id = s.org_id group by dock_id
           union all
           select 'member ' || u.external_id || ' -> ' || r.name
             from memberships m join o on o.id = m.org_id
             join users u on u.id = m.user_id join roles r on r.id = m.role_id
           union all
           select 'client member ' || u.external_id || ' -> ' || c.name || ' as ' || r.name
             from client_memberships cm join o on o.id = cm.org_id
             join users u on u.id = cm.user_id join clients c on c.id = cm.client_id
             join roles r on r.id = cm.role_id
           union all
           select 'link with a stale denormalized copy'
             from project_resources pr join o on o.id = pr.org_id
             left join servers s on s.id = pr.server_id
             left join web_services w on w.id = pr.web_service_id
             left join domains d on d.id = pr.domain_id
             left join databases b on b.id = pr.database_id
            where (pr.denormalized_name, pr.denormalized_status, pr.denormalized_health)
                  is distinct from
                  (coalesce(s.name, w.name, d.name, b.name),
                   coalesce(s.status, w.status, d.status, b.status),
                   coalesce(s.health_state, w.health_state, d.health_state, b.health_state))
         ) keys
         group by key
         order by key",
    )
    .load(conn)
    .await
    .expect("shape query")
}

#[derive(QueryableByName)]
struct Stamp {
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

async fn sample_updated_at(conn: &mut AsyncPgConnection) -> Vec<DateTime<Utc>> {
    let mut stamps = Vec::new();
    for sql in [
        "select updated_at from organizations where slug = 'org-3'",
        "select updated_at from servers where provider_resource_id = 'server-017' \
           and org_id = (select id from organizations where slug = 'org-3')",
        "select updated_at from project_resources order by id limit 1",
        "select updated_at from docks order by id limit 1",
    ] {
        let stamp: Stamp = diesel::sql_query(sql)
            .get_result(conn)
            .await
            .expect("sample row");
        stamps.push(stamp.updated_at);
    }
    stamps
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The seeded tables without planner statistics: `reltuples` stays -1 until an ANALYZE (or a
/// VACUUM) has looked at the table.
async fn unanalyzed(conn: &mut AsyncPgConnection) -> Vec<String> {
    let names: Vec<Name> = diesel::sql_query(
        "select c.relname::text as name from pg_class c
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = current_schema() and c.reltuples < 0
            and c.relname in ('organizations', 'users', 'memberships', 'teams', 'projects',
                              'servers', 'web_services', 'domains', 'databases',
                              'project_resources', 'docks')
          order by 1",
    )
    .load(conn)
    .await
    .expect("statistics query");
    names.into_iter().map(|n| n.name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_writes_the_documented_data_set_once() {
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;

    let first = stackgate::devkit::seed::seed(&mut conn, 1)
        .await
        .expect("seed");
    assert_eq!(first.organizations, 10);
    assert_eq!(first.users, 60, "4 members and 2 client users per org");
    assert_eq!(first.memberships, 40);
    assert_eq!(first.teams, 20);
    assert_eq!(first.clients, 20);
    assert_eq!(first.client_memberships, 20);
    assert_eq!(first.docks, 40);
    assert_eq!(first.sync_runs, 120);
    assert_eq!(first.projects, 100);
    assert_eq!(first.resources, 2000);
    assert_eq!(first.links, 2000);
    assert!(first.inserted > 4000, "{first}");
    assert_eq!(
        unanalyzed(&mut conn).await,
        Vec::<String>::new(),
        "seeded tables the planner has no statistics for"
    );

    let shape_before = shape(&mut conn).await;
    let mut text: Vec<String> = shape_before
        .iter()
        .map(|r| format!("{} x{}", r.key, r.n))
        .collect();
    text.sort();
    let expected = [
        "docks per org: digitalocean,gridpane,linode,vercel x10",
        "links per project: 20, 20 distinct, 4 kinds x100",
        "orgs x10",
        "projects per org: 10 x10",
        "resources per org: 50/50/50/50 x10",
        "sync runs per dock: 3 x40",
        "teams per org: team-0,team-1 x10",
    ];
    let mut wanted: Vec<String> = expected.iter().map(|l| (*l).to_owned()).collect();
    for k in 0..10 {
        for role in stackgate::devkit::seed::ROLES {
            wanted.push(format!("member org-{k}-{role} -> {role} x1"));
        }
        for c in 0..2 {
            wanted.push(format!(
                "client member org-{k}-client-{c} -> Client {c} as viewer x1"
            ));
        }
    }
    wanted.sort();
    assert_eq!(
        text, wanted,
        "no other shape, and no stale denormalized link"
    );

    let stamps_before = sample_updated_at(&mut conn).await;
    let second = stackgate::devkit::seed::seed(&mut conn, 1)
        .await
        .expect("reseed");
    assert_eq!(second.inserted, 0, "{second}");
    assert_eq!(
        stackgate::devkit::seed::Summary {
            inserted: first.inserted,
            ..second
        },
        first
    );
    assert_eq!(shape(&mut conn).await, shape_before);
    assert_eq!(sample_updated_at(&mut conn).await, stamps_before);
}

/// Seeded docks hold placeholder keys for accounts that do not exist: a scheduler over seeded
/// data must claim none of them (each claim would be a failed sync, logged every few seconds).
#[tokio::test(flavor = "multi_thread")]
async fn a_scheduler_claims_no_seeded_dock() {
    let db = TestDb::migrated().await;
    let mut conn = db.owner().await;
    stackgate::devkit::seed::seed(&mut conn, 1)
        .await
        .expect("seed");
    let lease = std::time::Duration::from_secs(60);
    let claimed = stackgate::db::models::sync::claim_due(&mut conn, "seed-test", lease, 100)
        .await
        .expect("claim");
    assert!(claimed.is_empty(), "seeded docks were due: {claimed:?}");
}
