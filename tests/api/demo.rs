//! `stackgate demo`'s data path against the test database: fake providers, docks, a sync of each,
//! links to the projects, and a second start that reuses the docks.

use std::sync::Arc;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use stackgate::crypto::Keyring;
use stackgate::devkit::fake::targets::TargetKind;

use crate::harness::TestDb;

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    k: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn rows(conn: &mut AsyncPgConnection, sql: &str) -> Vec<(String, i64)> {
    diesel::sql_query(sql)
        .load::<Row>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| (r.k, r.n))
        .collect()
}

const RESOURCES_BY_KIND: &str = "select k, count(*) as n from ( \
      select 'server' as k, org_id from servers union all select 'web_service', org_id from web_services \
      union all select 'domain', org_id from domains union all select 'database', org_id from databases) r \
    join organizations o on o.id = r.org_id where o.slug = 'acme' group by k order by k";
const LINKS_BY_PROJECT: &str = "select p.slug as k, count(pr.id) as n from projects p \
    join organizations o on o.id = p.org_id and o.slug = 'acme' \
    left join project_resources pr on pr.project_id = p.id group by p.slug order by p.slug";
const DOCKS: &str = "select d.provider || ' ' || d.endpoint || ' ' || d.last_sync_status as k, 1::bigint as n \
    from docks d join organizations o on o.id = d.org_id and o.slug = 'acme' \
    where d.deleted_at is null order by d.provider";

#[tokio::test(flavor = "multi_thread")]
async fn demo_syncs_fake_providers_links_projects_and_reuses_its_docks() {
    let db = TestDb::migrated().await;
    let keyring = Arc::new(Keyring::for_testing());
    let demo = stackgate::devkit::demo::prepare(&db.url(), keyring.clone())
        .await
        .expect("demo prepares");
    assert_eq!(
        demo.docks.len(),
        5,
        "DigitalOcean, Linode, Vercel, GridPane, Cloudflare"
    );
    for run in &demo.runs {
        let run = run.as_ref().expect("the demo's own lease");
        assert!(run.succeeded(), "{:?}", run.error);
        assert!(run.counts.created > 0);
    }

    let conn = &mut db.owner().await;
    let kinds = rows(conn, RESOURCES_BY_KIND).await;
    assert_eq!(
        kinds.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["database", "domain", "server", "web_service"],
        "{kinds:?}"
    );
    assert!(kinds.iter().all(|(_, n)| (2..100).contains(n)), "{kinds:?}");
    let links = rows(conn, LINKS_BY_PROJECT).await;
    assert_eq!(links.len(), 3, "{links:?}");
    assert!(links.iter().all(|(_, n)| *n >= 3), "{links:?}");
    let docks = rows(conn, DOCKS).await;
    let expected: Vec<String> = demo
        .world
        .fakes
        .iter()
        .map(|(fake, handle)| format!("{} {} success", fake.provider(), handle.base_url()))
        .collect();
    let mut got: Vec<String> = docks.into_iter().map(|(k, _)| k).collect();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want);

    // The fake resources point at the demo's probe targets.
    let http: Vec<String> = demo
        .world
        .targets
        .iter()
        .filter(|t| t.kind() == TargetKind::Http)
        .map(|t| t.url())
        .collect();
    let tcp: Vec<String> = demo
        .world
        .targets
        .iter()
        .filter(|t| t.kind() == TargetKind::Tcp)
        .map(|t| t.url())
        .collect();
    let urls = rows(
        conn,
        "select coalesce(production_url, '-') as k, count(*) as n from web_services group by 1",
    )
    .await;
    assert!(
        urls.iter().all(|(u, _)| http.contains(u)) && urls.len() == 2,
        "{urls:?} vs {http:?}"
    );
    let hosts = rows(
        conn,
        "select coalesce(host || ':' || port, '-') as k, count(*) as n from databases group by 1",
    )
    .await;
    assert!(
        hosts.iter().all(|(h, _)| tcp.contains(h)) && hosts.len() == 2,
        "{hosts:?} vs {tcp:?}"
    );
    let reachable = reqwest::get(&http[0]).await.expect("probe target answers");
    assert_eq!(reachable.status().as_u16(), 200);

    // A second start: new fakes on new ports, the same docks pointed at them, no duplicates.
    let first_docks = demo.docks.clone();
    drop(demo);
    let again = stackgate::devkit::demo::prepare(&db.url(), keyring)
        .await
        .expect("demo prepares again");
    assert_eq!(again.docks, first_docks, "the docks are reused");
    for run in &again.runs {
        let run = run.as_ref().expect("lease");
        assert!(run.succeeded(), "{:?}", run.error);
        assert_eq!(run.counts.created, 0);
    }
    let docks = rows(conn, DOCKS).await;
    let mut got: Vec<String> = docks.into_iter().map(|(k, _)| k).collect();
    got.sort();
    let mut want: Vec<String> = again
        .world
        .fakes
        .iter()
        .map(|(fake, handle)| format!("{} {} success", fake.provider(), handle.base_url()))
        .collect();
    want.sort();
    assert_eq!(got, want, "endpoints follow the new fakes");
    assert_eq!(rows(conn, RESOURCES_BY_KIND).await, kinds);
    assert_eq!(rows(conn, LINKS_BY_PROJECT).await, links);
}

/// `<production_url> <health state>` of acme's Vercel web services (DigitalOcean's apps add their
/// provider's own verdict, which the fake sometimes reports as failing).
const WEB_HEALTH: &str = "select w.production_url || ' ' || w.health_state as k, count(*) as n \
    from web_services w join organizations o on o.id = w.org_id and o.slug = 'acme' \
    where w.provider = 'vercel' group by 1 order by 1";

#[tokio::test(flavor = "multi_thread")]
async fn the_demos_services_go_up_and_down_under_the_health_monitor() {
    let db = TestDb::migrated().await;
    let demo = stackgate::devkit::demo::prepare(&db.url(), Arc::new(Keyring::for_testing()))
        .await
        .expect("demo prepares");
    let http: Vec<_> = demo
        .world
        .targets
        .iter()
        .filter(|t| t.kind() == TargetKind::Http)
        .collect();
    assert_eq!(http.len(), 2);
    let pool = stackgate::db::build_pool(&db.url(), 4).expect("pool");
    let mut config = crate::health::config(1, 32);
    config.confirmations = 1;
    // Up or down is what is checked here: a probe slowed by a busy machine must not read as
    // degraded (the shared test config calls 150 ms slow).
    config.probe.timeout = Duration::from_secs(2);
    config.probe.slow = Duration::from_millis(1500);
    let monitor = stackgate::health::Monitor::new(pool, config).expect("monitor");
    let conn = &mut db.owner().await;
    for (first, second) in [(true, false), (false, true)] {
        http[0].set_up(first);
        http[1].set_up(second);
        crate::health::round(&monitor, conn).await;
        let word = |up: bool| if up { "healthy" } else { "unhealthy" };
        let states: Vec<String> = rows(conn, WEB_HEALTH)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut want = vec![
            format!("{} {}", http[0].url(), word(first)),
            format!("{} {}", http[1].url(), word(second)),
        ];
        want.sort();
        assert_eq!(states, want);
    }
}
