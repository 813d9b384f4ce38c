//! The sync engine against fake providers on 127.0.0.1 and a real PostgreSQL: adapters,
//! faults, idempotence, the deletion sweep, links, leases, events, credentials.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use secrecy::SecretString;
use stackgate::crypto::Keyring;
use stackgate::db::models::credentials::{self, NewDock};
use stackgate::db::{Pool, build_pool};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Fault, FaultAction, SECRET_MARKER, Script};
use stackgate::events::{Phase, SyncEvent};
use stackgate::sync::engine::{Engine, EngineConfig, RunReport, RunRequest};
use stackgate::sync::scheduler::{Scheduler, SchedulerConfig, SyncNow};
use stackgate::sync::{HttpPolicy, Kind, Registry};
use uuid::Uuid;

use crate::fixtures::{self, count};
use crate::harness::TestDb;
use crate::harness::wait::{PATIENCE, wait_until};

pub(crate) const KEY: &str = "dop_v1_0123456789abcdef0123456789abcdef";

pub(crate) struct Env {
    pub(crate) db: TestDb,
    pool: Pool,
    pub(crate) org: Uuid,
    keyring: Arc<Keyring>,
}

impl Env {
    pub(crate) async fn new() -> Self {
        captured_logs();
        let db = TestDb::migrated().await;
        let org = fixtures::org(&mut db.owner().await, "acme").await.id;
        let pool = build_pool(&db.url(), 8).expect("pool");
        Self {
            db,
            pool,
            org,
            keyring: Arc::new(Keyring::for_testing()),
        }
    }

    fn engine(&self) -> Engine {
        self.engine_with(self.keyring.clone())
    }

    fn engine_with(&self, keyring: Arc<Keyring>) -> Engine {
        Engine::new(self.pool.clone(), keyring, Registry::default(), fast())
    }

    pub(crate) async fn dock(&self, org: Uuid, fake: FakeKind, endpoint: &str, key: &str) -> Uuid {
        let name = format!("{}-{}", fake.provider(), Uuid::new_v4().simple());
        let key = SecretString::from(key.to_owned());
        let dock = NewDock {
            org_id: org,
            name: &name,
            provider: fake.provider(),
            api_key: &key,
            endpoint: Some(endpoint),
            sync_interval_seconds: 3600,
        };
        credentials::create_dock(&mut self.db.owner().await, &self.keyring, &dock)
            .await
            .expect("dock")
    }

    pub(crate) async fn run(&self, dock: Uuid) -> RunReport {
        self.engine()
            .run(&RunRequest::new(self.org, dock))
            .await
            .expect("run")
    }
}

/// Short timeouts and waits, so every fault test stays around a second.
fn fast() -> EngineConfig {
    EngineConfig {
        http: HttpPolicy {
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_millis(400),
            max_attempts: 3,
            retry_budget: Duration::from_secs(2),
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
            jitter: Duration::from_millis(20),
            max_pages: 1_000,
        },
        // The fakes listen on 127.0.0.1.
        allow_private_endpoints: true,
        ..EngineConfig::default()
    }
}

#[derive(QueryableByName)]
struct T {
    #[diesel(sql_type = Nullable<Text>)]
    t: Option<String>,
}

pub(crate) async fn text(conn: &mut AsyncPgConnection, sql: &str, dock: Uuid) -> Option<String> {
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(dock)
        .get_result::<T>(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .t
}

/// Checks the `provider_status → status` mapping of each table's rows for the dock.
pub(crate) async fn assert_mappings(
    conn: &mut AsyncPgConnection,
    dock: Uuid,
    expected: &[(&str, &[(&str, &str)])],
) {
    for (table, pairs) in expected {
        assert_eq!(mapping(conn, table, dock).await, map(pairs), "{table}");
    }
}

/// `provider_status → status` of every row of `table` for the dock.
async fn mapping(
    conn: &mut AsyncPgConnection,
    table: &str,
    dock: Uuid,
) -> BTreeMap<String, String> {
    let sql = format!(
        "select string_agg(distinct coalesce(provider_status, '-') || '=' || status, ',') as t \
         from {table} where dock_id = $1"
    );
    text(conn, &sql, dock)
        .await
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Every resource and link row, as one digest: equal means nothing changed at all.
pub(crate) async fn snapshot(conn: &mut AsyncPgConnection) -> String {
    let sql = "select md5(coalesce(string_agg(x, '|' order by x), '')) as t from ( \
        select row(s.*)::text as x from servers s union all select row(w.*)::text from web_services w \
        union all select row(d.*)::text from domains d union all select row(b.*)::text from databases b \
        union all select row(p.*)::text from project_resources p) r where $1::uuid is not null";
    text(conn, sql, Uuid::nil()).await.expect("digest")
}

pub(crate) async fn secrets_stored(conn: &mut AsyncPgConnection, dock: Uuid) -> i64 {
    let sql = format!(
        "select count(*) as n from (select full_api_data from servers where dock_id = $1 \
         union all select full_api_data from web_services where dock_id = $1 \
         union all select full_api_data from domains where dock_id = $1 \
         union all select full_api_data from databases where dock_id = $1) r \
         where full_api_data::text like '%{SECRET_MARKER}%'"
    );
    count(conn, &sql, dock).await
}

#[tokio::test(flavor = "multi_thread")]
async fn digitalocean_lists_every_page_maps_statuses_and_strips_secrets() {
    let env = Env::new().await;
    let script = Script::new(KEY)
        .servers(1_050)
        .web_services(8)
        .domains(5)
        .databases(4);
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    let _relay = crate::harness::relay(&env.db).await;
    let mut listener = env.db.owner().await;
    listener
        .batch_execute("LISTEN stackgate_events")
        .await
        .expect("listen");

    let started = Instant::now();
    let report = env.run(dock).await;
    eprintln!(
        "digitalocean: 1,067 resources in {:?} (fetch {:?}, apply {:?})",
        started.elapsed(),
        report.fetch_time,
        report.apply_time
    );
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.created, report.counts.updated), (1_067, 0));
    assert_eq!(
        report.counts.pages,
        6 + 1 + 1 + 1,
        "1,050 droplets are 6 pages of 200"
    );
    assert_eq!(report.counts.requests, report.counts.pages);

    let conn = &mut env.db.owner().await;
    assert_eq!(
        count(
            conn,
            "select count(*) as n from servers where dock_id = $1",
            dock
        )
        .await,
        1_050
    );
    assert_mappings(
        conn,
        dock,
        &[
            (
                "servers",
                &[
                    ("active", "active"),
                    ("new", "provisioning"),
                    ("off", "stopped"),
                    ("archive", "stopped"),
                ],
            ),
            (
                "web_services",
                &[
                    ("ACTIVE", "active"),
                    ("DEPLOYING", "provisioning"),
                    ("ERROR", "error"),
                    ("CANCELED", "stopped"),
                ],
            ),
            (
                "databases",
                &[
                    ("online", "active"),
                    ("creating", "provisioning"),
                    ("offline", "stopped"),
                    ("resizing", "provisioning"),
                ],
            ),
        ],
    )
    .await;
    assert_eq!(
        secrets_stored(conn, dock).await,
        0,
        "no password or URI is stored"
    );
    let ip = text(
        conn,
        "select primary_ip_address as t from servers where dock_id = $1 and name = 'server-00000'",
        dock,
    )
    .await;
    assert_eq!(ip.as_deref(), Some("127.1.0.1"));
    let host = text(
        conn,
        "select host || ':' || port as t from databases where dock_id = $1 and name = 'db-00000'",
        dock,
    )
    .await;
    assert_eq!(
        host.as_deref(),
        Some("db-0.db.ondigitalocean.localhost:25060")
    );
    let run = text(
        conn,
        "select status || ' ' || created || ' ' || pages as t from sync_runs where dock_id = $1",
        dock,
    )
    .await;
    assert_eq!(run.as_deref(), Some("success 1067 9"));

    let phases = phases(&mut listener, Phase::Succeeded).await;
    assert_eq!(<[Phase]>::first(&phases), Some(&Phase::Started));
    assert!(
        phases.contains(&Phase::Page) && phases.contains(&Phase::Applied),
        "{phases:?}"
    );
}

/// The phases received on the events channel, up to `last`.
async fn phases(listener: &mut AsyncPgConnection, last: Phase) -> Vec<Phase> {
    let mut stream = std::pin::pin!(listener.notifications_stream());
    let mut seen = Vec::new();
    while let Ok(Some(Ok(n))) = tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
        let event = SyncEvent::parse(&n.payload).expect("sync event");
        assert!(n.payload.len() < 8000);
        seen.push(event.phase);
        if event.phase == last {
            break;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn linode_pages_by_page_size_and_maps_statuses() {
    let env = Env::new().await;
    let script = Script::new(KEY)
        .servers(120)
        .domains(30)
        .databases(8)
        .page_size(25);
    let (url, _fake) = FakeProvider::start(FakeKind::Linode, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::Linode, &url, KEY).await;
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(report.counts.created, 158);
    assert_eq!(report.counts.pages, 5 + 2 + 1);
    let conn = &mut env.db.owner().await;
    assert_mappings(
        conn,
        dock,
        &[
            (
                "servers",
                &[
                    ("running", "active"),
                    ("provisioning", "provisioning"),
                    ("offline", "stopped"),
                    ("deleting", "deleted"),
                    ("booting", "provisioning"),
                ],
            ),
            (
                "domains",
                &[
                    ("active", "active"),
                    ("disabled", "stopped"),
                    ("has_errors", "error"),
                    ("edit_mode", "provisioning"),
                ],
            ),
            (
                "databases",
                &[
                    ("active", "active"),
                    ("provisioning", "provisioning"),
                    ("suspended", "stopped"),
                    ("failed", "error"),
                ],
            ),
        ],
    )
    .await;
    assert_eq!(secrets_stored(conn, dock).await, 0);
    let disk = count(
        conn,
        "select disk_gb::bigint as n from servers where dock_id = $1 limit 1",
        dock,
    )
    .await;
    assert_eq!(disk, 50);
}

#[tokio::test(flavor = "multi_thread")]
async fn vercel_follows_until_cursors_and_drops_env_values() {
    let env = Env::new().await;
    let script = Script::new(KEY).web_services(250).domains(7);
    let (url, _fake) = FakeProvider::start(FakeKind::Vercel, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::Vercel, &url, KEY).await;
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.created, report.counts.pages), (257, 3 + 1));
    let conn = &mut env.db.owner().await;
    assert_mappings(
        conn,
        dock,
        &[
            (
                "web_services",
                &[
                    ("READY", "active"),
                    ("BUILDING", "provisioning"),
                    ("ERROR", "error"),
                    ("CANCELED", "stopped"),
                ],
            ),
            (
                "domains",
                &[("verified", "active"), ("unverified", "provisioning")],
            ),
        ],
    )
    .await;
    assert_eq!(
        secrets_stored(conn, dock).await,
        0,
        "project env values are not stored"
    );
    let url = text(
        conn,
        "select production_url as t from web_services where dock_id = $1 and name = 'app-00000'",
        dock,
    )
    .await;
    assert_eq!(url.as_deref(), Some("https://app-00000.vercel.localhost"));
    let renewing = count(conn, "select count(*) as n from domains where dock_id = $1 and auto_renew and expires_at is not null", dock).await;
    assert_eq!(renewing, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn short_rate_limits_and_passing_5xx_are_waited_out() {
    let env = Env::new().await;
    let script = Script::new(KEY)
        .servers(450)
        .fault(
            Fault::on_page(
                Kind::Server,
                2,
                FaultAction::TooManyRequests(Duration::from_millis(300)),
            )
            .times(1),
        )
        .fault(Fault::on_page(Kind::Server, 3, FaultAction::ServerError(503)).times(2));
    let (url, fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    let started = Instant::now();
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "retry-after was honoured"
    );
    assert_eq!(report.counts.created, 450);
    assert_eq!(
        report.counts.requests,
        report.counts.pages + 3,
        "one 429 and two 503 retried"
    );
    assert_eq!(fake.requests() as i64, report.counts.requests);
    let conn = &mut env.db.owner().await;
    let remaining = count(
        conn,
        "select rate_limit_remaining::bigint as n from docks where id = $1",
        dock,
    )
    .await;
    assert_eq!(
        remaining,
        5_000 - report.counts.requests,
        "rate-limit state is kept on the dock"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_runs_apply_nothing_record_the_error_and_back_off() {
    let env = Env::new().await;
    let script = Script::new(KEY).servers(1_050).databases(3);
    let (url, fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    assert!(env.run(dock).await.succeeded());
    let conn = &mut env.db.owner().await;
    let before = snapshot(conn).await;
    // A successful run now would rename one server and delete another.
    fake.rename(Kind::Server, 0, "renamed");
    fake.remove(Kind::Server, 1_000);

    let slow = FaultAction::Slow(Duration::from_secs(2));
    let cases: Vec<(&str, Vec<Fault>, &str)> = vec![
        (
            "429 beyond the budget",
            vec![Fault::on_page(
                Kind::Server,
                2,
                FaultAction::TooManyRequests(Duration::from_secs(30)),
            )],
            "rate limited",
        ),
        (
            "5xx past the retries",
            vec![Fault::on_page(
                Kind::Server,
                2,
                FaultAction::ServerError(502),
            )],
            "HTTP 502 after 3",
        ),
        (
            "timeouts",
            vec![Fault::on_page(Kind::Server, 1, slow)],
            "timed out after 3",
        ),
        (
            "malformed JSON",
            vec![Fault::on_page(Kind::Server, 2, FaultAction::MalformedJson)],
            "malformed",
        ),
        (
            "401",
            vec![Fault::always(FaultAction::Unauthorized)],
            // A caller-chosen endpoint's own words are never quoted.
            "credentials refused (HTTP 401)",
        ),
        (
            "page 3 of the listing",
            vec![Fault::on_page(
                Kind::Server,
                3,
                FaultAction::ServerError(500),
            )],
            "page=3",
        ),
        (
            "the last listing",
            vec![Fault::on_page(
                Kind::Database,
                1,
                FaultAction::MalformedJson,
            )],
            "/v2/databases",
        ),
    ];
    for (name, faults, expected) in cases {
        fake.set_faults(faults);
        let report = env.run(dock).await;
        let error = report
            .error
            .clone()
            .unwrap_or_else(|| panic!("{name}: the run should fail"));
        assert!(error.contains(expected), "{name}: {error}");
        assert!(!error.contains(KEY), "{name}: {error}");
        assert!(!error.contains("Unable to authenticate"), "{name}: {error}");
        assert_eq!(
            snapshot(conn).await,
            before,
            "{name}: previous data untouched"
        );
        let state = text(
            conn,
            "select last_sync_status || ' ' || (backoff_until > now())::text || ' ' || \
                                 coalesce(last_sync_error, '-') as t from docks where id = $1",
            dock,
        )
        .await;
        assert_eq!(state, Some(format!("error true {error}")), "{name}");
        let run = text(
            conn,
            "select status || ' ' || error as t from sync_runs where id = $1",
            report.run_id,
        )
        .await;
        assert_eq!(run, Some(format!("error {error}")), "{name}");
    }
    let long = count(conn, "select (backoff_until > now() + interval '3500 seconds')::int::bigint as n from docks where id = $1", dock).await;
    assert_eq!(
        long, 1,
        "seven failures in a row back off to the cap (an hour)"
    );

    // A first failure backs off a minute, or as long as the provider's retry-after says.
    let fresh = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    fake.set_faults(vec![Fault::on_page(
        Kind::Server,
        2,
        FaultAction::TooManyRequests(Duration::from_secs(600)),
    )]);
    assert!(!env.run(fresh).await.succeeded());
    let honoured = count(conn, "select (backoff_until between now() + interval '590 seconds' and now() + interval '700 seconds')::int::bigint as n \
                                from docks where id = $1", fresh).await;
    assert_eq!(honoured, 1, "the back-off honours retry-after");

    fake.set_faults(Vec::new());
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.updated, report.counts.deleted), (1, 1));
    let cleared = text(conn, "select last_sync_status || coalesce(last_sync_error, '') || coalesce(backoff_until::text, '') as t \
                              from docks where id = $1", dock).await;
    assert_eq!(cleared.as_deref(), Some("success"));
}

#[tokio::test(flavor = "multi_thread")]
async fn resync_of_identical_data_writes_no_row() {
    let env = Env::new().await;
    let script = Script::new(KEY)
        .servers(300)
        .web_services(10)
        .domains(10)
        .databases(10);
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    assert!(env.run(dock).await.succeeded());
    let conn = &mut env.db.owner().await;
    let versions = "select string_agg(id::text || xmin::text || updated_at::text, ',' order by id) as t \
                    from (select id, xmin, updated_at from servers where dock_id = $1 union all \
                          select id, xmin, updated_at from databases where dock_id = $1) r";
    let before = text(conn, versions, dock).await;
    let report = env.run(dock).await;
    assert!(report.succeeded());
    let c = report.counts;
    assert_eq!(
        (c.created, c.updated, c.deleted, c.unchanged),
        (0, 0, 0, 330)
    );
    assert_eq!(
        text(conn, versions, dock).await,
        before,
        "no row was rewritten"
    );
    let run = text(
        conn,
        "select updated || '/' || unchanged as t from sync_runs where id = $1",
        report.run_id,
    )
    .await;
    assert_eq!(run.as_deref(), Some("0/330"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_marks_vanished_resources_deleted_and_links_follow() {
    let env = Env::new().await;
    let script = Script::new(KEY).servers(20).domains(3);
    let (url, fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    assert!(env.run(dock).await.succeeded());
    let conn = &mut env.db.owner().await;
    fixtures::project(conn, &fixtures::Org { id: env.org }, "web").await;
    let link = "insert into project_resources (org_id, project_id, resource_kind, server_id, \
                  denormalized_name, denormalized_status) \
                select s.org_id, p.id, 'server', s.id, '', 'unknown' from servers s, projects p \
                 where s.dock_id = $1 and s.name in ('server-00000', 'server-00004') and p.slug = 'web'";
    diesel::sql_query(link)
        .bind::<SqlUuid, _>(dock)
        .execute(conn)
        .await
        .expect("links");

    fake.rename(Kind::Server, 0, "renamed");
    fake.remove(Kind::Server, 4);
    fake.remove(Kind::Domain, 0);
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.updated, report.counts.deleted), (1, 2));
    let links = "select string_agg(denormalized_name || '=' || denormalized_status, ',' order by denormalized_name) as t \
                 from project_resources pr join servers s on s.id = pr.server_id where s.dock_id = $1";
    assert_eq!(
        text(conn, links, dock).await.as_deref(),
        Some("renamed=active,server-00004=deleted")
    );
    let deleted = count(
        conn,
        "select count(*) as n from domains where dock_id = $1 and status = 'deleted'",
        dock,
    )
    .await;
    assert_eq!(deleted, 1);

    // Deleted rows stay deleted on the next sync: nothing is written.
    let again = env.run(dock).await;
    assert_eq!((again.counts.updated, again.counts.deleted), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_never_touches_tags_people_set() {
    let env = Env::new().await;
    let script = Script::new(KEY).servers(5);
    let (url, fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    assert!(env.run(dock).await.succeeded());
    let conn = &mut env.db.owner().await;
    diesel::sql_query("update servers set tags = '{env:prod,keep}' where dock_id = $1")
        .bind::<SqlUuid, _>(dock)
        .execute(conn)
        .await
        .expect("tags");
    fake.rename(Kind::Server, 0, "renamed");
    fake.set_status(Kind::Server, 1, "off");
    fake.remove(Kind::Server, 2);
    let report = env.run(dock).await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!((report.counts.updated, report.counts.deleted), (2, 1));
    let tags = "select string_agg(name || '=' || array_to_string(tags, '+'), ',' order by name) as t \
                from servers where dock_id = $1";
    let all = text(conn, tags, dock).await.expect("rows");
    assert_eq!(all.matches("=env:prod+keep").count(), 5, "{all}");
    assert!(all.contains("renamed=env:prod+keep"), "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_schedulers_never_sync_the_same_dock_at_once() {
    let env = Env::new().await;
    let other = fixtures::org(&mut env.db.owner().await, "globex").await.id;
    let script = Script::new(KEY)
        .servers(30)
        .fault(Fault::always(FaultAction::Slow(Duration::from_millis(60))));
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let mut docks = Vec::new();
    for i in 0..12 {
        let org = if i % 2 == 0 { env.org } else { other };
        docks.push(env.dock(org, FakeKind::DigitalOcean, &url, KEY).await);
    }
    let scheduler = |owner: &str| {
        let config = SchedulerConfig {
            owner: owner.to_owned(),
            lease_ttl: Duration::from_secs(30),
            max_concurrent: 3,
            ..SchedulerConfig::default()
        };
        Scheduler::new(env.engine(), config)
    };
    let (a, b) = (scheduler("replica-a"), scheduler("replica-b"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let conn = &mut env.db.owner().await;
    let synced =
        "select count(*) as n from docks where last_sync_at is not null and $1::uuid is not null";
    while count(conn, synced, Uuid::nil()).await < 12 {
        assert!(Instant::now() < deadline, "every dock syncs");
        let (ta, tb) = tokio::join!(a.tick(), b.tick());
        let runs: Vec<_> = ta
            .expect("tick a")
            .into_iter()
            .chain(tb.expect("tick b"))
            .collect();
        for run in runs {
            assert!(run.await.expect("task").expect("run").succeeded());
        }
    }
    let per_dock = "select count(*) as n from (select dock_id from sync_runs group by dock_id \
                    having count(*) <> 1) r where $1::uuid is not null";
    assert_eq!(
        count(conn, per_dock, Uuid::nil()).await,
        0,
        "each dock synced exactly once"
    );
    let overlapping = "select count(*) as n from sync_runs a join sync_runs b on a.dock_id = b.dock_id \
                         and a.id < b.id and tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at) \
                       where $1::uuid is not null";
    assert_eq!(count(conn, overlapping, Uuid::nil()).await, 0);
    let leased =
        "select count(*) as n from docks where lease_owner is not null and $1::uuid is not null";
    assert_eq!(
        count(conn, leased, Uuid::nil()).await,
        0,
        "leases are released"
    );
    // Nothing is due any more.
    assert!(a.tick().await.expect("tick").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_lease_is_reclaimed() {
    let env = Env::new().await;
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, Script::new(KEY).servers(5))
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    let conn = &mut env.db.owner().await;
    let dead = "update docks set lease_owner = 'dead-replica', lease_expires_at = now() + interval '1 hour' where id = $1; ";
    diesel::sql_query(dead)
        .bind::<SqlUuid, _>(dock)
        .execute(conn)
        .await
        .expect("lease");
    diesel::sql_query("insert into sync_runs (org_id, dock_id, trigger, status) select org_id, id, 'schedule', 'syncing' from docks where id = $1")
        .bind::<SqlUuid, _>(dock).execute(conn).await.expect("stale run");
    let scheduler = Scheduler::new(env.engine(), SchedulerConfig::default());
    assert!(
        scheduler.tick().await.expect("tick").is_empty(),
        "a live lease is respected"
    );

    diesel::sql_query(
        "update docks set lease_expires_at = now() - interval '1 second' where id = $1",
    )
    .bind::<SqlUuid, _>(dock)
    .execute(conn)
    .await
    .expect("expire");
    let runs = scheduler.tick().await.expect("tick");
    assert_eq!(runs.len(), 1);
    for run in runs {
        assert!(run.await.expect("task").expect("run").succeeded());
    }
    let runs = text(
        conn,
        "select string_agg(status || ':' || coalesce(error, ''), ',' order by started_at) as t \
                           from sync_runs where dock_id = $1",
        dock,
    )
    .await;
    assert_eq!(
        runs.as_deref(),
        Some("error:abandoned: the replica running it stopped,success:")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_now_starts_a_run_or_returns_the_running_one() {
    let env = Env::new().await;
    let script = Script::new(KEY)
        .servers(3)
        .fault(Fault::always(FaultAction::Slow(Duration::from_millis(150))));
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    let scheduler = Scheduler::new(env.engine(), SchedulerConfig::default());
    let first = scheduler.sync_now(env.org, dock).await.expect("sync now");
    let second = scheduler.sync_now(env.org, dock).await.expect("sync now");
    assert!(matches!(first, SyncNow::Started(_)), "{first:?}");
    assert!(matches!(second, SyncNow::Running(_)), "{second:?}");
    assert_eq!(first.run().id, second.run().id);
    assert_eq!(
        (first.run().trigger.as_str(), first.run().status.as_str()),
        ("manual", "syncing")
    );
    assert!(
        scheduler.sync_now(Uuid::new_v4(), dock).await.is_err(),
        "another org's dock is not found"
    );

    let conn = &mut env.db.owner().await;
    let status = "select status as t from sync_runs where id = $1";
    wait_until("the manual run to end", PATIENCE, async || {
        text(conn, status, first.run().id).await.as_deref() != Some("syncing")
    })
    .await;
    assert_eq!(
        text(conn, status, first.run().id).await.as_deref(),
        Some("success")
    );
    let third = scheduler.sync_now(env.org, dock).await.expect("sync now");
    assert!(matches!(third, SyncNow::Started(_)) && third.run().id != first.run().id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ciphertext_copied_onto_another_dock_fails_to_decrypt() {
    let env = Env::new().await;
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, Script::new(KEY).servers(2))
        .await
        .expect("fake");
    let a = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    let b = env
        .dock(
            env.org,
            FakeKind::DigitalOcean,
            &url,
            "dop_v1_another_key_of_this_org",
        )
        .await;
    let conn = &mut env.db.owner().await;
    diesel::sql_query("update docks set encrypted_api_key = (select encrypted_api_key from docks where id = $1) where id <> $1")
        .bind::<SqlUuid, _>(a).execute(conn).await.expect("copy");
    let report = env.run(b).await;
    let error = report.error.expect("b cannot use a's ciphertext");
    assert!(error.contains("cannot be decrypted"), "{error}");
    assert!(env.run(a).await.succeeded(), "a still works");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_keeps_every_dock_usable() {
    let mut env = Env::new().await;
    let spec = |id: &str| Keyring::generate_spec(id);
    let (old, new) = (spec("k1"), spec("k2"));
    use secrecy::ExposeSecret;
    let old_ring = Keyring::parse(old.expose_secret()).expect("old");
    env.keyring = Arc::new(old_ring);
    let other = fixtures::org(&mut env.db.owner().await, "globex").await.id;
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, Script::new(KEY).servers(2))
        .await
        .expect("fake");
    let docks = [
        (
            env.org,
            env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await,
        ),
        (
            other,
            env.dock(other, FakeKind::DigitalOcean, &url, KEY).await,
        ),
        (
            other,
            env.dock(other, FakeKind::DigitalOcean, &url, KEY).await,
        ),
    ];
    let both =
        Keyring::parse(&format!("{},{}", new.expose_secret(), old.expose_secret())).expect("both");
    let conn = &mut env.db.owner().await;
    let first = rotate(conn, &both).await;
    assert_eq!(
        (
            first.docks.rotated,
            first.docks.current,
            first.docks.unreadable
        ),
        (3, 0, 0)
    );
    let second = rotate(conn, &both).await;
    assert_eq!((second.docks.rotated, second.docks.current), (0, 3));

    let new_only = Arc::new(Keyring::parse(new.expose_secret()).expect("new"));
    for (org, dock) in docks {
        let report = env
            .engine_with(new_only.clone())
            .run(&RunRequest::new(org, dock))
            .await
            .expect("run");
        assert!(report.succeeded(), "{:?}", report.error);
    }
}

async fn rotate(conn: &mut AsyncPgConnection, ring: &Keyring) -> credentials::RotationReport {
    use diesel_async::AsyncConnection;
    conn.transaction::<_, stackgate::db::DbError, _>(async |c| {
        credentials::rotate_all(c, ring).await
    })
    .await
    .expect("rotate")
}

/// Every log line of this test binary, from the first call on: a global subscriber, because a
/// thread-local one misses events whose callsites other tests registered first.
pub(crate) fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = Captured(logs.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info,stackgate=trace,reqwest=trace,hyper_util=trace")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

#[derive(Clone)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_credential_reaches_logs_errors_or_events() {
    let logs = captured_logs();
    let env = Env::new().await;
    let script = Script::new("the-right-token-0000").servers(3);
    let (url, fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let dock = env.dock(env.org, FakeKind::DigitalOcean, &url, KEY).await;
    let _relay = crate::harness::relay(&env.db).await;
    let mut listener = env.db.owner().await;
    listener
        .batch_execute("LISTEN stackgate_events")
        .await
        .expect("listen");
    let refused = env.run(dock).await;
    assert!(
        refused.error.as_deref().is_some_and(|e| e.contains("401")),
        "{:?}",
        refused.error
    );
    fake.set_token(KEY);
    fake.set_faults(vec![Fault::on_page(
        Kind::Server,
        1,
        FaultAction::ServerError(500),
    )]);
    assert!(!env.run(dock).await.succeeded());

    let mut stream = std::pin::pin!(listener.notifications_stream());
    let mut payloads = String::new();
    while let Ok(Some(Ok(n))) =
        tokio::time::timeout(Duration::from_millis(500), stream.next()).await
    {
        payloads.push_str(&n.payload);
    }
    let conn = &mut env.db.owner().await;
    let stored = text(conn, "select string_agg(coalesce(error, ''), ' ') || (select string_agg(coalesce(last_sync_error, ''), ' ') \
                             from docks) as t from sync_runs where dock_id = $1", dock).await.unwrap_or_default();
    let logs = String::from_utf8_lossy(&logs.lock().expect("logs")).into_owned();
    let failure = format!("dock_id={dock}");
    assert!(
        logs.lines()
            .any(|l| l.contains("sync failed") && l.contains(&failure)),
        "the failures were logged"
    );
    assert!(payloads.contains("FAILED"), "{payloads}");
    for (what, haystack) in [
        ("logs", &logs),
        ("events", &payloads),
        ("stored errors", &stored),
    ] {
        assert!(!haystack.contains(KEY), "{what} contain the key");
        assert!(
            !haystack.contains("0123456789abcdef"),
            "{what} contain part of the key"
        );
    }
}
