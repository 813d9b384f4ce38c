//! Health monitoring against local HTTP and TCP servers on 127.0.0.1 and a real PostgreSQL:
//! hysteresis, alerts, timeouts, events, retention, and the GraphQL views of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use serde_json::{Value, json};
use stackgate::db::{Pool, Scope, build_pool};
use stackgate::health::monitor::ProbeReport;
use stackgate::health::{Monitor, MonitorConfig, ProbeConfig};
use uuid::Uuid;

use crate::fixtures::Target::{Database, Domain, Server, Web};
use crate::fixtures::{self, Org, count};
use crate::harness::wait::{PATIENCE, wait_until};
use crate::harness::ws::Ws;
use crate::harness::{TestApp, TestDb};

// ---------------------------------------------------------------------------------------------
// Targets: an HTTP site and TCP listeners, switchable while the test runs

const UP: u8 = 0;
const DOWN: u8 = 1;
const SLOW: u8 = 2;
const HANG: u8 = 3;

/// An HTTP server on 127.0.0.1 answering 200, 503, 200 after 300 ms, or never.
struct Site {
    url: String,
    mode: Arc<AtomicU8>,
    _task: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start(mode: u8) -> Self {
        let mode = Arc::new(AtomicU8::new(mode));
        let shared = mode.clone();
        let app = axum::Router::new().fallback(move || {
            let mode = AtomicU8::load(&shared, Ordering::SeqCst);
            async move {
                match mode {
                    UP => (StatusCode::OK, "up"),
                    DOWN => (StatusCode::SERVICE_UNAVAILABLE, "down"),
                    SLOW => {
                        // A slow answer is what this mode serves.
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        (StatusCode::OK, "slow")
                    }
                    _ => std::future::pending().await,
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind site");
        let url = format!("http://{}/health", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            mode,
            _task: task,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

/// A TCP port on a loopback address that can be opened and closed.
struct Port {
    addr: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Port {
    async fn open(ip: &str, port: u16) -> Self {
        let mut this = Self {
            addr: format!("{ip}:{port}").parse().expect("addr"),
            task: None,
        };
        this.reopen().await;
        this
    }

    async fn reopen(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("bind port");
        self.addr = listener.local_addr().expect("addr");
        self.task = Some(tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        }));
    }

    fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

pub fn config(server_port: u16, concurrency: usize) -> MonitorConfig {
    MonitorConfig {
        concurrency,
        confirmations: 2,
        idle: Duration::from_millis(50),
        probe: ProbeConfig {
            timeout: Duration::from_millis(500),
            slow: Duration::from_millis(150),
            server_port,
            allow_private: true,
            ..ProbeConfig::default()
        },
        ..MonitorConfig::default()
    }
}

/// Makes everything due, claims and probes it, and waits for every result.
pub async fn round(monitor: &Monitor, owner: &mut AsyncPgConnection) -> Vec<ProbeReport> {
    fixtures::make_due(owner).await;
    let tasks = monitor.run_once().await.expect("claim");
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.expect("task").expect("recorded"));
    }
    reports
}

#[derive(QueryableByName, Debug)]
struct HealthCols {
    #[diesel(sql_type = Text)]
    health_state: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_health_check_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn health(conn: &mut AsyncPgConnection, table: &str, id: Uuid) -> HealthCols {
    diesel::sql_query(format!(
        "select health_state, last_health_check_at from {table} where id = $1"
    ))
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .expect("health columns")
}

async fn state(conn: &mut AsyncPgConnection, table: &str, id: Uuid) -> String {
    health(conn, table, id).await.health_state
}

#[derive(QueryableByName, Debug, PartialEq)]
struct AlertCols {
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = Text)]
    message: String,
    #[diesel(sql_type = BigInt)]
    resolved: i64,
}

/// The resource's alerts, oldest first: severity, message, and whether resolved (1) or not (0).
async fn alerts(conn: &mut AsyncPgConnection, id: Uuid) -> Vec<AlertCols> {
    diesel::sql_query(
        "select severity, message, case when resolved_at is null then 0::int8 else 1::int8 end as resolved from alerts \
         where resource_id = $1 order by opened_at",
    )
    .bind::<SqlUuid, _>(id)
    .load(conn)
    .await
    .expect("alerts")
}

struct Env {
    db: TestDb,
    pool: Pool,
    org: Org,
    dock: Uuid,
}

impl Env {
    async fn new() -> Self {
        let db = TestDb::migrated().await;
        let mut conn = db.owner().await;
        let org = fixtures::org(&mut conn, "acme").await;
        let dock = fixtures::dock(&mut conn, &org).await;
        let pool = build_pool(&db.url(), 8).expect("pool");
        Self {
            db,
            pool,
            org,
            dock,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The monitor

#[tokio::test(flavor = "multi_thread")]
async fn http_state_changes_only_after_n_agreeing_probes_and_alerts_follow() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let site = Site::start(UP).await;
    let web = fixtures::resource(owner, &env.org, env.dock, Web(&site.url)).await;
    let monitor = Monitor::new(env.pool.clone(), config(1, 8)).expect("monitor");
    let h = health(owner, "web_services", web).await;
    assert_eq!(
        (h.health_state.as_str(), h.last_health_check_at),
        ("unknown", None)
    );

    // Unknown until two probes agree.
    let first = round(&monitor, owner).await;
    assert_eq!(first.len(), 1);
    assert!(
        first[0].observed.message.starts_with("HTTP 200"),
        "{:?}",
        first[0]
    );
    let h = health(owner, "web_services", web).await;
    assert_eq!(h.health_state, "unknown", "one healthy probe is not enough");
    assert!(h.last_health_check_at.is_some());
    round(&monitor, owner).await;
    assert_eq!(state(owner, "web_services", web).await, "healthy");

    // A single failure flips nothing, and the next success clears it.
    site.set(DOWN);
    round(&monitor, owner).await;
    assert_eq!(state(owner, "web_services", web).await, "healthy");
    site.set(UP);
    round(&monitor, owner).await;
    site.set(DOWN);
    round(&monitor, owner).await;
    assert_eq!(
        state(owner, "web_services", web).await,
        "healthy",
        "the streak restarted"
    );
    assert!(alerts(owner, web).await.is_empty());

    // Two failures in a row: unhealthy, and a critical alert.
    let reports = round(&monitor, owner).await;
    assert_eq!(reports[0].observed.message.get(..8), Some("HTTP 503"));
    assert_eq!(state(owner, "web_services", web).await, "unhealthy");
    let opened = alerts(owner, web).await;
    assert_eq!(opened.len(), 1);
    assert_eq!(
        (opened[0].severity.as_str(), opened[0].resolved),
        ("critical", 0)
    );
    assert!(
        opened[0].message.contains("unhealthy: HTTP 503"),
        "{}",
        opened[0].message
    );

    // Slow answers: degraded after two; the critical alert resolves and a warning opens.
    site.set(SLOW);
    round(&monitor, owner).await;
    round(&monitor, owner).await;
    assert_eq!(state(owner, "web_services", web).await, "degraded");
    let both = alerts(owner, web).await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(
        (both[0].severity.as_str(), both[0].resolved),
        ("critical", 1)
    );
    assert_eq!(
        (both[1].severity.as_str(), both[1].resolved),
        ("warning", 0)
    );

    // Recovery resolves it.
    site.set(UP);
    round(&monitor, owner).await;
    round(&monitor, owner).await;
    assert_eq!(state(owner, "web_services", web).await, "healthy");
    assert!(alerts(owner, web).await.iter().all(|a| a.resolved == 1));
    let checks = "select count(*) as n from health_checks where resource_id = $1";
    assert_eq!(
        count(owner, checks, web).await,
        10,
        "every probe is in the history"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_ports_opening_and_closing_drive_servers_and_databases() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let mut server_port = Port::open("127.0.0.2", 0).await;
    let port = server_port.addr.port();
    let mut db_port = Port::open("127.0.0.3", 0).await;
    let server = fixtures::resource(owner, &env.org, env.dock, Server("127.0.0.2")).await;
    let database = fixtures::resource(owner, &env.org, env.dock, Database("127.0.0.3")).await;
    fixtures::set_database_port(owner, database, db_port.addr.port()).await;
    let monitor = Monitor::new(env.pool.clone(), config(port, 8)).expect("monitor");

    round(&monitor, owner).await;
    round(&monitor, owner).await;
    assert_eq!(state(owner, "servers", server).await, "healthy");
    assert_eq!(state(owner, "databases", database).await, "healthy");

    server_port.close();
    db_port.close();
    let reports = round(&monitor, owner).await;
    assert!(
        reports
            .iter()
            .all(|r| r.observed.message.contains("failed")),
        "{reports:?}"
    );
    assert_eq!(state(owner, "servers", server).await, "healthy");
    round(&monitor, owner).await;
    assert_eq!(state(owner, "servers", server).await, "unhealthy");
    assert_eq!(state(owner, "databases", database).await, "unhealthy");
    assert_eq!(alerts(owner, database).await.len(), 1);

    server_port.reopen().await;
    round(&monitor, owner).await;
    round(&monitor, owner).await;
    assert_eq!(state(owner, "servers", server).await, "healthy");
    assert_eq!(
        state(owner, "databases", database).await,
        "unhealthy",
        "its port is still closed"
    );
    assert_eq!(alerts(owner, server).await[0].resolved, 1);
    assert_eq!(alerts(owner, database).await[0].resolved, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_probe_times_out_and_frees_its_slot() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let hanging = Site::start(HANG).await;
    let fine = Site::start(UP).await;
    let stuck = fixtures::resource(owner, &env.org, env.dock, Web(&hanging.url)).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        others.push(fixtures::resource(owner, &env.org, env.dock, Web(&fine.url)).await);
    }
    // One slot: everything else waits behind the hanging probe unless it is cut off.
    let handle = Monitor::new(env.pool.clone(), config(1, 1))
        .expect("monitor")
        .spawn();
    let checked = "select count(*) as n from web_services where last_health_check_at is not null and org_id = $1";
    let what = "every probe, though one hangs";
    wait_until(what, PATIENCE, async || {
        fixtures::count(owner, checked, env.org.id).await >= 4
    })
    .await;
    handle.stop();
    #[derive(QueryableByName)]
    struct Check {
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = Nullable<Text>)]
        message: Option<String>,
    }
    let check: Check =
        diesel::sql_query("select state, message from health_checks where resource_id = $1")
            .bind::<SqlUuid, _>(stuck)
            .get_result(owner)
            .await
            .expect("the hanging probe was recorded");
    assert_eq!(check.state, "unhealthy");
    assert_eq!(check.message.as_deref(), Some("timed out after 500 ms"));
    for id in others {
        let message =
            "select count(*) as n from health_checks where resource_id = $1 and state = 'healthy'";
        assert_eq!(count(owner, message, id).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_transition_publishes_the_agreed_payload_on_commit() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let site = Site::start(UP).await;
    let web = fixtures::resource(owner, &env.org, env.dock, Web(&site.url)).await;
    let _relay = crate::harness::relay(&env.db).await;
    let mut listener = env.db.owner().await;
    listener
        .batch_execute("LISTEN stackgate_events")
        .await
        .expect("listen");
    let monitor = Monitor::new(env.pool.clone(), config(1, 4)).expect("monitor");
    let mut stream = std::pin::pin!(listener.notifications_stream());
    let mut next =
        async || match tokio::time::timeout(Duration::from_millis(700), stream.next()).await {
            Ok(Some(Ok(n))) => Some(n.payload),
            _ => None,
        };

    round(&monitor, owner).await;
    assert_eq!(next().await, None, "no transition, no event");
    round(&monitor, owner).await;
    let payload = next().await.expect("an event for unknown -> healthy");
    let at = health(owner, "web_services", web)
        .await
        .last_health_check_at
        .expect("checked");
    let mut event: Value = serde_json::from_str(&payload).expect("JSON");
    let seq = event.as_object_mut().and_then(|o| o.remove("seq"));
    assert!(
        seq.is_some_and(|s| s.is_u64()),
        "the relay numbers it: {payload}"
    );
    let keys: Vec<&String> = event.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        [
            "at",
            "current",
            "dock_id",
            "kind",
            "org_id",
            "previous",
            "resource_id",
            "type"
        ]
    );
    assert_eq!(
        event,
        json!({
            "type": "health", "org_id": env.org.id, "dock_id": env.dock, "resource_id": web, "kind": "web_service",
            "previous": "unknown", "current": "healthy",
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        })
    );
    let parsed = stackgate::events::HealthEvent::parse(&payload).expect("parses");
    assert_eq!(parsed.at, at);

    site.set(DOWN);
    round(&monitor, owner).await;
    assert_eq!(next().await, None);
    round(&monitor, owner).await;
    let event: Value = serde_json::from_str(&next().await.expect("event")).expect("JSON");
    assert_eq!(
        (event["previous"].as_str(), event["current"].as_str()),
        (Some("healthy"), Some("unhealthy"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn domains_are_judged_by_resolution_and_expiry() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let fine = fixtures::resource(owner, &env.org, env.dock, Domain("localhost")).await;
    let soon = fixtures::resource(owner, &env.org, env.dock, Domain("localhost")).await;
    let expired = fixtures::resource(owner, &env.org, env.dock, Domain("localhost")).await;
    let bogus = fixtures::resource(owner, &env.org, env.dock, Domain("no such name!")).await;
    for (id, days) in [(soon, 5), (expired, -1), (fine, 300)] {
        fixtures::set_domain_expiry(owner, id, days).await;
    }
    let monitor = Monitor::new(env.pool.clone(), config(1, 8)).expect("monitor");
    let reports = round(&monitor, owner).await;
    let observed = |id: Uuid| {
        let r = reports
            .iter()
            .find(|r| r.resource_id == id)
            .expect("probed");
        (r.observed.state.as_str(), r.observed.message.clone())
    };
    assert_eq!(observed(fine).0, "healthy", "{:?}", observed(fine));
    assert_eq!(observed(soon).0, "degraded", "{:?}", observed(soon));
    assert!(observed(soon).1.contains("expires on"));
    assert_eq!(observed(expired).0, "unhealthy");
    assert_eq!(observed(bogus).0, "unknown", "nothing valid to probe");
}

#[tokio::test(flavor = "multi_thread")]
async fn intervals_follow_org_and_kind_overrides_and_leases_keep_replicas_apart() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let site = Site::start(UP).await;
    let web = fixtures::resource(owner, &env.org, env.dock, Web(&site.url)).await;
    let server = fixtures::resource(owner, &env.org, env.dock, Server("127.0.0.1")).await;
    fixtures::set_health_interval(owner, &env.org, "server", 3600).await;
    let monitor = Monitor::new(env.pool.clone(), config(1, 8)).expect("monitor");
    let other = Monitor::new(
        env.pool.clone(),
        MonitorConfig {
            owner: "replica-b".into(),
            ..config(1, 8)
        },
    )
    .expect("monitor");
    let tasks = monitor.run_once().await.expect("claim");
    assert_eq!(tasks.len(), 2);
    assert!(
        other.run_once().await.expect("claim").is_empty(),
        "leased to the first replica"
    );
    for task in tasks {
        task.await.expect("task").expect("recorded");
    }
    let delay = "select extract(epoch from health_next_check_at - last_health_check_at)::int8 as n from {} where id = $1";
    let server_delay = count(owner, &delay.replace("{}", "servers"), server).await;
    let web_delay = count(owner, &delay.replace("{}", "web_services"), web).await;
    assert!((3240..=3960).contains(&server_delay), "{server_delay}");
    assert!((54..=66).contains(&web_delay), "{web_delay}");
    assert!(
        other.run_once().await.expect("claim").is_empty(),
        "nothing is due yet"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_prunes_only_old_history_and_the_app_cannot_delete_it() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let id = Uuid::new_v4();
    fixtures::health_history(owner, &env.org, id, 48).await;
    let denied = Scope {
        org_id: Some(env.org.id),
        ..Scope::default()
    }
    .transaction(&env.pool, async |conn| {
        Ok(diesel::sql_query("delete from health_checks")
            .execute(conn)
            .await?)
    })
    .await;
    assert!(
        format!("{denied:?}").contains("permission denied"),
        "{denied:?}"
    );
    let monitor = Monitor::new(
        env.pool.clone(),
        MonitorConfig {
            retention: Duration::from_secs(24 * 3600),
            ..config(1, 1)
        },
    )
    .expect("monitor");
    assert_eq!(monitor.prune().await.expect("prune"), 24, "24 h and older");
    let left = "select count(*) as n from health_checks where resource_id = $1";
    assert_eq!(count(owner, left, id).await, 24);
}

// ---------------------------------------------------------------------------------------------
// GraphQL

const ALERTS: &str = "query($open: Boolean) { viewer { organization {
    alerts(first: 10, open: $open) { totalCount edges { cursor node {
        id severity message openedAt resolvedAt
        resource { __typename id name health { state message } } } } }
    projects(first: 5) { nodes { slug healthSummary { healthy degraded unhealthy unknown } } } } } }";

#[tokio::test(flavor = "multi_thread")]
async fn alerts_and_health_summaries_over_graphql_stay_in_their_org() {
    let app = TestApp::spawn().await;
    let owner = &mut app.db.owner().await;
    let acme = fixtures::org(owner, "acme").await;
    let other = fixtures::org(owner, "other").await;
    fixtures::member(owner, &acme, "acme-owner", "owner").await;
    fixtures::member(owner, &other, "other-owner", "owner").await;
    let project = fixtures::project(owner, &acme, "site").await;
    let dock = fixtures::dock(owner, &acme).await;
    let site = Site::start(DOWN).await;
    let web = fixtures::resource(owner, &acme, dock, Web(&site.url)).await;
    fixtures::resource(owner, &acme, dock, Web("")).await;
    fixtures::link(owner, &acme, project, "web_service", web).await;
    let pool = build_pool(&app.db.url(), 4).expect("pool");
    let monitor = Monitor::new(pool, config(1, 4)).expect("monitor");
    round(&monitor, owner).await;

    let token = app.token("acme-owner", Some("acme"));
    let (_, body) = app.graphql(Some(&token), ALERTS, json!({})).await;
    let org = &body["data"]["viewer"]["organization"];
    assert_eq!(org["alerts"]["totalCount"], 0, "{body}");
    assert_eq!(
        org["projects"]["nodes"][0]["healthSummary"],
        json!({ "healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 1 })
    );

    round(&monitor, owner).await;
    site.set(UP);
    round(&monitor, owner).await;
    round(&monitor, owner).await;
    site.set(DOWN);
    round(&monitor, owner).await;
    round(&monitor, owner).await;
    let (_, body) = app.graphql(Some(&token), ALERTS, json!({})).await;
    let org = &body["data"]["viewer"]["organization"];
    assert_eq!(org["alerts"]["totalCount"], 2, "{body}");
    let newest = &org["alerts"]["edges"][0]["node"];
    assert_eq!(newest["severity"], "critical");
    assert_eq!(newest["resolvedAt"], Value::Null);
    assert_eq!(newest["resource"]["__typename"], "WebService");
    assert_eq!(newest["resource"]["health"]["state"], "UNHEALTHY");
    assert!(
        newest["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 503")),
        "{newest}"
    );
    assert!(
        org["alerts"]["edges"][1]["node"]["resolvedAt"].is_string(),
        "the first alert resolved"
    );
    assert_eq!(
        org["projects"]["nodes"][0]["healthSummary"],
        json!({ "healthy": 0, "degraded": 0, "unhealthy": 1, "unknown": 0 })
    );
    // A resource its provider no longer lists leaves the summary (its link stays, marked deleted).
    fixtures::set_status(owner, "web_services", web, "deleted").await;
    let (_, body) = app.graphql(Some(&token), ALERTS, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["projects"]["nodes"][0]["healthSummary"],
        json!({ "healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 0 }),
        "{body}"
    );
    let (_, open) = app
        .graphql(Some(&token), ALERTS, json!({ "open": true }))
        .await;
    assert_eq!(
        open["data"]["viewer"]["organization"]["alerts"]["totalCount"],
        1
    );
    let (_, resolved) = app
        .graphql(Some(&token), ALERTS, json!({ "open": false }))
        .await;
    assert_eq!(
        resolved["data"]["viewer"]["organization"]["alerts"]["totalCount"],
        1
    );

    // Paging: one at a time, newest first.
    let page = "query($after: String) { viewer { organization { alerts(first: 1, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { id } } } } }";
    let (_, one) = app.graphql(Some(&token), page, json!({})).await;
    let first = &one["data"]["viewer"]["organization"]["alerts"];
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    assert_eq!(first["nodes"][0]["id"], *newest.get("id").expect("id"));
    let (_, two) = app
        .graphql(
            Some(&token),
            page,
            json!({ "after": first["pageInfo"]["endCursor"] }),
        )
        .await;
    let second = &two["data"]["viewer"]["organization"]["alerts"];
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    assert_ne!(second["nodes"][0]["id"], first["nodes"][0]["id"]);

    // node(id:) finds it here, and nowhere else.
    let alert_id = newest["id"].clone();
    let node = "query($id: ID!) { node(id: $id) { __typename ... on Alert { severity resource { id } } } }";
    let (_, mine) = app
        .graphql(Some(&token), node, json!({ "id": alert_id }))
        .await;
    assert_eq!(mine["data"]["node"]["__typename"], "Alert", "{mine}");
    assert_eq!(
        mine["data"]["node"]["resource"]["id"],
        newest["resource"]["id"]
    );
    let theirs = app.token("other-owner", Some("other"));
    let (_, body) = app
        .graphql(Some(&theirs), node, json!({ "id": alert_id }))
        .await;
    assert_eq!(body, json!({ "data": { "node": null } }));
    let (_, body) = app.graphql(Some(&theirs), ALERTS, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["alerts"]["totalCount"], 0,
        "{body}"
    );
    let history = "query($id: ID!) { node(id: $id) { ... on WebService { healthHistory(first: 2) {
        totalCount nodes { state message } } } } }";
    let (_, body) = app
        .graphql(
            Some(&token),
            history,
            json!({ "id": newest["resource"]["id"] }),
        )
        .await;
    let history = &body["data"]["node"]["healthHistory"];
    assert_eq!(history["totalCount"], 6, "{body}");
    assert_eq!(history["nodes"][0]["state"], "UNHEALTHY");
}

/// A server of a project of the team `$team`.
const REACHED_SERVER: &str = "select s.id from servers s join project_resources pr on pr.server_id = s.id \
    join projects p on p.id = pr.project_id and p.deleted_at is null \
    where p.team_id = '$team' limit 1";

/// A server of the team `$team`'s organization on no project of the team, on a dock not granted
/// to it.
const UNREACHED_SERVER: &str = "select s.id from servers s join teams t on t.org_id = s.org_id \
    where t.id = '$team' \
      and s.id not in (select pr.resource_id from project_resources pr \
        join projects p on p.id = pr.project_id and p.deleted_at is null where p.team_id = t.id) \
      and s.dock_id not in (select dp.dock_id from dock_permissions dp where dp.team_id = t.id) \
    limit 1";

#[tokio::test(flavor = "multi_thread")]
async fn team_only_viewers_see_only_alerts_of_resources_they_reach() {
    let app = fixtures::seeded().await;
    let owner = &mut app.db.owner().await;
    // `team-only` is in org-0's team-0 as a viewer, and in no org role.
    let guest = fixtures::user(owner, "team-only").await;
    let team = fixtures::seeded_team(owner, "org-0", "Team 0").await;
    fixtures::join_team(owner, &team, guest, "viewer").await;
    // A server the team reaches through a project, and one it reaches by no path.
    let reached = fixtures::id_of(
        owner,
        &REACHED_SERVER.replace("$team", &team.id.to_string()),
    )
    .await;
    fixtures::alert(owner, reached, "critical", "reached").await;
    let unreached = fixtures::id_of(
        owner,
        &UNREACHED_SERVER.replace("$team", &team.id.to_string()),
    )
    .await;
    fixtures::alert(owner, unreached, "warning", "unreached").await;
    let query = "{ viewer { organization { alerts { totalCount nodes { id message } } } } }";
    let (_, body) = app
        .graphql(
            Some(&app.token("org-0-owner", Some("org-0"))),
            query,
            json!({}),
        )
        .await;
    let all = &body["data"]["viewer"]["organization"]["alerts"];
    assert_eq!(all["totalCount"], 2, "{body}");
    let unreached = all["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["message"] == "unreached")
        .expect("the owner sees it")["id"]
        .clone();

    let guest = app.token("team-only", Some("org-0"));
    let (_, body) = app.graphql(Some(&guest), query, json!({})).await;
    let seen = &body["data"]["viewer"]["organization"]["alerts"];
    assert_eq!(seen["totalCount"], 1, "{body}");
    assert_eq!(seen["nodes"][0]["message"], "reached");
    let node = "query($id: ID!) { node(id: $id) { id } }";
    let (_, body) = app
        .graphql(Some(&guest), node, json!({ "id": unreached }))
        .await;
    assert_eq!(body, json!({ "data": { "node": null } }));

    // Client roles grant projects and resources only: no alerts in the client portal.
    let client = app.token("org-0-client-0", Some("org-0"));
    let (_, body) = app.graphql(Some(&client), query, json!({})).await;
    assert_eq!(crate::harness::error_code(&body), "FORBIDDEN", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_runs_the_monitor_when_asked() {
    let app = TestApp::spawn_with(|c| {
        c.run_health = true;
        c.health = config(1, 4);
    })
    .await;
    let owner = &mut app.db.owner().await;
    let org = fixtures::org(owner, "acme").await;
    let dock = fixtures::dock(owner, &org).await;
    let site = Site::start(UP).await;
    let web = fixtures::resource(owner, &org, dock, Web(&site.url)).await;
    wait_until("a probe by the server's monitor", PATIENCE, async || {
        let checked = health(owner, "web_services", web)
            .await
            .last_health_check_at;
        checked.is_some()
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Live health over subscriptions

const HEALTH_EVENTS: &str = "subscription($project: ID, $ids: [ID!]) {
    resourceHealth(projectId: $project, resourceIds: $ids) {
      previous current at resource { id name } } }";

/// The next `resourceHealth` event as `(resource name, previous, current)`.
async fn transition(sub: &mut Ws) -> (String, String, String) {
    let e = sub.event("resourceHealth").await;
    let word = |v: &Value| v.as_str().expect("a string").to_owned();
    (
        word(&e["resource"]["name"]),
        word(&e["previous"]),
        word(&e["current"]),
    )
}

fn web_id(id: Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("WebService:{id}"))
}

async fn name_of(conn: &mut AsyncPgConnection, id: Uuid) -> String {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    diesel::sql_query("select name from web_services where id = $1")
        .bind::<SqlUuid, _>(id)
        .get_result::<Name>(conn)
        .await
        .expect("name")
        .name
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribers_receive_exactly_the_transitions_they_may_see_in_order() {
    let app = TestApp::spawn().await;
    let owner = &mut app.db.owner().await;
    let acme = fixtures::org(owner, "acme").await;
    let globex = fixtures::org(owner, "globex").await;
    fixtures::member(owner, &acme, "acme-owner", "owner").await;
    fixtures::member(owner, &globex, "globex-owner", "owner").await;
    let (granted, other) = (
        fixtures::dock(owner, &acme).await,
        fixtures::dock(owner, &acme).await,
    );
    let foreign = fixtures::dock(owner, &globex).await;
    // `teamer` reaches acme only through a team granted the first dock.
    let teamer = fixtures::user(owner, "teamer").await;
    let ops = fixtures::team(owner, &acme, "Ops").await;
    fixtures::grant_dock(owner, &ops, granted, "read").await;
    fixtures::join_team(owner, &ops, teamer, "viewer").await;
    let sites = [
        Site::start(UP).await,
        Site::start(UP).await,
        Site::start(UP).await,
    ];
    let web = |dock, org, site: &Site| (dock, org, site.url.clone());
    let mut ids = Vec::new();
    for (dock, org, url) in [
        web(granted, &acme, &sites[0]),
        web(other, &acme, &sites[1]),
        web(foreign, &globex, &sites[2]),
    ] {
        ids.push(fixtures::resource(owner, org, dock, Web(&url)).await);
    }
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let (a_name, b_name) = (name_of(owner, a).await, name_of(owner, b).await);
    let project_id = fixtures::project(owner, &acme, "site").await;
    fixtures::link(owner, &acme, project_id, "web_service", b).await;
    let project_gid = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("Project:{project_id}"))
    };

    let ws = app.ws_url();
    let acme_owner = app.token("acme-owner", Some("acme"));
    let mut everything = Ws::subscribed(&ws, &acme_owner, HEALTH_EVENTS, json!({})).await;
    let teamer = app.token("teamer", Some("acme"));
    let mut team = Ws::subscribed(&ws, &teamer, HEALTH_EVENTS, json!({})).await;
    let mut of_project = Ws::subscribed(
        &ws,
        &acme_owner,
        HEALTH_EVENTS,
        json!({ "project": project_gid }),
    )
    .await;
    let mut named = Ws::subscribed(
        &ws,
        &acme_owner,
        HEALTH_EVENTS,
        json!({ "ids": [web_id(a)] }),
    )
    .await;
    // Naming another organization's resource, or the team naming one beyond its dock: not found.
    let globex_owner = app.token("globex-owner", Some("globex"));
    for (token, id) in [(&globex_owner, a), (&teamer, b)] {
        let mut refused =
            Ws::subscribed(&ws, token, HEALTH_EVENTS, json!({ "ids": [web_id(id)] })).await;
        let result = refused.result().await;
        assert_eq!(crate::harness::error_code(&result), "NOT_FOUND", "{result}");
    }
    app.wait_subscribed(4).await;

    let monitor =
        Monitor::new(build_pool(&app.db.url(), 4).expect("pool"), config(1, 8)).expect("monitor");
    // Two agreeing rounds: all three become healthy (one transition each).
    round(&monitor, owner).await;
    round(&monitor, owner).await;
    // Then the first site fails, and the project links the first resource too.
    sites[0].set(DOWN);
    fixtures::link(owner, &acme, project_id, "web_service", a).await;
    round(&monitor, owner).await;
    round(&monitor, owner).await;

    let t = |name: &str, from: &str, to: &str| (name.to_owned(), from.to_owned(), to.to_owned());
    let first_round = [
        transition(&mut everything).await,
        transition(&mut everything).await,
    ];
    assert!(
        first_round.contains(&t(&a_name, "UNKNOWN", "HEALTHY")),
        "{first_round:?}"
    );
    assert!(
        first_round.contains(&t(&b_name, "UNKNOWN", "HEALTHY")),
        "{first_round:?}"
    );
    assert_eq!(
        transition(&mut everything).await,
        t(&a_name, "HEALTHY", "UNHEALTHY")
    );
    // The team: only the granted dock's resource, in order, never the other dock's nor globex's.
    // The project: b while only b was linked, then a once linked. The named: a.
    let (a_up, a_down) = (
        t(&a_name, "UNKNOWN", "HEALTHY"),
        t(&a_name, "HEALTHY", "UNHEALTHY"),
    );
    let b_up = t(&b_name, "UNKNOWN", "HEALTHY");
    for (sub, want) in [
        (&mut team, [&a_up, &a_down]),
        (&mut of_project, [&b_up, &a_down]),
        (&mut named, [&a_up, &a_down]),
    ] {
        for expected in want {
            assert_eq!(&transition(sub).await, expected);
        }
    }
    // globex's resource changed too, and no acme subscriber was told.
    assert_eq!(state(owner, "web_services", c).await, "healthy");
}

#[tokio::test(flavor = "multi_thread")]
async fn private_addresses_are_not_probed_unless_allowed() {
    let env = Env::new().await;
    let owner = &mut env.db.owner().await;
    let site = Site::start(UP).await;
    let port = Port::open("127.0.0.1", 0).await;
    let by_name = site.url.replace("127.0.0.1", "localhost");
    let mut ids = Vec::new();
    for target in [
        Web(&site.url),
        Web(&by_name),
        Web("http://169.254.169.254/latest/meta-data/"),
        Server("127.0.0.1"),
    ] {
        let id = fixtures::resource(owner, &env.org, env.dock, target).await;
        ids.push((target.table(), id));
    }
    let mut closed = config(port.addr.port(), 8);
    closed.probe.allow_private = false;
    let monitor = Monitor::new(env.pool.clone(), closed).expect("monitor");
    for _ in 0..2 {
        let reports = round(&monitor, owner).await;
        assert_eq!(reports.len(), ids.len());
        for report in &reports {
            assert_eq!(report.observed.state.as_str(), "unknown", "{report:?}");
            assert!(
                report.observed.message.contains("not probed:")
                    && report.observed.message.contains("is not a public address"),
                "{report:?}"
            );
        }
    }
    for (table, id) in &ids {
        assert_eq!(state(owner, table, *id).await, "unknown");
    }

    // Allowed (as tests and the demo do), the same targets are probed.
    let open = Monitor::new(env.pool.clone(), config(port.addr.port(), 8)).expect("monitor");
    round(&open, owner).await;
    round(&open, owner).await;
    for (table, id) in &ids[..2] {
        assert_eq!(state(owner, table, *id).await, "healthy");
    }
    assert_eq!(state(owner, ids[3].0, ids[3].1).await, "healthy");
}

#[derive(QueryableByName)]
struct Schedule {
    #[diesel(sql_type = Timestamptz)]
    last_health_check_at: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = Timestamptz)]
    health_next_check_at: chrono::DateTime<chrono::Utc>,
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_set_their_own_probe_interval_per_kind() {
    let app = TestApp::spawn().await;
    let owner = &mut app.db.owner().await;
    let acme = fixtures::org(owner, "acme").await;
    let globex = fixtures::org(owner, "globex").await;
    fixtures::member(owner, &acme, "acme-owner", "owner").await;
    fixtures::member(owner, &acme, "acme-viewer", "viewer").await;
    fixtures::member(owner, &globex, "globex-owner", "owner").await;
    let set = "mutation($kind: ResourceKind!, $s: Int) {
        setHealthCheckInterval(kind: $kind, intervalSeconds: $s) { kind intervalSeconds } }";
    let read = "{ viewer { organization { healthCheckIntervals { kind intervalSeconds } } } }";
    let token = app.token("acme-owner", Some("acme"));

    let (_, body) = app
        .graphql(Some(&token), set, json!({ "kind": "SERVER", "s": 30 }))
        .await;
    assert_eq!(
        body["data"]["setHealthCheckInterval"],
        json!([{ "kind": "SERVER", "intervalSeconds": 30 }]),
        "{body}"
    );
    let (_, body) = app
        .graphql(Some(&token), set, json!({ "kind": "DOMAIN", "s": 7200 }))
        .await;
    assert_eq!(
        body["data"]["setHealthCheckInterval"]
            .as_array()
            .map(Vec::len),
        Some(2),
        "{body}"
    );
    for bad in [0, -5, 604_801] {
        let (_, body) = app
            .graphql(Some(&token), set, json!({ "kind": "SERVER", "s": bad }))
            .await;
        assert_eq!(
            crate::harness::error_code(&body),
            "BAD_USER_INPUT",
            "{body}"
        );
    }
    // A viewer may read the intervals but not change them; another organization sees none.
    let viewer = app.token("acme-viewer", Some("acme"));
    let (_, body) = app
        .graphql(Some(&viewer), set, json!({ "kind": "SERVER", "s": 5 }))
        .await;
    assert_eq!(crate::harness::error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app.graphql(Some(&viewer), read, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["healthCheckIntervals"],
        // By kind word: `domain` before `server`.
        json!([
            { "kind": "DOMAIN", "intervalSeconds": 7200 },
            { "kind": "SERVER", "intervalSeconds": 30 }
        ]),
        "{body}"
    );
    let (_, body) = app
        .graphql(
            Some(&app.token("globex-owner", Some("globex"))),
            read,
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["healthCheckIntervals"],
        json!([]),
        "{body}"
    );

    // The monitor schedules acme's servers 30 s (±10%) apart, globex's at the default 60 s.
    let port = Port::open("127.0.0.1", 0).await;
    let mut servers = Vec::new();
    for org in [&acme, &globex] {
        let dock = fixtures::dock(owner, org).await;
        let id = fixtures::resource(owner, org, dock, Server("127.0.0.1")).await;
        servers.push(id);
    }
    let pool = build_pool(&app.db.url(), 4).expect("pool");
    let monitor = Monitor::new(pool, config(port.addr.port(), 4)).expect("monitor");
    round(&monitor, owner).await;
    for (id, seconds) in [(servers[0], 30.0), (servers[1], 60.0)] {
        let s: Schedule = diesel::sql_query(
            "select last_health_check_at, health_next_check_at from servers where id = $1",
        )
        .bind::<SqlUuid, _>(id)
        .get_result(owner)
        .await
        .expect("schedule");
        let gap = (s.health_next_check_at - s.last_health_check_at).as_seconds_f64();
        assert!(
            (seconds * 0.89..=seconds * 1.11).contains(&gap),
            "next check {gap} s after the last, expected about {seconds}"
        );
    }

    // Cleared: back to the default, and the audit log has every change.
    let (_, body) = app
        .graphql(Some(&token), set, json!({ "kind": "SERVER", "s": null }))
        .await;
    assert_eq!(
        body["data"]["setHealthCheckInterval"],
        json!([{ "kind": "DOMAIN", "intervalSeconds": 7200 }]),
        "{body}"
    );
    assert_eq!(
        count(
            owner,
            "select count(*) as n from audit_logs where org_id = $1 and action = 'health_interval.set'",
            acme.id
        )
        .await,
        4,
        "three changes and one denial"
    );
}
