//! Live queries: a `@live` query sends its result, then a new one after each committed change
//! that alters it — and nothing for changes that do not (another organization's, or a resource it
//! does not show). Negative cases are checked by order, not by waiting: a change that must not
//! be sent is followed by one that must, and the next message has to be the second.

use serde_json::{Value, json};

use crate::fixtures::{self, AcmeSite as Acme, acme_site as acme};
use crate::harness::ws::Ws;
use crate::harness::{TestApp, error_code};

/// The dashboard, live: the organization's projects, their resources, status and health.
const DASHBOARD: &str = "query Dashboard @live { viewer { organization {
    projects(first: 10) { nodes { name resources(first: 10) { nodes {
        id name status health { state } } } } } } } }";

/// The first (only) project of a dashboard result.
fn project(result: &Value) -> &Value {
    assert!(result.get("errors").is_none(), "{result}");
    &result["data"]["viewer"]["organization"]["projects"]["nodes"][0]
}

/// Runs a mutation as `token` over `url`'s server and asserts it succeeded.
async fn mutate(app: &TestApp, base: &str, token: &str, query: &str, variables: Value) {
    let response = app
        .client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("sent");
    let body: Value = response.json().await.expect("JSON");
    assert!(body.get("errors").is_none(), "{body}");
}

/// Links acme's server to its project as `token`; the two global ids.
async fn link_server(app: &TestApp, acme: &Acme, token: &str) -> (String, String) {
    let (project_id, server_id) = (
        TestApp::global_id("Project", acme.project),
        TestApp::global_id("Server", acme.server),
    );
    mutate(
        app,
        &app.url(""),
        token,
        "mutation($p: ID!, $r: ID!) { linkResource(projectId: $p, resourceId: $r) { linkedAt } }",
        json!({ "p": project_id, "r": server_id }),
    )
    .await;
    (project_id, server_id)
}

const RENAME: &str = "mutation($id: ID!, $name: String!) {
    updateProject(id: $id, input: { name: $name }) { id } }";

/// A confirmed health transition of `server` to `state`, as the monitor records it.
async fn health_transition(app: &TestApp, acme: &Acme, server: uuid::Uuid, state: &str) {
    let conn = &mut app.db.owner().await;
    fixtures::health_transition(conn, (acme.org.id, acme.dock, server), ("unknown", state)).await;
}

/// A live dashboard gets a new result after a link, a renamed project, a status change from a
/// sync and a health transition; and none after another organization's change or a change to
/// a resource it does not show.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_dashboard_follows_the_changes_it_shows_and_no_others() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let (alice, gina) = (app.token("alice", None), app.token("gina", None));
    let base = app.url("");
    let mut ws = Ws::open(&app, &alice).await;
    ws.subscribe(DASHBOARD, json!({})).await;
    let first = ws.result().await;
    assert_eq!(project(&first)["name"], "Project site");
    assert_eq!(project(&first)["resources"]["nodes"], json!([]));
    app.wait_subscribed(1).await;

    // Linked: the server appears.
    let (project_id, server_id) = link_server(&app, &acme, &alice).await;
    let linked = ws.result().await;
    assert_eq!(project(&linked)["resources"]["nodes"][0]["id"], server_id);

    // Another organization's change, and a change to a server no project shows: nothing is
    // sent for either — the next result is the rename that follows them.
    let (_, globex) = app
        .graphql(
            Some(&gina),
            "{ viewer { organization { projects { nodes { id } } } } }",
            json!({}),
        )
        .await;
    let portal = globex["data"]["viewer"]["organization"]["projects"]["nodes"][0]["id"].clone();
    mutate(
        &app,
        &base,
        &gina,
        RENAME,
        json!({ "id": portal, "name": "Elsewhere" }),
    )
    .await;
    fixtures::set_status(&mut app.db.owner().await, "servers", acme.hidden, "stopped").await;
    mutate(
        &app,
        &base,
        &alice,
        RENAME,
        json!({ "id": project_id, "name": "Renamed" }),
    )
    .await;
    let renamed = ws.result().await;
    assert_eq!(project(&renamed)["name"], "Renamed", "{renamed}");

    // The linked server stops, as a sync would record it.
    fixtures::set_status(&mut app.db.owner().await, "servers", acme.server, "stopped").await;
    let stopped = ws.result().await;
    assert_eq!(
        project(&stopped)["resources"]["nodes"][0]["status"],
        "STOPPED"
    );

    // A health transition of the linked server.
    health_transition(&app, &acme, acme.server, "unhealthy").await;
    let unhealthy = ws.result().await;
    assert_eq!(
        project(&unhealthy)["resources"]["nodes"][0]["health"]["state"],
        "UNHEALTHY"
    );
}

/// An event committed through another replica updates a live query here.
#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_another_replica_updates_a_live_query() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let alice = app.token("alice", None);
    let replica = app.replica().await;
    let mut ws = Ws::open(&app, &alice).await;
    ws.subscribe(DASHBOARD, json!({})).await;
    ws.result().await;
    app.wait_subscribed(1).await;
    let other = format!("http://{}", replica.addr);
    let id = TestApp::global_id("Project", acme.project);
    mutate(
        &app,
        &other,
        &alice,
        RENAME,
        json!({ "id": id, "name": "Via B" }),
    )
    .await;
    assert_eq!(project(&ws.result().await)["name"], "Via B");
}

/// Many changes in a burst are coalesced into few re-runs, and the last result is current.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_changes_is_coalesced() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let alice = app.token("alice", None);
    let mut ws = Ws::open(&app, &alice).await;
    ws.subscribe(DASHBOARD, json!({})).await;
    ws.result().await;
    app.wait_subscribed(1).await;
    let id = TestApp::global_id("Project", acme.project);
    let base = app.url("");
    for i in 0..20 {
        mutate(
            &app,
            &base,
            &alice,
            RENAME,
            json!({ "id": id, "name": format!("v{i}") }),
        )
        .await;
    }
    let mut results = 0;
    loop {
        let result = ws.result().await;
        results += 1;
        if project(&result)["name"] == "v19" {
            break;
        }
    }
    assert!(results < 20, "{results} results for 20 changes");
}

/// A member removed while their dashboard is live gets `FORBIDDEN`, and the query ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_query_ends_when_its_caller_loses_access() {
    let app = TestApp::spawn().await;
    let acme = acme(&app).await;
    let (alice, bob) = (app.token("alice", None), app.token("bob", None));
    let mut ws = Ws::open(&app, &bob).await;
    let id = ws.subscribe(DASHBOARD, json!({})).await;
    ws.result().await;
    app.wait_subscribed(1).await;
    mutate(
        &app,
        &app.url(""),
        &alice,
        "mutation($id: ID!) { removeMember(userId: $id) }",
        json!({ "id": TestApp::global_id("User", acme.bob) }),
    )
    .await;
    let revoked = ws.result().await;
    assert_eq!(error_code(&revoked), "FORBIDDEN", "{revoked}");
    let end = ws.message().await.expect("complete");
    assert_eq!(end["type"], "complete", "{end}");
    assert_eq!(end["id"], id.as_str());
}

/// `@live` needs a streaming transport, and applies to queries only.
#[tokio::test]
async fn live_needs_a_stream_and_a_query() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let alice = app.token("alice", None);
    let (_, plain) = app.graphql(Some(&alice), DASHBOARD, json!({})).await;
    assert_eq!(error_code(&plain), "BAD_USER_INPUT", "{plain}");
    let mut ws = Ws::open(&app, &alice).await;
    let mutation = ws
        .query(
            "mutation @live { createProject(input: {name: \"x\", slug: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&mutation), "BAD_USER_INPUT", "{mutation}");
}

/// Two identical live queries (same credentials, document and variables) share one run per
/// change; an event on a resource the query did not read runs nothing at all.
#[tokio::test(flavor = "multi_thread")]
async fn identical_live_queries_share_runs_and_unread_changes_run_nothing() {
    // No coalescing: a run the hidden server's event caused would be a run of its own.
    let app =
        TestApp::spawn_with(|config| config.security.live_interval = std::time::Duration::ZERO)
            .await;
    let acme = acme(&app).await;
    let alice = app.token("alice", None);
    let base = app.url("");
    let (project_id, _) = link_server(&app, &acme, &alice).await;
    let (mut a, mut b) = (Ws::open(&app, &alice).await, Ws::open(&app, &alice).await);
    a.subscribe(DASHBOARD, json!({})).await;
    let first = a.result().await;
    b.subscribe(DASHBOARD, json!({})).await;
    assert_eq!(b.result().await["data"], first["data"]);
    let hub = app
        .server
        .as_ref()
        .expect("running")
        .state
        .pipeline
        .live_queries();
    assert_eq!(hub.groups(), 1, "one group for both");

    // A change both see: after it, every earlier event has been dealt with.
    mutate(
        &app,
        &base,
        &alice,
        RENAME,
        json!({ "id": project_id, "name": "Barrier" }),
    )
    .await;
    for ws in [&mut a, &mut b] {
        assert_eq!(project(&ws.result().await)["name"], "Barrier");
    }
    let runs = hub.runs();
    health_transition(&app, &acme, acme.hidden, "unhealthy").await;
    health_transition(&app, &acme, acme.server, "unhealthy").await;
    for ws in [&mut a, &mut b] {
        let result = ws.result().await;
        assert_eq!(
            project(&result)["resources"]["nodes"][0]["health"]["state"],
            "UNHEALTHY"
        );
    }
    assert_eq!(
        hub.runs(),
        runs + 1,
        "one run for two subscribers, none for the server the dashboard does not show"
    );
    drop((a, b));
    crate::harness::wait::wait_until(
        "the group to stop with its last subscriber",
        crate::harness::wait::PATIENCE,
        async || hub.groups() == 0,
    )
    .await;
}

/// A client-portal user's live dashboard shows only their client's projects, at first and after
/// every change; a change to another client's project sends them nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_portal_live_dashboard_never_shows_another_clients_project() {
    let app = fixtures::seeded().await;
    let (owner, client) = (
        app.token("org-0-owner", Some("org-0")),
        app.token("org-0-client-0", Some("org-0")),
    );
    let query = "query Portal { viewer { organization { projects(first: 50) { nodes {
        id client { name } resources(first: 20) { nodes { id } } } } } } }";
    let projects = |result: &Value| -> Vec<Value> {
        assert!(result.get("errors").is_none(), "{result}");
        result["data"]["viewer"]["organization"]["projects"]["nodes"]
            .as_array()
            .expect("projects")
            .clone()
    };
    let (_, all) = app.graphql(Some(&owner), query, json!({})).await;
    let all = projects(&all);
    let (mine, others): (Vec<Value>, Vec<Value>) = all
        .into_iter()
        .partition(|p| p["client"]["name"] == "Client 0");
    assert!(
        !mine.is_empty() && !others.is_empty(),
        "the seed gives both"
    );
    let ids = |list: &[Value]| list.iter().map(|p| p["id"].clone()).collect::<Vec<_>>();

    let mut ws = Ws::open(&app, &client).await;
    ws.subscribe(
        &query.replacen("query Portal", "query Portal @live", 1),
        json!({}),
    )
    .await;
    let first = projects(&ws.result().await);
    assert_eq!(
        ids(&first),
        ids(&mine),
        "their client's projects, all of them"
    );
    app.wait_subscribed(1).await;

    let unlink = "mutation($p: ID!, $r: ID!) { unlinkResource(projectId: $p, resourceId: $r) }";
    let first_link = |project: &Value| project["resources"]["nodes"][0]["id"].clone();
    for project in [&others[0], &mine[0]] {
        let (_, body) = app
            .graphql(
                Some(&owner),
                unlink,
                json!({ "p": project["id"], "r": first_link(project) }),
            )
            .await;
        assert_eq!(body["data"]["unlinkResource"], true, "{body}");
    }
    // The next result is the change to their own project: nothing was sent for the other.
    let next = projects(&ws.result().await);
    assert_eq!(ids(&next), ids(&mine));
    let changed = next
        .iter()
        .find(|p| p["id"] == mine[0]["id"])
        .expect("shown");
    let shown: Vec<&Value> = changed["resources"]["nodes"]
        .as_array()
        .expect("links")
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert!(!shown.contains(&&first_link(&mine[0])), "{changed}");
}
