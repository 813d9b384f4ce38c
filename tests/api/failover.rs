//! Replicas that die: real `stackgate serve` processes on one database, one of them SIGKILLed
//! while it holds work, and the others taking the work over (`docs/sync.md`, "Replicas that
//! die").

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use secrecy::{ExposeSecret, SecretString};
use stackgate::crypto::Keyring;
use stackgate::db::models::credentials::{self, NewDock};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Fault, FaultAction, Script};
use uuid::Uuid;

use crate::fixtures::{self, count};
use crate::harness::serve::ServeProcess;
use crate::harness::wait::{PATIENCE, wait_for, wait_until};
use crate::harness::{JWT_SECRET, TestDb};

const KEY: &str = "dop_v1_failover_failover_failover_0123";
/// The target: another replica completes a dead replica's dock within this.
const TAKEOVER_TARGET: Duration = Duration::from_secs(20);
/// Resources the fake lists (one page of servers, and one empty page per other kind).
const SERVERS: usize = 3;

/// Two `serve` processes with the default lease (15 s) and claim interval; the one that holds a
/// dock's lease is SIGKILLed while its run waits on a slow page. The other completes the dock's
/// next run within 20 s, the dead run is closed as abandoned, and the listing is applied once.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_sync_is_replaced_within_twenty_seconds() {
    let db = TestDb::migrated().await;
    let conn = &mut db.owner().await;
    let org = fixtures::org(conn, "acme").await.id;
    // The first two pages take a second each: the first run is caught in its second page; the
    // run that replaces it is served at full speed.
    let script = Script::new(KEY)
        .servers(SERVERS)
        .fault(Fault::always(FaultAction::Slow(Duration::from_secs(1))).times(2));
    let (url, fake) = FakeProvider::start(FakeKind::DigitalOcean, script)
        .await
        .expect("fake");
    let keys = Keyring::generate_spec("failover");
    let dock = paused_dock(conn, &keys, org, &url).await;

    let env = replica_env(&db, &keys);
    let mut replicas = [
        ServeProcess::start("replica-a", &env),
        ServeProcess::start("replica-b", &env),
    ];
    for replica in &replicas {
        let ready = format!("http://{}/readyz", replica.addr);
        wait_until("both replicas ready", PATIENCE, async || {
            reqwest::get(&ready).await.is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    set(
        conn,
        "update docks set backoff_until = null where id = $1",
        dock,
    )
    .await;

    let holder = wait_for("a replica mid-sync", PATIENCE, async || {
        let owner = lease_owner(conn, dock).await.unwrap_or_default();
        let syncing = count(conn, RUNS_SYNCING, dock).await;
        match replicas
            .iter()
            .position(|r| owner.starts_with(&format!("{}:", r.name)))
        {
            Some(i) if syncing == 1 && fake.requests() >= 2 => Ok(i),
            _ => Err(format!(
                "owner {owner:?}, {syncing} syncing, {} requests",
                fake.requests()
            )),
        }
    })
    .await;
    assert!(
        count(conn, LEASE_WITHIN_DEFAULT, dock).await == 1,
        "the default lease is 15 s"
    );
    let killed_at = Instant::now();
    replicas[holder].kill_hard();
    let survivor = &mut replicas[1 - holder];

    wait_until(
        "the survivor to complete the dock's next run",
        TAKEOVER_TARGET + Duration::from_secs(5),
        async || count(conn, RUNS_SUCCEEDED, dock).await == 1,
    )
    .await;
    let takeover = killed_at.elapsed();
    eprintln!("takeover after SIGKILL: {:.1} s", takeover.as_secs_f64());
    assert!(
        takeover <= TAKEOVER_TARGET,
        "took {takeover:?}; survivor's log:\n{}",
        survivor.log_text()
    );
    assert!(survivor.is_running(), "{}", survivor.log_text());
    assert_eq!(
        runs(conn, dock).await.as_deref(),
        Some("error:0:abandoned: the replica running it stopped,success:3:"),
        "the dead run is closed, the next applies the listing once"
    );
    assert_eq!(
        count(conn, SERVERS_OF_DOCK, dock).await,
        SERVERS as i64,
        "one row per listed server"
    );
    assert_eq!(lease_owner(conn, dock).await, None, "the lease is released");
}

const RUNS_SYNCING: &str =
    "select count(*) as n from sync_runs where dock_id = $1 and status = 'syncing'";
const RUNS_SUCCEEDED: &str =
    "select count(*) as n from sync_runs where dock_id = $1 and status = 'success'";
const SERVERS_OF_DOCK: &str = "select count(*) as n from servers where dock_id = $1";
const LEASE_WITHIN_DEFAULT: &str = "select count(*) as n from docks where id = $1 \
     and lease_expires_at <= now() + interval '15 seconds'";

/// A DigitalOcean dock at `url`, its key encrypted with `keys`, due but backing off for an hour
/// (so that no replica claims it before every replica is up).
async fn paused_dock(
    conn: &mut AsyncPgConnection,
    keys: &SecretString,
    org: Uuid,
    url: &str,
) -> Uuid {
    let keyring = Keyring::from_config(Some(keys.expose_secret())).expect("keyring");
    let key = SecretString::from(KEY.to_owned());
    let new = NewDock {
        org_id: org,
        name: "slow-digitalocean",
        provider: FakeKind::DigitalOcean.provider(),
        api_key: &key,
        endpoint: Some(url),
        sync_interval_seconds: 3600,
    };
    let dock = credentials::create_dock(conn, &keyring, &new)
        .await
        .expect("dock");
    set(
        conn,
        "update docks set backoff_until = now() + interval '1 hour' where id = $1",
        dock,
    )
    .await;
    dock
}

/// What every replica of the test is started with: the test database, the serving login, the
/// credential keys, and nothing in the background but the sync scheduler.
fn replica_env(db: &TestDb, keys: &SecretString) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url().expose_secret().to_owned()),
        (
            "STACKGATE_APP_DATABASE_URL",
            db.app_url().expose_secret().to_owned(),
        ),
        ("STACKGATE_JWT_SECRET", JWT_SECRET.to_owned()),
        ("STACKGATE_ENCRYPTION_KEYS", keys.expose_secret().to_owned()),
        // The fake provider listens on 127.0.0.1.
        ("STACKGATE_ALLOW_PRIVATE_ENDPOINTS", "true".to_owned()),
        ("STACKGATE_HEALTH_MONITOR", "false".to_owned()),
        ("STACKGATE_NOTIFICATIONS", "false".to_owned()),
        ("STACKGATE_POOL_SIZE", "4".to_owned()),
    ]
}

async fn set(conn: &mut AsyncPgConnection, sql: &str, dock: Uuid) {
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(dock)
        .execute(conn)
        .await
        .expect(sql);
}

#[derive(QueryableByName)]
struct T {
    #[diesel(sql_type = Nullable<Text>)]
    t: Option<String>,
}

async fn text(conn: &mut AsyncPgConnection, sql: &str, dock: Uuid) -> Option<String> {
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(dock)
        .get_result::<T>(conn)
        .await
        .expect(sql)
        .t
}

async fn lease_owner(conn: &mut AsyncPgConnection, dock: Uuid) -> Option<String> {
    text(
        conn,
        "select lease_owner as t from docks where id = $1",
        dock,
    )
    .await
}

/// `status:created:error` of the dock's runs, oldest first.
async fn runs(conn: &mut AsyncPgConnection, dock: Uuid) -> Option<String> {
    let sql = "select string_agg(status || ':' || coalesce(created, 0) || ':' || \
               coalesce(error, ''), ',' order by started_at) as t from sync_runs where dock_id = $1";
    text(conn, sql, dock).await
}
