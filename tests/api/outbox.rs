//! The event outbox and its relay (`docs/events.md`, "How events travel"): writers append in
//! their transaction, the lease holder's relay publishes committed rows in order with a sequence
//! number, deletes them, and another replica's relay takes over when the holder stops.

use std::time::Duration;

use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::fixtures::{change_payload, outbox_rows, publish, skip_relay_sequence};
use crate::harness::TestApp;
use crate::harness::bus::{received_until, times_each};
use crate::harness::wait::{PATIENCE, wait_until};

/// The table name the events of these tests carry.
const TABLE: &str = "outbox_test";

async fn commit_one(conn: &mut AsyncPgConnection, org: Uuid, id: Uuid) {
    publish(conn, org, &change_payload(org, TABLE, id)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_write_publishes_nothing() {
    let app = TestApp::spawn().await;
    let mut events = app
        .server
        .as_ref()
        .expect("running")
        .state
        .events
        .subscribe();
    let (org, rolled_back, committed) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut conn = app.db.owner().await;
    conn.batch_execute("begin").await.expect("begin");
    commit_one(&mut conn, org, rolled_back).await;
    conn.batch_execute("rollback").await.expect("rollback");
    commit_one(&mut conn, org, committed).await;
    let (ids, gaps) = received_until(&mut events, TABLE, committed).await;
    assert_eq!(ids, [committed], "only the committed event");
    assert_eq!(gaps, 0);
    wait_until("the outbox to be pruned", PATIENCE, async || {
        outbox_rows(&mut conn).await == 0
    })
    .await;
}

/// Two transactions insert e1 then e2 and commit in the opposite order: e2 waits for e1's
/// transaction, and both arrive, e1 first.
#[tokio::test(flavor = "multi_thread")]
async fn order_is_kept_when_transactions_commit_out_of_order() {
    let app = TestApp::spawn().await;
    let server = app.server.as_ref().expect("running");
    let relay = server.relay().expect("relay");
    let mut events = server.state.events.subscribe();
    let (org, first, second) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut early = app.db.owner().await;
    let mut late = app.db.owner().await;
    early.batch_execute("begin").await.expect("begin");
    commit_one(&mut early, org, first).await;
    late.batch_execute("begin").await.expect("begin");
    commit_one(&mut late, org, second).await;
    late.batch_execute("commit").await.expect("commit");
    // The relay has had several rounds with `second` committed and `first` still open.
    let rounds = relay.rounds();
    wait_until("five relay rounds", PATIENCE, async || {
        relay.rounds() >= rounds + 5
    })
    .await;
    assert!(
        matches!(
            events.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ),
        "an event was published while an earlier transaction was still open"
    );
    let mut inspect = app.db.owner().await;
    assert_eq!(
        outbox_rows(&mut inspect).await,
        1,
        "`second` waits in the outbox"
    );
    early.batch_execute("commit").await.expect("commit");
    let (ids, gaps) = received_until(&mut events, TABLE, second).await;
    assert_eq!(ids, [first, second]);
    assert_eq!(gaps, 0);
}

/// Two replicas on one database, each running a relay; the holder dies without giving up its
/// lease (`crash`) or shuts down and gives it up, while events are being committed: the other
/// takes over and a subscriber receives every event exactly once, in order, with no gap; the
/// outbox ends empty.
async fn failover(crash: bool) {
    let mut app = TestApp::spawn_with(|c| {
        c.events.lease = Duration::from_secs(1);
        c.events.poll = Duration::from_millis(10);
    })
    .await;
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
            match crash {
                true => holder.as_mut().expect("running").kill_relay(),
                false => holder
                    .take()
                    .expect("running")
                    .shutdown()
                    .await
                    .expect("stops"),
            }
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
    // It relayed everything after the hand-over; under load a round may time out against the
    // 1 s lease and give it up for a moment, so it is asked to hold it again, not at this instant.
    wait_until("the survivor to hold the lease", PATIENCE, async || {
        survivor.relay().is_some_and(|r| r.is_holding())
    })
    .await;
    wait_until("the outbox to be pruned", PATIENCE, async || {
        outbox_rows(&mut conn).await == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_relay_is_replaced_and_no_event_is_lost_or_repeated() {
    failover(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_relay_hands_over_and_no_event_is_lost_or_repeated() {
    failover(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skipped_sequence_number_tells_subscribers_to_refetch() {
    let app = TestApp::spawn().await;
    let mut events = app
        .server
        .as_ref()
        .expect("running")
        .state
        .events
        .subscribe();
    let org = Uuid::new_v4();
    let (before, after) = (Uuid::new_v4(), Uuid::new_v4());
    let mut conn = app.db.owner().await;
    commit_one(&mut conn, org, before).await;
    let (_, gaps) = received_until(&mut events, TABLE, before).await;
    assert_eq!(gaps, 0);
    skip_relay_sequence(&mut conn, 3).await;
    commit_one(&mut conn, org, after).await;
    let (ids, gaps) = received_until(&mut events, TABLE, after).await;
    assert_eq!(ids, [after]);
    assert_eq!(gaps, 1, "the jump is a gap");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_role_appends_but_cannot_read_the_outbox() {
    let app = TestApp::spawn().await;
    let url = secrecy::ExposeSecret::expose_secret(&app.db.app_url()).to_owned();
    let mut conn = stackgate::db::connect_as_app(url, "test")
        .await
        .expect("app connection");
    let org = Uuid::new_v4();
    commit_one(&mut conn, org, Uuid::new_v4()).await;
    for sql in [
        "select * from event_outbox",
        "select * from event_relay",
        "delete from event_outbox",
        "update event_relay set last_seq = 0",
    ] {
        let refused = conn.batch_execute(sql).await.expect_err(sql).to_string();
        assert!(refused.contains("permission denied"), "{sql}: {refused}");
    }
    let error = conn
        .batch_execute("select stackgate_relay_events('x', 0, 1)")
        .await
        .expect_err("a lease of 0 s")
        .to_string();
    assert!(error.contains("invalid arguments"), "{error}");
}
