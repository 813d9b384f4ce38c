//! The shared response cache of HTTP queries and their `ETag`s: an answer is served again to its
//! viewer until an event of its organization commits; `If-None-Match` gets 304 meanwhile.
//!
//! To see that an answer came from the cache, the tests change a row with its triggers off (so
//! no event is published, as no writer of ours ever does): a cached answer still shows the old
//! value, a fresh one the new.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::fixtures::{self, AcmeSite};
use crate::harness::TestApp;

const NAMES: &str = "{ viewer { user { name } organization { projects { nodes { name } } } } }";

/// A server with the cache on (or off), acme (with `carol`, a member like `bob`, and `vic`, a
/// viewer) and globex built, and every event of building them received.
async fn app(bytes: usize) -> (TestApp, AcmeSite) {
    let app = TestApp::spawn_with(|config| config.security.response_cache_bytes = bytes).await;
    let site = fixtures::acme_site(&app).await;
    let conn = &mut app.db.owner().await;
    fixtures::member(conn, &site.org, "carol", "member").await;
    fixtures::member(conn, &site.org, "vic", "viewer").await;
    app.settle_events().await;
    (app, site)
}

/// Renames every project of `org` without publishing an event.
async fn rename_quietly(app: &TestApp, slug: &str, name: &str) {
    app.db
        .owner()
        .await
        .batch_execute(&format!(
            "set session_replication_role = replica;
             update projects set name = '{name}' where org_id = (select id from organizations where slug = '{slug}');
             set session_replication_role = origin;"
        ))
        .await
        .expect("quiet rename");
}

/// POSTs `NAMES` as `token`, with `If-None-Match` when given: status, `ETag`, body.
async fn names(app: &TestApp, token: &str, etag: Option<&str>) -> (u16, String, Value) {
    let mut request = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": NAMES }));
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    let body = if status == 304 {
        Value::Null
    } else {
        response.json().await.expect("JSON")
    };
    (status, etag, body)
}

fn project_name(body: &Value) -> &Value {
    &body["data"]["viewer"]["organization"]["projects"]["nodes"][0]["name"]
}

/// An answer is served again until an event of its organization (another organization's leaves
/// it: see the unit tests of `pipeline::cache`); the viewer's own fields never reach another
/// viewer.
#[tokio::test(flavor = "multi_thread")]
async fn answers_are_served_until_an_event_of_their_organization() {
    let (app, site) = app(1 << 20).await;
    let (alice, bob) = (app.token("alice", None), app.token("bob", None));
    let (_, _, first) = names(&app, &alice, None).await;
    assert_eq!(project_name(&first), "Project site");
    rename_quietly(&app, "acme", "Quietly").await;
    let (_, _, cached) = names(&app, &alice, None).await;
    assert_eq!(
        project_name(&cached),
        "Project site",
        "served from the cache"
    );
    // Another viewer runs the same document: their own answer, with their own name.
    let (_, _, bobs) = names(&app, &bob, None).await;
    assert_eq!(bobs["data"]["viewer"]["user"]["name"], "bob", "{bobs}");
    assert_eq!(project_name(&bobs), "Quietly");
    let rename = "mutation($id: ID!) { updateProject(id: $id, input: { name: \"Moved\" }) { id } }";
    // An event of acme: the next answer is fresh.
    let (_, renamed) = app
        .graphql(
            Some(&alice),
            rename,
            json!({ "id": TestApp::global_id("Project", site.project) }),
        )
        .await;
    assert!(renamed.get("errors").is_none(), "{renamed}");
    crate::harness::wait::wait_until(
        "the cached answer forgotten",
        crate::harness::wait::PATIENCE,
        async || project_name(&names(&app, &alice, None).await.2) == "Moved",
    )
    .await;
}

/// `If-None-Match` with the current `ETag` gets 304 and no body; after a change, 200 and a new
/// `ETag`.
#[tokio::test(flavor = "multi_thread")]
async fn if_none_match_gets_304_until_the_answer_changes() {
    let (app, site) = app(1 << 20).await;
    let alice = app.token("alice", None);
    let (status, etag, _) = names(&app, &alice, None).await;
    assert_eq!(status, 200);
    let (status, again, body) = names(&app, &alice, Some(&etag)).await;
    assert_eq!((status, &again, body), (304, &etag, Value::Null));
    let rename = "mutation($id: ID!) { updateProject(id: $id, input: { name: \"New\" }) { id } }";
    app.graphql(
        Some(&alice),
        rename,
        json!({ "id": TestApp::global_id("Project", site.project) }),
    )
    .await;
    let changed = crate::harness::wait::wait_for(
        "a new answer",
        crate::harness::wait::PATIENCE,
        async || match names(&app, &alice, Some(&etag)).await {
            (200, new, body) => Ok((new, body)),
            (status, ..) => Err(format!("status {status}")),
        },
    )
    .await;
    assert_ne!(changed.0, etag);
    assert_eq!(project_name(&changed.1), "New");
}

/// With the cache off every answer is fresh (and still carries an `ETag`).
#[tokio::test]
async fn with_the_cache_off_every_answer_is_fresh() {
    let (app, _) = app(0).await;
    let alice = app.token("alice", None);
    names(&app, &alice, None).await;
    rename_quietly(&app, "acme", "Quietly").await;
    let (status, _, body) = names(&app, &alice, None).await;
    assert_eq!(status, 200);
    assert_eq!(project_name(&body), "Quietly");
}

/// Viewers with the same permissions share an answer that reads nothing of their own; a viewer
/// with other permissions, in another organization, or asking for their own user, gets theirs.
#[tokio::test(flavor = "multi_thread")]
async fn viewers_with_the_same_permissions_share_answers_that_read_nothing_of_their_own() {
    let (app, _) = app(1 << 20).await;
    let token = |sub: &str| app.token(sub, None);
    let projects = "{ viewer { organization { projects { nodes { name } } } } }";
    let name = |body: Value| project_name(&body).clone();
    let ask =
        async |sub: &str, query: &str| app.graphql(Some(&token(sub)), query, json!({})).await.1;
    assert_eq!(name(ask("bob", projects).await), "Project site");
    rename_quietly(&app, "acme", "Quietly").await;
    assert_eq!(
        name(ask("carol", projects).await),
        "Project site",
        "carol, a member like bob, gets bob's answer"
    );
    assert_eq!(
        name(ask("vic", projects).await),
        "Quietly",
        "a viewer's own"
    );
    assert_eq!(
        name(ask("alice", projects).await),
        "Quietly",
        "an owner's own"
    );
    // Asking for one's own user makes the answer personal.
    let (_, _, bobs) = names(&app, &token("bob"), None).await;
    rename_quietly(&app, "acme", "Later").await;
    let (_, _, carols) = names(&app, &token("carol"), None).await;
    assert_eq!(bobs["data"]["viewer"]["user"]["name"], "bob");
    assert_eq!(
        carols["data"]["viewer"]["user"]["name"], "carol",
        "{carols}"
    );
    assert_eq!(project_name(&carols), "Later", "not bob's answer");
    let globex = ask("gina", projects).await;
    assert_eq!(name(globex), "Project portal");
}

/// An event that changes nothing an answer read leaves it cached: a health transition does not
/// touch a list of project names. The events are delivered in order, so once a later event has
/// made another answer fresh, the transition has been seen too.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_that_touches_nothing_an_answer_read_leaves_it_cached() {
    let (app, site) = app(1 << 20).await;
    let alice = app.token("alice", None);
    let docks = "{ viewer { organization { docks { nodes { name } } } } }";
    let dock_name =
        |body: &Value| body["data"]["viewer"]["organization"]["docks"]["nodes"][0]["name"].clone();
    names(&app, &alice, None).await;
    let (_, before) = app.graphql(Some(&alice), docks, json!({})).await;
    rename_quietly(&app, "acme", "Quietly").await;
    let conn = &mut app.db.owner().await;
    fixtures::health_transition(
        conn,
        (site.org.id, site.dock, site.server),
        ("unknown", "unhealthy"),
    )
    .await;
    conn.batch_execute(&format!(
        "update docks set name = 'Renamed dock' where id = '{}'",
        site.dock
    ))
    .await
    .expect("a dock renamed");
    crate::harness::wait::wait_until(
        "the docks answer forgotten",
        crate::harness::wait::PATIENCE,
        async || dock_name(&app.graphql(Some(&alice), docks, json!({})).await.1) == "Renamed dock",
    )
    .await;
    assert_ne!(dock_name(&before), "Renamed dock");
    let (_, _, cached) = names(&app, &alice, None).await;
    assert_eq!(
        project_name(&cached),
        "Project site",
        "still served from the cache"
    );
}

/// Every seeded kind of viewer of `org-0` (four org roles, a second member, two client-portal
/// users, a team-only guest) asks the same documents of a server with the cache on, in both
/// orders: each answer equals what a server without the cache answers them. A shared answer
/// never reaches a viewer with other rights.
#[tokio::test(flavor = "multi_thread")]
async fn a_shared_answer_never_reaches_a_viewer_with_other_rights() {
    let app = fixtures::seeded_with_teamer().await;
    {
        let conn = &mut app.db.owner().await;
        let org = fixtures::find_org(conn, "org-0").await;
        fixtures::member(conn, &org, "org-0-member-2", "member").await;
    }
    let mut config = app.config.clone();
    config.security.response_cache_bytes = 1 << 24;
    let cached = stackgate::server::start(config).await.expect("starts");
    let documents = [
        "{ viewer { organization { projects(first: 50) { nodes { id name client { name }
            team { name } healthSummary { healthy unhealthy }
            resources(first: 20) { nodes { id name status dock { name } } } } } } } }",
        "{ viewer { permissions { projects resources docks settings }
            organization { docks { nodes { id name apiKeyHint } }
            resources(first: 100) { totalCount nodes { id name } } } } }",
        "{ viewer { user { name } organization { teams { name } clients { name } } } }",
    ];
    let mut users = vec![
        "org-0-owner",
        "org-0-admin",
        "org-0-member",
        "org-0-member-2",
        "org-0-viewer",
        "org-0-client-0",
        "org-0-client-1",
        "org-0-teamer",
    ];
    let ask = async |base: String, token: &str, query: &str| -> Value {
        let response = app
            .client
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("sent");
        response.json().await.expect("JSON")
    };
    for round in 0..2 {
        for query in documents {
            for user in &users {
                let token = app.token(user, Some("org-0"));
                let fresh = ask(app.url(""), &token, query).await;
                let served = ask(format!("http://{}", cached.addr), &token, query).await;
                assert_eq!(served, fresh, "round {round}, {user}: {query}");
            }
        }
        users.reverse();
    }
    assert!(
        cached.state.pipeline.response_cache().hits() >= 8,
        "answers came from the cache"
    );
}
