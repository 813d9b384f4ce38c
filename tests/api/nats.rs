//! The NATS JetStream event bus (`docs/events.md`, "The NATS JetStream bus"): the relay publishes
//! committed outbox rows to JetStream, every replica consumes the stream, and a restart of NATS
//! tells subscribers to refetch.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;
use stackgate::config::Config;
use stackgate::events::Relay;
use uuid::Uuid;

use crate::fixtures::{self, change_payload, outbox_rows, publish};
use crate::harness::TestApp;
use crate::harness::bus::{received_until, times_each};
use crate::harness::nats::NatsServer;
use crate::harness::wait::{PATIENCE, wait_for, wait_until};
use crate::harness::ws::Ws;

/// The table name the events of these tests carry.
const TABLE: &str = "nats_test";
const ALL_EVENTS: &str = "subscription { syncEvents { phase dock { name } } }";

/// A server on the NATS bus of `nats`, with a short lease and poll.
async fn app_on(nats: &NatsServer, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let bus = nats.bus();
    TestApp::spawn_with(|c| {
        c.events.bus = bus;
        c.events.lease = Duration::from_secs(1);
        c.events.poll = Duration::from_millis(10);
        adjust(c);
    })
    .await
}

async fn commit_one(conn: &mut AsyncPgConnection, org: Uuid, id: Uuid) {
    publish(conn, org, &change_payload(org, TABLE, id)).await;
}

/// The seeded data on a server over NATS.
async fn seeded_on(nats: &NatsServer) -> TestApp {
    let app = app_on(nats, |_| {}).await;
    stackgate::devkit::seed::seed(&mut app.db.owner().await, 1)
        .await
        .expect("seed");
    app
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_committed_on_one_replica_reaches_a_subscriber_on_another_in_order() {
    let nats = NatsServer::start().await;
    let app = seeded_on(&nats).await;
    let replica = app.replica().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let on_b = format!("http://{}/graphql/ws", replica.addr);
    let baseline = replica.state.events.subscribers();
    let mut sub = Ws::subscribed(&on_b, &owner, ALL_EVENTS, json!({})).await;
    wait_until("the subscription on replica B", PATIENCE, async || {
        replica.state.events.subscribers() > baseline
    })
    .await;
    let mut on_bus = replica.state.events.subscribe();

    // A sync started through replica A (the Linode dock has no provider: it starts and fails).
    let linode = fixtures::dock_named(&app, &owner, "Linode").await;
    fixtures::sync_dock(&app, &owner, &linode).await;
    assert_eq!(
        sub.event("syncEvents").await,
        json!({ "phase": "STARTED", "dock": { "name": "Linode" } })
    );
    while sub.event("syncEvents").await["phase"] != "FAILED" {}

    // Many events committed one after another arrive on B in order, once each, with no gap.
    let org = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..60).map(|_| Uuid::new_v4()).collect();
    let mut conn = app.db.owner().await;
    for id in &ids {
        commit_one(&mut conn, org, *id).await;
    }
    let (received, gaps) = received_until(&mut on_bus, TABLE, *ids.last().expect("ids")).await;
    assert_eq!(received, ids, "every event, once, in order");
    assert_eq!(gaps, 0);
    wait_until("the outbox to be pruned", PATIENCE, async || {
        outbox_rows(&mut conn).await == 0
    })
    .await;
    let metrics = app
        .client
        .get(format!("http://{}/metrics", replica.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("stackgate_event_bus_lag_seconds_count"),
        "the bus's lag is measured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_write_publishes_nothing_over_nats() {
    let nats = NatsServer::start().await;
    let app = app_on(&nats, |_| {}).await;
    let server = app.server.as_ref().expect("running");
    let mut events = server.state.events.subscribe();
    let (org, rolled_back, committed) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut conn = app.db.owner().await;
    conn.batch_execute("begin").await.expect("begin");
    commit_one(&mut conn, org, rolled_back).await;
    conn.batch_execute("rollback").await.expect("rollback");
    commit_one(&mut conn, org, committed).await;
    let (ids, gaps) = received_until(&mut events, TABLE, committed).await;
    assert_eq!(ids, [committed], "only the committed event");
    assert_eq!(gaps, 0);
}

/// Two replicas on one database and one NATS server, each running a relay; the holder dies
/// without giving up its lease while events are being committed: the other takes over and a
/// subscriber receives every event exactly once, in order, with no gap.
#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_relay_is_replaced_over_nats_and_no_event_is_lost_or_repeated() {
    let nats = NatsServer::start().await;
    let mut app = app_on(&nats, |_| {}).await;
    let mut replica = Some(app.replica().await);
    let holding = |s: &Option<stackgate::server::RunningServer>| {
        s.as_ref()
            .and_then(|s| s.relay())
            .is_some_and(|r| r.is_holding())
    };
    wait_until("a relay to hold the lease", PATIENCE, async || {
        holding(&app.server) || holding(&replica)
    })
    .await;
    let (holder, survivor) = match holding(&app.server) {
        true => (&mut app.server, &replica),
        false => (&mut replica, &app.server),
    };
    let survivor = survivor.as_ref().expect("running");
    let mut events = survivor.state.events.subscribe();
    let org = Uuid::new_v4();
    let ids: Vec<Uuid> = (0..120).map(|_| Uuid::new_v4()).collect();
    let mut conn = app.db.owner().await;
    for (n, id) in ids.iter().enumerate() {
        if n == 40 {
            holder.as_mut().expect("running").kill_relay();
        }
        commit_one(&mut conn, org, *id).await;
    }
    let (received, gaps) = received_until(&mut events, TABLE, *ids.last().expect("ids")).await;
    assert!(
        times_each(&received).values().all(|&n| n == 1),
        "an event arrived twice"
    );
    assert_eq!(received, ids, "every event, once, in order");
    assert_eq!(gaps, 0, "no sequence number was skipped");
    wait_until("the outbox to be pruned", PATIENCE, async || {
        outbox_rows(&mut conn).await == 0
    })
    .await;
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Bool)]
    held: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    seq: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    payload: Option<String>,
}

/// A relay that claimed and published events to JetStream, then died before deleting them: its
/// successor claims the same rows under the same numbers and publishes them again, and
/// JetStream's de-duplication keeps subscribers from seeing them twice.
#[tokio::test(flavor = "multi_thread")]
async fn events_published_before_a_crash_are_not_delivered_twice() {
    let nats = NatsServer::start().await;
    let mut app = app_on(&nats, |_| {}).await;
    let settings = app.config.events.clone();
    let server = app.server.as_mut().expect("running");
    let mut events = server.state.events.subscribe();
    wait_until("the relay to hold the lease", PATIENCE, async || {
        server.relay().is_some_and(|r| r.is_holding())
    })
    .await;
    server.kill_relay();

    // The "ghost" relay: claims three committed events once the lease expired…
    let org = Uuid::new_v4();
    let before: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    let mut conn = app.db.owner().await;
    for id in &before {
        commit_one(&mut conn, org, *id).await;
    }
    let claimed = wait_for("the ghost to claim the events", PATIENCE, async || {
        let rows: Vec<Claimed> = diesel::sql_query(
            "select held, seq, payload from stackgate_relay_claim('ghost', 1, 100)",
        )
        .load(&mut conn)
        .await
        .expect("claim");
        match rows.iter().filter(|r| r.held && r.seq.is_some()).count() {
            3 => Ok(rows),
            n => Err(format!("{n} claimed")),
        }
    })
    .await;
    // …publishes them as the relay does, and dies before deleting them.
    let client = async_nats::connect(nats.url()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    for row in &claimed {
        let mut headers = async_nats::HeaderMap::new();
        let seq = row.seq.expect("numbered").to_string();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, seq.as_str());
        let payload = row.payload.clone().expect("payload");
        js.publish_with_headers(format!("stackgate.events.{org}"), headers, payload.into())
            .await
            .expect("published")
            .await
            .expect("acknowledged");
    }
    let (received, gaps) = received_until(&mut events, TABLE, before[2]).await;
    assert_eq!(received, before);
    assert_eq!(gaps, 0);
    assert_eq!(
        outbox_rows(&mut conn).await,
        3,
        "left numbered in the outbox"
    );

    // A new relay takes over, publishes them again (dropped by JetStream), then what follows.
    let relay = Relay::new(app.db.app_url(), settings).spawn();
    let after = Uuid::new_v4();
    commit_one(&mut conn, org, after).await;
    let (received, gaps) = received_until(&mut events, TABLE, after).await;
    assert_eq!(received, [after], "the ghost's events came once");
    assert_eq!(gaps, 0, "the same numbers were reused");
    wait_until("the outbox to be pruned", PATIENCE, async || {
        outbox_rows(&mut conn).await == 0
    })
    .await;
    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nats_restart_tells_subscribers_to_refetch_and_events_flow_again() {
    let mut nats = NatsServer::start().await;
    let app = seeded_on(&nats).await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let mut sub = Ws::subscribed(&app.ws_url(), &owner, ALL_EVENTS, json!({})).await;
    app.wait_subscribed(1).await;
    let linode = fixtures::dock_named(&app, &owner, "Linode").await;
    fixtures::sync_dock(&app, &owner, &linode).await;
    assert_eq!(sub.event("syncEvents").await["phase"], "STARTED");
    while sub.event("syncEvents").await["phase"] != "FAILED" {}

    let bus = app.server.as_ref().expect("running").state.events.clone();
    nats.kill();
    wait_until("the bus to see NATS down", PATIENCE, async || {
        !bus.is_connected()
    })
    .await;
    nats.start_again().await;
    let result = sub.result().await;
    assert_eq!(
        result["errors"][0]["extensions"]["code"], "EVENTS_MISSED",
        "{result}"
    );
    assert!(bus.is_connected(), "the gap is told once reconnected");

    let mut sub = Ws::subscribed(&app.ws_url(), &owner, ALL_EVENTS, json!({})).await;
    app.wait_subscribed(1).await;
    fixtures::sync_dock(&app, &owner, &linode).await;
    assert_eq!(
        sub.event("syncEvents").await,
        json!({ "phase": "STARTED", "dock": { "name": "Linode" } })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_nats_at_startup_leaves_queries_served_and_readyz_saying_so() {
    let mut nats = NatsServer::start().await;
    nats.kill();
    let app = app_on(&nats, |_| {}).await;
    let owner = fixtures::with_alice(app).await;
    let (app, token) = owner;
    let (status, body) = app
        .graphql(
            Some(&token),
            "{ viewer { organizations { slug } } }",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["viewer"]["organizations"],
        json!([{ "slug": "acme" }]),
        "{body}"
    );
    let readyz = async || {
        let response = app.client.get(app.url("/readyz")).send().await;
        let response = response.expect("sent");
        let status = response.status().as_u16();
        (status, response.text().await.expect("text"))
    };
    let down = format!("event bus nats 127.0.0.1:{}: down", nats.port);
    let (status, text) = readyz().await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&down), "{text}");

    nats.start_again().await;
    let up = format!("event bus nats 127.0.0.1:{}: connected", nats.port);
    wait_for("readyz to see the bus up", PATIENCE, async || {
        let (_, text) = readyz().await;
        text.contains(&up).then_some(()).ok_or(text)
    })
    .await;
    let server = app.server.as_ref().expect("running");
    let mut events = server.state.events.subscribe();
    let (org, id) = (Uuid::new_v4(), Uuid::new_v4());
    commit_one(&mut app.db.owner().await, org, id).await;
    let (ids, _) = received_until(&mut events, TABLE, id).await;
    assert_eq!(ids, [id]);
}
