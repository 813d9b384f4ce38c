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

/// The hub of the app's only server.
fn hub(app: &TestApp) -> &stackgate::graphql::pipeline::live::hub::Hub {
    app.server
        .as_ref()
        .expect("running")
        .state
        .pipeline
        .live_queries()
}

/// `acme` with a second member, `carl`, whose permissions are `bob`'s; tokens of alice, bob
/// and carl, on an app that re-runs at once (no coalescing).
async fn acme_with_carl() -> (TestApp, Acme, [String; 3], uuid::Uuid) {
    let app =
        TestApp::spawn_with(|config| config.security.live_interval = std::time::Duration::ZERO)
            .await;
    let acme = acme(&app).await;
    let carl = fixtures::member(&mut app.db.owner().await, &acme.org, "carl", "member").await;
    let tokens = ["alice", "bob", "carl"].map(|who| app.token(who, None));
    (app, acme, tokens, carl)
}

/// Two users of one role run one live dashboard group between them: one run per change for
/// both. A live query that reads who the viewer is runs once per user, each seeing only their
/// own user.
#[tokio::test(flavor = "multi_thread")]
async fn viewers_of_one_role_share_a_group_and_personal_queries_do_not() {
    let (app, acme, [alice, bob, carl], carl_id) = acme_with_carl().await;
    let (project_id, _) = link_server(&app, &acme, &alice).await;
    let (mut b, mut c) = (Ws::open(&app, &bob).await, Ws::open(&app, &carl).await);
    b.subscribe(DASHBOARD, json!({})).await;
    let first = b.result().await;
    c.subscribe(DASHBOARD, json!({})).await;
    assert_eq!(c.result().await["data"], first["data"]);
    let hub = hub(&app);
    assert_eq!(hub.groups(), 1, "bob and carl have the same permissions");

    let runs = hub.runs();
    mutate(
        &app,
        &app.url(""),
        &alice,
        RENAME,
        json!({ "id": project_id, "name": "Shared" }),
    )
    .await;
    for ws in [&mut b, &mut c] {
        assert_eq!(project(&ws.result().await)["name"], "Shared");
    }
    assert_eq!(hub.runs(), runs + 1, "one run for both users");

    // Their own user: one group each, and neither sees the other's.
    const ME: &str = "query Me @live { viewer { user { id } organization { name } } }";
    let (mut bm, mut cm) = (Ws::open(&app, &bob).await, Ws::open(&app, &carl).await);
    bm.subscribe(ME, json!({})).await;
    cm.subscribe(ME, json!({})).await;
    let me = |result: &Value| result["data"]["viewer"]["user"]["id"].clone();
    assert_eq!(
        me(&bm.result().await),
        json!(TestApp::global_id("User", acme.bob))
    );
    assert_eq!(
        me(&cm.result().await),
        json!(TestApp::global_id("User", carl_id))
    );
    crate::harness::wait::wait_until(
        "the dashboard's group and one group per user of the personal query",
        crate::harness::wait::PATIENCE,
        async || hub.groups() == 3,
    )
    .await;
}

/// A subscriber whose role changes moves to the group of its new permissions; the group's
/// runner losing access ends only the runner's own stream: the others carry on in a group of
/// their own.
#[tokio::test(flavor = "multi_thread")]
async fn subscribers_follow_their_own_permissions_out_of_a_shared_group() {
    let (app, acme, [alice, bob, carl], carl_id) = acme_with_carl().await;
    fixtures::member(&mut app.db.owner().await, &acme.org, "dave", "member").await;
    let dave = app.token("dave", None);
    let (project_id, _) = link_server(&app, &acme, &alice).await;
    let base = app.url("");
    // Bob first: his credentials run the group.
    let mut b = Ws::open(&app, &bob).await;
    b.subscribe(DASHBOARD, json!({})).await;
    b.result().await;
    let (mut c, mut d) = (Ws::open(&app, &carl).await, Ws::open(&app, &dave).await);
    for ws in [&mut c, &mut d] {
        ws.subscribe(DASHBOARD, json!({})).await;
        ws.result().await;
    }
    let hub = hub(&app);
    assert_eq!(hub.groups(), 1);

    // Carl becomes a viewer: his connection's re-check moves him to a group of his own.
    let (_, roles) = app
        .graphql(
            Some(&alice),
            "{ viewer { organization { roles { id name } } } }",
            json!({}),
        )
        .await;
    let viewer_role = roles["data"]["viewer"]["organization"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == "viewer")
        .expect("the built-in viewer role")["id"]
        .clone();
    mutate(
        &app,
        &base,
        &alice,
        "mutation($user: ID!, $role: ID!) { setMemberRole(userId: $user, roleId: $role) { role } }",
        json!({ "user": TestApp::global_id("User", carl_id), "role": viewer_role }),
    )
    .await;
    crate::harness::wait::wait_until(
        "carl to move to a group of the viewer role",
        crate::harness::wait::PATIENCE,
        async || hub.groups() == 2,
    )
    .await;
    mutate(
        &app,
        &base,
        &alice,
        RENAME,
        json!({ "id": project_id, "name": "Moved" }),
    )
    .await;
    for ws in [&mut b, &mut c, &mut d] {
        let mut result = ws.result().await;
        // A result of the access change itself may come first.
        while project(&result)["name"] != "Moved" {
            result = ws.result().await;
        }
    }

    // Bob, whose credentials run the members' group, is removed: he gets FORBIDDEN and the end;
    // dave (same group, same permissions as before) and carl go on.
    mutate(
        &app,
        &base,
        &alice,
        "mutation($id: ID!) { removeMember(userId: $id) }",
        json!({ "id": TestApp::global_id("User", acme.bob) }),
    )
    .await;
    let revoked = b.result().await;
    assert_eq!(error_code(&revoked), "FORBIDDEN", "{revoked}");
    assert_eq!(b.message().await.expect("complete")["type"], "complete");
    mutate(
        &app,
        &base,
        &alice,
        RENAME,
        json!({ "id": project_id, "name": "After bob" }),
    )
    .await;
    for ws in [&mut c, &mut d] {
        let result = ws.result().await;
        assert_eq!(project(&result)["name"], "After bob", "{result}");
    }
}

/// A group whose runner's credentials stop authenticating (a revoked API key) ends only the
/// streams of those credentials: a subscriber of the same permissions with other credentials
/// (another key of the same user) goes on in a group of its own, and is sent nothing it already
/// has.
#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_running_a_group_ends_only_its_own_stream() {
    let (app, acme, [alice, bob, _], _) = acme_with_carl().await;
    let (project_id, _) = link_server(&app, &acme, &alice).await;
    let mut keys = Vec::new();
    for name in ["first", "second"] {
        let (_, created) = app
            .graphql(
                Some(&bob),
                "mutation($name: String!) { createApiKey(name: $name) { secret apiKey { id } } }",
                json!({ "name": name }),
            )
            .await;
        let created = &created["data"]["createApiKey"];
        let secret = created["secret"].as_str().expect("a key").to_owned();
        keys.push((secret, created["apiKey"]["id"].clone()));
    }
    let mut first = Ws::open(&app, &keys[0].0).await;
    first.subscribe(DASHBOARD, json!({})).await;
    first.result().await;
    let mut second = Ws::open(&app, &keys[1].0).await;
    second.subscribe(DASHBOARD, json!({})).await;
    second.result().await;
    assert_eq!(hub(&app).groups(), 1, "two keys of one user share a group");

    // The first key runs the group.
    mutate(
        &app,
        &app.url(""),
        &bob,
        "mutation($id: ID!) { revokeApiKey(id: $id) }",
        json!({ "id": keys[0].1 }),
    )
    .await;
    let revoked = first.result().await;
    assert_eq!(error_code(&revoked), "UNAUTHENTICATED", "{revoked}");
    mutate(
        &app,
        &app.url(""),
        &alice,
        RENAME,
        json!({ "id": project_id, "name": "After the key" }),
    )
    .await;
    let result = second.result().await;
    assert_eq!(project(&result)["name"], "After the key", "{result}");
}
