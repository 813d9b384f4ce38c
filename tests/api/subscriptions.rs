//! Subscriptions over `/graphql/ws`: sync events across replicas, filtered per subscriber;
//! project link changes; a lost LISTEN connection told to subscribers.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use serde_json::{Value, json};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Script};

use crate::fixtures;
use crate::harness::TestApp;
use crate::harness::ws::Ws;

const KEY: &str = "do-good-token-1234";

const DOCK_EVENTS: &str = "subscription($id: ID!) { dockSyncStatus(dockId: $id) {
    phase itemsFetched message at dock { id name } run { status created updated deleted } } }";
const ALL_EVENTS: &str = "subscription { syncEvents { phase dock { name } } }";
const LINK_EVENTS: &str = "subscription($id: ID!) { projectResourcesChanged(projectId: $id) {
    change status resourceId resource { id name status } project { slug } } }";

fn ws_url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}/graphql/ws")
}

async fn create_dock(app: &TestApp, token: &str, name: &str, url: &str) -> Value {
    let create = "mutation($name: String!, $key: String!, $url: String) { createDock(input: { name: $name, provider: \"digitalocean\", apiKey: $key, endpoint: $url, syncIntervalSeconds: 3600 }) { id } }";
    let (_, body) = app
        .graphql(
            Some(token),
            create,
            json!({ "name": name, "key": KEY, "url": url }),
        )
        .await;
    let id = body["data"]["createDock"]["id"].clone();
    assert!(id.is_string(), "{body}");
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_on_one_replica_reaches_subscribers_on_another_as_far_as_they_may_see() {
    let app = fixtures::seeded_with_teamer().await;
    let globex = fixtures::org(&mut app.db.owner().await, "globex").await;
    fixtures::member(&mut app.db.owner().await, &globex, "globex-owner", "owner").await;
    let replica = app.replica().await;
    let on_b = ws_url(replica.addr);
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, Script::new(KEY).servers(5))
        .await
        .expect("fake");
    let owner = app.token("org-0-owner", Some("org-0"));
    let hidden = create_dock(&app, &owner, "Hidden from the team", &url).await;

    let mut watcher = Ws::subscribed(&on_b, &owner, DOCK_EVENTS, json!({ "id": hidden })).await;
    let teamer = app.token("org-0-teamer", Some("org-0"));
    let mut team = Ws::subscribed(&on_b, &teamer, ALL_EVENTS, json!({})).await;
    let globex_owner = app.token("globex-owner", Some("globex"));
    let mut outsider = Ws::subscribed(&on_b, &globex_owner, ALL_EVENTS, json!({})).await;

    // Started on replica A (the test's app), seen on replica B.
    fixtures::sync_dock(&app, &owner, &hidden).await;
    let mut phases = Vec::new();
    let last = loop {
        let event = watcher.event("dockSyncStatus").await;
        assert_eq!(event["dock"]["id"], hidden, "{event}");
        let phase = event["phase"].as_str().expect("phase").to_owned();
        if phase != "PAGE" {
            phases.push(phase.clone());
        }
        if phase == "SUCCEEDED" || phase == "FAILED" {
            break event;
        }
    };
    assert_eq!(phases, ["STARTED", "APPLIED", "SUCCEEDED"]);
    assert_eq!(
        last["run"],
        json!({ "status": "SUCCESS", "created": 5, "updated": 0, "deleted": 0 })
    );
    assert_eq!(last["dock"]["name"], "Hidden from the team");

    // The team may read only the seeded DigitalOcean dock: the first event it gets is of that
    // dock (events reach each replica in commit order, so the hidden dock's came before).
    let granted = fixtures::dock_named(&app, &owner, "DigitalOcean").await;
    fixtures::sync_dock(&app, &owner, &granted).await;
    let seen = team.event("syncEvents").await;
    assert_eq!(seen["dock"]["name"], "DigitalOcean", "{seen}");

    // Another organization saw none of it: its first event is its own.
    let own = create_dock(&app, &globex_owner, "Globex DO", &url).await;
    fixtures::sync_dock(&app, &globex_owner, &own).await;
    let seen = outsider.event("syncEvents").await;
    assert_eq!(
        seen,
        json!({ "phase": "STARTED", "dock": { "name": "Globex DO" } })
    );
    replica.shutdown().await.expect("replica stops");
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribing_to_what_the_viewer_cannot_see_is_not_found() {
    let app = fixtures::seeded_with_teamer().await;
    let globex = fixtures::org(&mut app.db.owner().await, "globex").await;
    fixtures::member(&mut app.db.owner().await, &globex, "globex-owner", "owner").await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let dock = fixtures::dock_named(&app, &owner, "Linode").await;
    let ws = app.ws_url();

    let outsider = app.token("globex-owner", Some("globex"));
    let teamer = app.token("org-0-teamer", Some("org-0"));
    for (token, id) in [(&outsider, dock.clone()), (&teamer, dock.clone())] {
        let mut sub = Ws::subscribed(&ws, token, DOCK_EVENTS, json!({ "id": id })).await;
        let result = sub.result().await;
        assert_eq!(
            result["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{result}"
        );
    }
    let mut sub = Ws::subscribed(&ws, &owner, DOCK_EVENTS, json!({ "id": "not-an-id" })).await;
    let result = sub.result().await;
    assert_eq!(
        result["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{result}"
    );
    let mut sub = Ws::subscribed(&ws, &outsider, LINK_EVENTS, json!({ "id": dock })).await;
    let result = sub.result().await;
    assert_eq!(
        result["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_listener_tells_subscribers_to_refetch_and_events_flow_again() {
    let app = fixtures::seeded_with_teamer().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let mut sub = Ws::subscribed(&app.ws_url(), &owner, ALL_EVENTS, json!({})).await;
    app.wait_subscribed(1).await;
    let linode = fixtures::dock_named(&app, &owner, "Linode").await;
    fixtures::sync_dock(&app, &owner, &linode).await;
    assert_eq!(sub.event("syncEvents").await["phase"], "STARTED");
    while sub.event("syncEvents").await["phase"] != "FAILED" {}

    terminate_event_listener(&mut app.db.owner().await).await;
    let result = sub.result().await;
    assert_eq!(
        result["errors"][0]["extensions"]["code"], "EVENTS_MISSED",
        "{result}"
    );

    fixtures::sync_dock(&app, &owner, &linode).await;
    let event = sub.event("syncEvents").await;
    assert_eq!(
        event,
        json!({ "phase": "STARTED", "dock": { "name": "Linode" } })
    );
}

/// Ends the server's LISTEN connection (as a database restart or a network fault would).
async fn terminate_event_listener(conn: &mut AsyncPgConnection) {
    conn.batch_execute(
        "select pg_terminate_backend(pid) from pg_stat_activity \
          where application_name = 'stackgate-events' and datname = current_database()",
    )
    .await
    .expect("terminated");
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn idle_in_transaction(conn: &mut AsyncPgConnection) -> i64 {
    diesel::sql_query(
        "select count(*) as n from pg_stat_activity \
          where datname = current_database() and state like 'idle in transaction%'",
    )
    .get_result::<N>(conn)
    .await
    .expect("count")
    .n
}

#[tokio::test(flavor = "multi_thread")]
async fn project_link_changes_are_delivered_for_that_project_only() {
    let app = fixtures::seeded_with_teamer().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&owner),
            "{ viewer { organization {
                projects(first: 2) { nodes { id slug resources(first: 100) { nodes { id } } } }
                resources(first: 100, kinds: [SERVER]) { nodes { id name status } } } } }",
            json!({}),
        )
        .await;
    let org = &body["data"]["viewer"]["organization"];
    let (project, other) = (&org["projects"]["nodes"][0], &org["projects"]["nodes"][1]);
    let linked: Vec<&Value> = project["resources"]["nodes"]
        .as_array()
        .expect("linked")
        .iter()
        .chain(other["resources"]["nodes"].as_array().expect("linked"))
        .map(|r| &r["id"])
        .collect();
    let server = org["resources"]["nodes"]
        .as_array()
        .expect("servers")
        .iter()
        .find(|r| !linked.contains(&&r["id"]))
        .expect("an unlinked server")
        .clone();
    let mut sub = Ws::subscribed(
        &app.ws_url(),
        &owner,
        LINK_EVENTS,
        json!({ "id": project["id"] }),
    )
    .await;
    app.wait_subscribed(1).await;
    let link =
        "mutation($p: ID!, $r: ID!) { linkResource(projectId: $p, resourceId: $r) { linkedAt } }";
    let unlink = "mutation($p: ID!, $r: ID!) { unlinkResource(projectId: $p, resourceId: $r) }";
    let ids = json!({ "p": project["id"], "r": server["id"] });

    let (_, body) = app.graphql(Some(&owner), link, ids.clone()).await;
    assert!(body.get("errors").is_none(), "{body}");
    let event = sub.event("projectResourcesChanged").await;
    assert_eq!(event["change"], "LINKED");
    assert_eq!(event["resourceId"], server["id"]);
    assert_eq!(event["resource"], server);
    assert_eq!(event["project"]["slug"], project["slug"]);
    let conn = &mut app.db.owner().await;
    assert_eq!(
        idle_in_transaction(conn).await,
        0,
        "between events a subscription holds no transaction"
    );

    // The resource's status changes (as a sync would change it): the link follows and tells.
    let status = if server["status"] == "STOPPED" {
        "active"
    } else {
        "stopped"
    };
    let uuid = decode(server["id"].as_str().expect("id"));
    fixtures::set_status(conn, "servers", uuid, status).await;
    let event = sub.event("projectResourcesChanged").await;
    assert_eq!(event["change"], "STATUS_CHANGED");
    assert_eq!(event["status"], status.to_uppercase());
    assert_eq!(
        event["resource"]["status"],
        status.to_uppercase(),
        "loaded afresh"
    );

    // Another project's links are not this subscription's business.
    let elsewhere = json!({ "p": other["id"], "r": server["id"] });
    let (_, body) = app.graphql(Some(&owner), link, elsewhere).await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, body) = app.graphql(Some(&owner), unlink, ids).await;
    assert_eq!(body["data"]["unlinkResource"], true, "{body}");
    let event = sub.event("projectResourcesChanged").await;
    assert_eq!(event["change"], "UNLINKED", "{event}");
    assert_eq!(event["resourceId"], server["id"]);
}

/// The uuid inside a global id.
fn decode(id: &str) -> uuid::Uuid {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .expect("base64");
    let text = String::from_utf8(bytes).expect("utf-8");
    let uuid = text.split_once(':').expect("Type:uuid").1;
    uuid.parse().expect("a uuid")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_who_loses_access_is_told_and_the_subscription_ends() {
    let app = fixtures::seeded_with_teamer().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let granted = fixtures::dock_named(&app, &owner, "DigitalOcean").await;
    let teamer = app.token("org-0-teamer", Some("org-0"));
    let mut team = Ws::subscribed(&app.ws_url(), &teamer, ALL_EVENTS, json!({})).await;
    app.wait_subscribed(1).await;
    // Removed from the team that reached org-0: no membership is left. The connection checks its
    // caller again on the access event this publishes, and ends the subscription by itself.
    fixtures::leave_teams(&mut app.db.owner().await, "org-0-teamer").await;
    let result = team.result().await;
    assert!(
        result["data"].is_null(),
        "no event after the revocation: {result}"
    );
    assert_eq!(crate::harness::error_code(&result), "FORBIDDEN", "{result}");
    // An event the team could see before: nothing of it reaches the ended subscription.
    fixtures::sync_dock(&app, &owner, &granted).await;
    let end = team.message().await.expect("a message");
    assert_eq!(end["type"], "complete", "{end}");
}
