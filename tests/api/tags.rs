//! Resource tags (`setResourceTags`) and the filters every resource list takes, checked against
//! the database's own answer.

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures;
use crate::graph::traced;
use crate::harness::{TestApp, error_code};

const LIST: &str = "query($kinds: [ResourceKind!], $filter: ResourceFilter) {
    viewer { organization { resources(first: 500, kinds: $kinds, filter: $filter) {
        totalCount nodes { __typename id name provider tags } } } } }";

/// The names and total of org-0's resources under `filter` (and `kinds`), as the owner sees them.
async fn listed(app: &TestApp, kinds: Value, filter: Value) -> (Vec<String>, i64) {
    let token = app.token("org-0-owner", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&token),
            LIST,
            json!({ "kinds": kinds, "filter": filter }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let list = &body["data"]["viewer"]["organization"]["resources"];
    let names = list["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["name"].as_str().expect("name").to_owned())
        .collect();
    (names, list["totalCount"].as_i64().expect("total"))
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// How many of org-0's resources `condition` (over `r`) keeps, asked of the database directly.
async fn truth(app: &TestApp, condition: &str, bind: &str) -> i64 {
    let conn = &mut app.db.owner().await;
    let sql = format!(
        "select count(*) as n from (select id, org_id, dock_id, name, provider, tags from servers \
           union all select id, org_id, dock_id, name, provider, tags from web_services \
           union all select id, org_id, dock_id, name, provider, tags from domains \
           union all select id, org_id, dock_id, name, provider, tags from databases) r \
         join organizations o on o.id = r.org_id where o.slug = 'org-0' and {condition}"
    );
    diesel::sql_query(sql)
        .bind::<Text, _>(bind)
        .get_result::<N>(conn)
        .await
        .expect("count")
        .n
}

/// `(id, name)` of org-0's first resources in list order.
async fn first_resources(app: &TestApp, n: usize) -> Vec<(String, String)> {
    let token = app.token("org-0-owner", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&token),
            "{ viewer { organization { resources(first: 50) { nodes { id name } } } } }",
            json!({}),
        )
        .await;
    body["data"]["viewer"]["organization"]["resources"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .take(n)
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_owned(),
                r["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect()
}

async fn set_tags(app: &TestApp, user: &str, org: &str, id: &str, tags: Value) -> Value {
    let token = app.token(user, Some(org));
    let (_, body) = app
        .graphql(
            Some(&token),
            "mutation($id: ID!, $tags: [String!]!) {
               setResourceTags(resourceId: $id, tags: $tags) { id tags } }",
            json!({ "id": id, "tags": tags }),
        )
        .await;
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_are_set_sorted_and_filter_every_list() {
    let app = fixtures::seeded().await;
    let picked = first_resources(&app, 2).await;
    let ((a, a_name), (b, b_name)) = (picked[0].clone(), picked[1].clone());

    // Asked (and cached) before any tag exists: nothing.
    assert_eq!(
        listed(&app, json!(null), json!({"tags": ["env:prod"]}))
            .await
            .1,
        0
    );

    let body = set_tags(
        &app,
        "org-0-owner",
        "org-0",
        &a,
        json!(["team-a", "env:prod", "team-a"]),
    )
    .await;
    assert_eq!(
        body["data"]["setResourceTags"]["tags"],
        json!(["env:prod", "team-a"]),
        "{body}"
    );
    let body = set_tags(&app, "org-0-owner", "org-0", &b, json!(["env:prod"])).await;
    assert!(body.get("errors").is_none(), "{body}");

    // The tag change reaches the cached answer, and `tags` filters by all of its values.
    let (names, total) = listed(&app, json!(null), json!({"tags": ["env:prod"]})).await;
    let mut expected = vec![a_name.clone(), b_name.clone()];
    expected.sort();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!((sorted, total), (expected, 2));
    let (names, _) = listed(&app, json!(null), json!({"tags": ["env:prod", "team-a"]})).await;
    assert_eq!(names, vec![a_name.clone()]);
    assert_eq!(truth(&app, "r.tags @> array[$1]", "team-a").await, 1);

    // Every list takes the filter: the resource's dock, and a project it is linked to.
    let token = app.token("org-0-owner", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($id: ID!) { node(id: $id) { ... on Server { dock { id } } ... on WebService { dock { id } }
               ... on Domain { dock { id } } ... on Database { dock { id } } } }",
            json!({ "id": a }),
        )
        .await;
    let dock = body["data"]["node"]["dock"]["id"]
        .as_str()
        .expect("dock")
        .to_owned();
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($id: ID!) { node(id: $id) { ... on Dock {
               resources(first: 500, filter: { tags: [\"team-a\"] }) { totalCount nodes { name } } } } }",
            json!({ "id": dock }),
        )
        .await;
    assert_eq!(body["data"]["node"]["resources"]["totalCount"], 1, "{body}");
    assert_eq!(
        body["data"]["node"]["resources"]["nodes"][0]["name"],
        a_name
    );

    let org = fixtures::find_org(&mut app.db.owner().await, "org-0").await;
    let project = fixtures::project(&mut app.db.owner().await, &org, "tagged").await;
    let (kind, uuid) = stackgate::graphql::ids::decode_resource(&a).expect("resource id");
    fixtures::link(
        &mut app.db.owner().await,
        &org,
        project,
        kind.as_str(),
        uuid,
    )
    .await;
    let (kind, uuid) = stackgate::graphql::ids::decode_resource(&b).expect("resource id");
    fixtures::link(
        &mut app.db.owner().await,
        &org,
        project,
        kind.as_str(),
        uuid,
    )
    .await;
    app.settle_events().await;
    let project_id = stackgate::graphql::ids::encode("Project", project);
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($id: ID!) { node(id: $id) { ... on Project {
               all: resources { totalCount }
               team: resources(filter: { tags: [\"team-a\"] }) { totalCount nodes { name } } } } }",
            json!({ "id": project_id }),
        )
        .await;
    let node = &body["data"]["node"];
    assert_eq!(
        (
            node["all"]["totalCount"].as_i64(),
            node["team"]["totalCount"].as_i64()
        ),
        (Some(2), Some(1)),
        "{body}"
    );
    assert_eq!(node["team"]["nodes"][0]["name"], a_name);

    // Each change is audited; an empty list clears.
    let audited = fixtures::count(
        &mut app.db.owner().await,
        "select count(*) as n from audit_logs where action = 'resource.set_tags' \
           and result = 'success' and target_id = $1",
        stackgate::graphql::ids::decode_resource(&b).expect("id").1,
    )
    .await;
    assert_eq!(audited, 1);
    let body = set_tags(&app, "org-0-owner", "org-0", &b, json!([])).await;
    assert_eq!(body["data"]["setResourceTags"]["tags"], json!([]), "{body}");
    assert_eq!(
        listed(&app, json!(null), json!({"tags": ["env:prod"]}))
            .await
            .0,
        vec![a_name]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_agree_with_the_database() {
    let app = fixtures::seeded().await;
    // Providers, by the provider of the first resource.
    let token = app.token("org-0-owner", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&token),
            "{ viewer { organization { docks(first: 10) { nodes { id provider } } } } }",
            json!({}),
        )
        .await;
    let docks = body["data"]["viewer"]["organization"]["docks"]["nodes"]
        .as_array()
        .expect("docks")
        .clone();
    assert!(docks.len() >= 2, "{body}");
    for dock in &docks {
        let provider = dock["provider"].as_str().expect("provider");
        let by_provider = listed(
            &app,
            json!(null),
            json!({"providers": [provider.to_uppercase()]}),
        )
        .await
        .1;
        assert_eq!(
            by_provider,
            truth(&app, "r.provider = $1", provider).await,
            "{provider}"
        );
        assert!(by_provider > 0);
        let id = dock["id"].as_str().expect("id");
        let uuid = stackgate::graphql::ids::decode_as(id, "Dock").expect("dock id");
        let by_dock = listed(&app, json!(null), json!({"docks": [id]})).await.1;
        assert_eq!(
            by_dock,
            truth(&app, "r.dock_id = $1::uuid", &uuid.to_string()).await
        );
    }

    // Name search ignores case; `%` and `_` are matched literally, not as wildcards.
    let (names, total) = listed(&app, json!(null), json!({"search": "SERVER-00"})).await;
    assert_eq!(
        total,
        truth(&app, "r.name ilike '%' || $1 || '%'", "server-00").await
    );
    assert!(total > 0 && names.iter().all(|n| n.contains("server-00")));
    assert_eq!(listed(&app, json!(null), json!({"search": "%"})).await.1, 0);
    assert_eq!(
        listed(&app, json!(null), json!({"search": "server_"}))
            .await
            .1,
        0
    );

    // Arguments and `filter` must both hold.
    let servers = truth(&app, "r.id in (select id from servers) and $1 = $1", "").await;
    assert_eq!(
        listed(
            &app,
            json!(["SERVER"]),
            json!({"kinds": ["SERVER", "DOMAIN"]})
        )
        .await
        .1,
        servers
    );
    assert_eq!(
        listed(&app, json!(["DOMAIN"]), json!({"kinds": ["SERVER"]}))
            .await
            .1,
        0
    );

    // Another tenant's dock id matches nothing (and tells nothing).
    let other = app.token("org-1-owner", Some("org-1"));
    let (_, body) = app
        .graphql(
            Some(&other),
            "{ viewer { organization { docks(first: 1) { nodes { id } } } } }",
            json!({}),
        )
        .await;
    let foreign = body["data"]["viewer"]["organization"]["docks"]["nodes"][0]["id"].clone();
    assert_eq!(
        listed(&app, json!(null), json!({"docks": [foreign]}))
            .await
            .1,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_health_filter_follows_health_transitions() {
    let app = fixtures::seeded().await;
    let conn = &mut app.db.owner().await;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = SqlUuid)]
        org_id: Uuid,
        #[diesel(sql_type = SqlUuid)]
        dock_id: Uuid,
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let row: Row = diesel::sql_query(
        "select s.org_id, s.dock_id, s.id from servers s join organizations o on o.id = s.org_id \
         where o.slug = 'org-0' and s.health_state <> 'unhealthy' order by s.name limit 1",
    )
    .get_result(conn)
    .await
    .expect("server");
    let before = listed(&app, json!(null), json!({"health": ["UNHEALTHY"]}))
        .await
        .1;
    fixtures::health_transition(
        conn,
        (row.org_id, row.dock_id, row.id),
        ("healthy", "unhealthy"),
    )
    .await;
    app.settle_events().await;
    let after = listed(&app, json!(null), json!({"health": ["UNHEALTHY"]}))
        .await
        .1;
    assert_eq!(
        after,
        before + 1,
        "a cached health-filtered list saw the transition"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_are_refused_without_permission_across_tenants_and_when_malformed() {
    let app = fixtures::seeded().await;
    let (a, _) = first_resources(&app, 1).await.remove(0);
    let uuid = stackgate::graphql::ids::decode_resource(&a).expect("id").1;
    let stored = async || {
        fixtures::count(
            &mut app.db.owner().await,
            "select count(*) as n from servers where id = $1 and cardinality(tags) > 0",
            uuid,
        )
        .await
            + fixtures::count(
                &mut app.db.owner().await,
                "select count(*) as n from (select id, tags from web_services union all \
                 select id, tags from domains union all select id, tags from databases) r \
                 where id = $1 and cardinality(tags) > 0",
                uuid,
            )
            .await
    };

    let body = set_tags(&app, "org-0-viewer", "org-0", &a, json!(["x"])).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = set_tags(&app, "org-0-member", "org-0", &a, json!(["x"])).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = set_tags(&app, "org-1-owner", "org-1", &a, json!(["x"])).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let body = app
        .graphql(
            None,
            "mutation { setResourceTags(resourceId: \"x\", tags: []) { id } }",
            json!({}),
        )
        .await
        .1;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(stored().await, 0, "nothing was written");

    for bad in [
        json!(["has space"]),
        json!([""]),
        json!(["x".repeat(65)]),
        json!(["é"]),
    ] {
        let body = set_tags(&app, "org-0-owner", "org-0", &a, bad.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{bad}: {body}");
    }
    let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
    let body = set_tags(&app, "org-0-owner", "org-0", &a, json!(many)).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let huge: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
    let body = set_tags(&app, "org-0-owner", "org-0", &a, json!(huge)).await;
    assert!(
        body.get("errors").is_some() && body["data"].is_null(),
        "a huge list is refused: {}",
        &body.to_string()[..200.min(body.to_string().len())]
    );
    assert_eq!(stored().await, 0, "nothing was written");

    // Filters are bounded too.
    let token = app.token("org-0-owner", Some("org-0"));
    let providers: Vec<String> = (0..51).map(|i| format!("p{i}")).collect();
    for filter in [
        json!({"providers": providers}),
        json!({"search": "s".repeat(101)}),
        json!({"tags": ["bad tag"]}),
    ] {
        let (_, body) = app
            .graphql(Some(&token), LIST, json!({ "filter": filter }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
}

/// A filter that keeps every row costs exactly the statements of no filter: the conditions
/// ride in each list's one statement, at any scale. (One list per request: sibling lists resolve
/// concurrently, and how their row loads batch would vary from run to run.)
#[tokio::test(flavor = "multi_thread")]
async fn a_filter_adds_no_statement() {
    let lists = [
        "resources(first: 100{f}) { totalCount nodes { name dock { name } } }",
        "docks(first: 10) { nodes { resources(first: 20{f}) { nodes { name } } } }",
        "projects(first: 20) { nodes { resources(first: 20{f}) { nodes { name } } } }",
    ];
    for scale in [1, 3] {
        let app = fixtures::seeded_at(scale).await;
        let token = app.token("org-0-owner", Some("org-0"));
        let (_, body) = app
            .graphql(
                Some(&token),
                "{ viewer { organization { docks(first: 50) { nodes { id provider } } } } }",
                json!({}),
            )
            .await;
        let docks = body["data"]["viewer"]["organization"]["docks"]["nodes"]
            .as_array()
            .expect("docks")
            .clone();
        let ids: Vec<&Value> = docks.iter().map(|d| &d["id"]).collect();
        let providers: Vec<&Value> = docks.iter().map(|d| &d["provider"]).collect();
        let filter = format!(
            ", filter: {{ tags: [], docks: {}, providers: {}, \
               status: [ACTIVE, PROVISIONING, STOPPED, ERROR, DELETED, UNKNOWN], \
               health: [HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN] }}",
            json!(ids),
            json!(providers)
        );
        for list in lists {
            let query = |f: &str| {
                format!(
                    "{{ viewer {{ organization {{ {} }} }} }}",
                    list.replace("{f}", f)
                )
            };
            let (plain, unfiltered) = traced(&app, &token, &query(""), json!({})).await;
            assert!(plain.get("errors").is_none(), "{plain}");
            let (body, filtered) = traced(&app, &token, &query(&filter), json!({})).await;
            assert!(body.get("errors").is_none(), "{body}");
            assert_eq!(body["data"], plain["data"], "the filter keeps every row");
            assert!(unfiltered.is_some_and(|n| n <= 8), "{unfiltered:?}: {list}");
            assert_eq!(filtered, unfiltered, "scale {scale}: {list}");
        }
    }
}
