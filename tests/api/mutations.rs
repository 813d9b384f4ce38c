//! Project mutations: validation, codes, and the database's link guarantees under them.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::harness::{TestApp, error_code};

async fn seeded() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    stackgate::devkit::seed::seed(&mut app.db.owner().await, 1)
        .await
        .expect("seed");
    let token = app.token("org-0-owner", Some("org-0"));
    (app, token)
}

const CREATE: &str = "mutation($input: CreateProjectInput!) { createProject(input: $input) { id name slug description client { name } } }";
const LINK: &str = "mutation($p: ID!, $r: ID!) { linkResource(projectId: $p, resourceId: $r) { cursor denormalizedName denormalizedStatus node { id name } } }";
const UNLINK: &str = "mutation($p: ID!, $r: ID!) { unlinkResource(projectId: $p, resourceId: $r) }";

/// The id of an org's first client and of two of its servers, as `token` sees them.
async fn ids(app: &TestApp, token: &str) -> (Value, Value, Value) {
    let (_, body) = app
        .graphql(Some(token), "{ viewer { organization { clients { id } resources(first: 2, kinds: [SERVER]) { nodes { id } } } } }", json!({}))
        .await;
    let org = &body["data"]["viewer"]["organization"];
    (
        org["clients"][0]["id"].clone(),
        org["resources"]["nodes"][0]["id"].clone(),
        org["resources"]["nodes"][1]["id"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn create_update_delete_with_clear_errors() {
    let (app, token) = seeded().await;
    let (client, _, _) = ids(&app, &token).await;
    let input =
        json!({ "name": " Launch ", "slug": "launch", "description": "Q4", "clientId": client });
    let (_, body) = app
        .graphql(Some(&token), CREATE, json!({ "input": input }))
        .await;
    let created = body["data"]["createProject"].clone();
    assert_eq!(
        (created["name"].as_str(), created["client"]["name"].as_str()),
        (Some("Launch"), Some("Client 0")),
        "{body}"
    );

    let (_, dup) = app
        .graphql(
            Some(&token),
            CREATE,
            json!({ "input": { "name": "x", "slug": "launch" } }),
        )
        .await;
    assert_eq!(error_code(&dup), "CONFLICT", "{dup}");
    for bad in [
        json!({ "name": "x", "slug": "Bad Slug" }),
        json!({ "name": "  ", "slug": "ok" }),
        json!({ "name": "x", "slug": "a".repeat(64) }),
    ] {
        let (_, body) = app
            .graphql(Some(&token), CREATE, json!({ "input": bad }))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    let other = app.token("org-1-owner", Some("org-1"));
    let (foreign_client, _, _) = ids(&app, &other).await;
    let (_, body) = app
        .graphql(
            Some(&token),
            CREATE,
            json!({ "input": { "name": "x", "slug": "x", "clientId": foreign_client } }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "another org's client does not exist here: {body}"
    );

    let update = "mutation($id: ID!, $input: UpdateProjectInput!) { updateProject(id: $id, input: $input) { name slug description client { name } } }";
    let (_, body) = app.graphql(Some(&token), update, json!({ "id": created["id"], "input": { "name": "Relaunch", "description": null, "clientId": null } })).await;
    assert_eq!(
        body["data"]["updateProject"],
        json!({ "name": "Relaunch", "slug": "launch", "description": null, "client": null }),
        "{body}"
    );
    let (_, body) = app
        .graphql(
            Some(&other),
            update,
            json!({ "id": created["id"], "input": { "name": "hijack" } }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "another org cannot see it: {body}"
    );

    let delete = "mutation($id: ID!) { deleteProject(id: $id) }";
    let (_, body) = app
        .graphql(Some(&token), delete, json!({ "id": created["id"] }))
        .await;
    assert_eq!(body["data"]["deleteProject"], created["id"]);
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(
        body["data"]["node"],
        Value::Null,
        "a deleted project vanishes"
    );
    let (_, body) = app
        .graphql(
            Some(&token),
            "{ viewer { organization { projects(search: \"launch\") { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["projects"]["totalCount"],
        0
    );
    let (_, body) = app
        .graphql(Some(&token), delete, json!({ "id": created["id"] }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (_, body) = app
        .graphql(
            Some(&token),
            CREATE,
            json!({ "input": { "name": "again", "slug": "launch" } }),
        )
        .await;
    assert!(
        body["data"]["createProject"]["id"].is_string(),
        "a deleted project's slug is free again: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn links_are_checked_and_follow_their_resource() {
    let (app, token) = seeded().await;
    let (_, server, second) = ids(&app, &token).await;
    let (_, body) = app
        .graphql(
            Some(&token),
            CREATE,
            json!({ "input": { "name": "Links", "slug": "links" } }),
        )
        .await;
    let project = body["data"]["createProject"]["id"].clone();

    let (_, body) = app
        .graphql(Some(&token), LINK, json!({ "p": project, "r": server }))
        .await;
    let edge = body["data"]["linkResource"].clone();
    assert_eq!(edge["denormalizedName"], edge["node"]["name"], "{body}");
    let (_, dup) = app
        .graphql(Some(&token), LINK, json!({ "p": project, "r": server }))
        .await;
    assert_eq!(error_code(&dup), "CONFLICT", "{dup}");

    let other = app.token("org-1-owner", Some("org-1"));
    let (_, foreign, _) = ids(&app, &other).await;
    let (_, body) = app
        .graphql(Some(&token), LINK, json!({ "p": project, "r": foreign }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let (_, body) = app
        .graphql(Some(&token), LINK, json!({ "p": project, "r": project }))
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "a project id is no resource: {body}"
    );
    let (_, body) = app
        .graphql(Some(&other), LINK, json!({ "p": project, "r": foreign }))
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "another org cannot link into this project: {body}"
    );

    let name = edge["node"]["name"].as_str().expect("name").to_owned();
    app.db
        .owner()
        .await
        .batch_execute(&format!("update servers set name = 'renamed', status = 'error' where name = '{name}' and org_id = (select id from organizations where slug = 'org-0')"))
        .await
        .expect("rename");
    let query = "query($id: ID!) { node(id: $id) { ... on Project { resources { edges { denormalizedName denormalizedStatus node { name } } } } } }";
    let (_, body) = app
        .graphql(Some(&token), query, json!({ "id": project }))
        .await;
    let link = &body["data"]["node"]["resources"]["edges"][0];
    assert_eq!(
        (
            link["denormalizedName"].as_str(),
            link["denormalizedStatus"].as_str()
        ),
        (Some("renamed"), Some("ERROR")),
        "{body}"
    );

    let (_, body) = app
        .graphql(Some(&token), UNLINK, json!({ "p": project, "r": server }))
        .await;
    assert_eq!(body["data"]["unlinkResource"], true, "{body}");
    let (_, body) = app
        .graphql(Some(&token), UNLINK, json!({ "p": project, "r": server }))
        .await;
    assert_eq!(body["data"]["unlinkResource"], false);
    let (_, body) = app
        .graphql(Some(&token), UNLINK, json!({ "p": project, "r": second }))
        .await;
    assert_eq!(body["data"]["unlinkResource"], false, "never linked");
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_roles_cannot_change_projects() {
    let (app, _) = seeded().await;
    let viewer = app.token("org-0-viewer", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&viewer),
            CREATE,
            json!({ "input": { "name": "x", "slug": "x" } }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let member = app.token("org-0-member", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&member),
            CREATE,
            json!({ "input": { "name": "Member's", "slug": "members" } }),
        )
        .await;
    assert!(
        body["data"]["createProject"]["id"].is_string(),
        "members write projects: {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mutation_outcome_is_audited() {
    let (app, owner) = seeded().await;
    let viewer = app.token("org-0-viewer", Some("org-0"));
    app.graphql(
        Some(&owner),
        CREATE,
        json!({ "input": { "name": "Audited", "slug": "audited" } }),
    )
    .await;
    app.graphql(
        Some(&owner),
        CREATE,
        json!({ "input": { "name": "Again", "slug": "audited" } }),
    )
    .await;
    app.graphql(
        Some(&viewer),
        CREATE,
        json!({ "input": { "name": "Nope", "slug": "nope" } }),
    )
    .await;

    let query = "query($actions: [String!]) { viewer { organization { auditLogs(actions: $actions) {
        totalCount nodes { action result message targetType targetId ipAddress userAgent actor { name } } } } } }";
    let (_, body) = app
        .graphql(
            Some(&owner),
            query,
            json!({ "actions": ["project.create"] }),
        )
        .await;
    let logs = &body["data"]["viewer"]["organization"]["auditLogs"];
    assert_eq!(logs["totalCount"], 3, "{body}");
    let results: Vec<&str> = logs["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["result"].as_str())
        .collect();
    assert_eq!(
        results,
        vec!["denied", "error", "success"],
        "newest first: {body}"
    );
    let denied = &logs["nodes"][0];
    assert_eq!(denied["actor"]["name"], "Org 0 Viewer");
    assert_eq!(denied["ipAddress"], "127.0.0.1");
    let success = &logs["nodes"][2];
    assert!(
        success["targetId"].is_string() && success["targetType"] == "Project",
        "{success}"
    );

    let (_, body) = app.graphql(Some(&viewer), query, json!({})).await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "viewers lack audit READ: {body}"
    );

    use diesel_async::RunQueryDsl;
    let pool = stackgate::db::build_pool(&app.db.url(), 1).expect("pool");
    let org: uuid::Uuid = {
        use diesel::{ExpressionMethods, QueryDsl};
        use stackgate::db::schema::organizations;
        organizations::table
            .filter(organizations::slug.eq("org-0"))
            .select(organizations::id)
            .first(&mut app.db.owner().await)
            .await
            .expect("org")
    };
    let tampered = stackgate::db::Scope {
        org_id: Some(org),
        ..Default::default()
    }
    .transaction(&pool, async |conn| {
        Ok(diesel::sql_query("delete from audit_logs")
            .execute(conn)
            .await?)
    })
    .await;
    assert!(
        format!("{tampered:?}").contains("permission denied"),
        "the server's role cannot erase the log: {tampered:?}"
    );
}
