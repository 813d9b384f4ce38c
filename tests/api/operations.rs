//! Operation services: CRUD behind operations FULL, a configuration that never comes back,
//! team grants, the client portal (which sees none), links to projects, and the audit trail.

use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{TestApp, error_code};

/// A secret that must never appear in a response.
const SECRET: &str = "s3cr3t-9f8e7d-never-shown";

const CREATE: &str = "mutation($name: String!, $config: JSON) {
    createOperationService(input: { name: $name, kind: BACKUP_BUCKET, provider: \"backblaze\",
                                    config: $config }) {
        id name kind provider configHint createdAt updatedAt } }";

const FIELDS: &str = "id name kind provider configHint createdAt updatedAt
    projects { id slug } permissions { team { id name } level grantedAt updatedAt }";

/// Creates a service named `name` in `token`'s organization, with a configuration holding
/// [`SECRET`]; its id.
async fn create(app: &TestApp, token: &str, name: &str) -> Value {
    let config = json!({ "bucket": "backups", "secret_key": SECRET });
    let (_, body) = app
        .graphql(
            Some(token),
            CREATE,
            json!({ "name": name, "config": config }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
    body["data"]["createOperationService"]["id"].clone()
}

/// The services `token` lists in its organization, with every field, and the raw response.
async fn listed(app: &TestApp, token: &str) -> (Vec<Value>, String) {
    let query = format!(
        "{{ viewer {{ organization {{ operationServices(first: 100) {{ totalCount nodes {{ {FIELDS} }} }} }} }} }}"
    );
    let (_, body) = app.graphql(Some(token), &query, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    let list = &body["data"]["viewer"]["organization"]["operationServices"];
    let nodes = list["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(list["totalCount"].as_u64(), Some(nodes.len() as u64));
    (nodes, body.to_string())
}

async fn node(app: &TestApp, token: &str, id: &Value) -> Value {
    let query =
        format!("query($id: ID!) {{ node(id: $id) {{ ... on OperationService {{ {FIELDS} }} }} }}");
    let (_, body) = app.graphql(Some(token), &query, json!({ "id": id })).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(!body.to_string().contains(SECRET), "{body}");
    body["data"]["node"].clone()
}

/// How many operation services the organization `slug` has, as the schema owner counts them.
async fn stored(app: &TestApp, slug: &str) -> i64 {
    let conn = &mut app.db.owner().await;
    let org = fixtures::find_org(conn, slug).await;
    fixtures::count(
        conn,
        "select count(*) as n from operation_services where org_id = $1",
        org.id,
    )
    .await
}

/// The id of the seeded project `slug` of org-0.
async fn project(app: &TestApp, slug: &str) -> Value {
    let conn = &mut app.db.owner().await;
    let org = fixtures::find_org(conn, "org-0").await;
    let id = fixtures::project(conn, &org, slug).await;
    json!(TestApp::global_id("Project", id))
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_keeps_the_configuration_secret_and_is_audited() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let id = create(&app, &owner, "Backups").await;

    let (nodes, text) = listed(&app, &owner).await;
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["id"], id);
    assert_eq!(nodes[0]["kind"], "BACKUP_BUCKET");
    assert_eq!(nodes[0]["provider"], "backblaze");
    assert_eq!(nodes[0]["configHint"], "bucket, secret_key");

    // Encrypted at rest: the stored bytes do not hold the secret.
    {
        let conn = &mut app.db.owner().await;
        let raw = uuid_of(&id);
        let plain = fixtures::count(
            conn,
            "select count(*) as n from operation_services where id = $1 \
               and encrypted_config is not null \
               and position(convert_to('s3cr3t', 'UTF8') in encrypted_config) = 0",
            raw,
        )
        .await;
        assert_eq!(plain, 1, "the configuration is stored encrypted");
    }

    let update = "mutation($id: ID!, $input: UpdateOperationServiceInput!) {
        updateOperationService(id: $id, input: $input) { id name kind provider configHint } }";
    let (_, body) = app
        .graphql(
            Some(&owner),
            update,
            json!({ "id": id, "input": { "name": "Offsite", "kind": "CDN", "provider": null,
                    "config": { "token": SECRET } } }),
        )
        .await;
    assert!(!body.to_string().contains(SECRET), "{body}");
    assert_eq!(
        body["data"]["updateOperationService"],
        json!({ "id": id, "name": "Offsite", "kind": "CDN", "provider": null, "configHint": "token" }),
        "{body}"
    );
    let (_, body) = app
        .graphql(
            Some(&owner),
            update,
            json!({ "id": id, "input": { "config": null } }),
        )
        .await;
    assert_eq!(
        body["data"]["updateOperationService"]["configHint"],
        Value::Null
    );
    assert_eq!(body["data"]["updateOperationService"]["name"], "Offsite");

    // Names are unique; bad input is refused before anything is written.
    create(&app, &owner, "Second").await;
    let (_, body) = app
        .graphql(
            Some(&owner),
            update,
            json!({ "id": id, "input": { "name": "Second" } }),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    for config in [json!("text"), json!({ "bad key": 1 }), json!({})] {
        let (_, body) = app
            .graphql(
                Some(&owner),
                CREATE,
                json!({ "name": "Bad", "config": config }),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    let huge = json!({ "blob": "x".repeat(9000) });
    let (_, body) = app
        .graphql(
            Some(&owner),
            CREATE,
            json!({ "name": "Huge", "config": huge }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(stored(&app, "org-0").await, 2);

    let delete = "mutation($id: ID!) { deleteOperationService(id: $id) }";
    let (_, body) = app.graphql(Some(&owner), delete, json!({ "id": id })).await;
    assert_eq!(body["data"]["deleteOperationService"], id, "{body}");
    assert_eq!(node(&app, &owner, &id).await, Value::Null);
    let (_, body) = app.graphql(Some(&owner), delete, json!({ "id": id })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    assert_eq!(stored(&app, "org-0").await, 1);

    let audit = app
        .audit(
            &owner,
            &[
                "operation_service.create",
                "operation_service.update",
                "operation_service.delete",
            ],
        )
        .await;
    let count = |action: &str, result: &str| {
        audit
            .iter()
            .filter(|(a, r)| a == action && r == result)
            .count()
    };
    assert_eq!(count("operation_service.create", "success"), 2, "{audit:?}");
    assert_eq!(count("operation_service.update", "success"), 2, "{audit:?}");
    assert_eq!(count("operation_service.update", "error"), 1, "{audit:?}");
    assert_eq!(count("operation_service.delete", "success"), 1, "{audit:?}");
    assert_eq!(count("operation_service.delete", "error"), 1, "{audit:?}");
}

fn uuid_of(id: &Value) -> uuid::Uuid {
    let id = id.as_str().expect("an id");
    stackgate::graphql::ids::decode_as(id, "OperationService").expect("a service id")
}

#[tokio::test(flavor = "multi_thread")]
async fn only_operations_full_changes_services() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let id = create(&app, &owner, "Backups").await;
    let team = {
        let conn = &mut app.db.owner().await;
        let team = fixtures::seeded_team(conn, "org-0", "Team 0").await;
        json!(TestApp::global_id("Team", team.id))
    };
    let writes = [
        (
            "mutation { createOperationService(input: { name: \"Mine\", kind: DNS, config: { k: \"v\" } }) { id } }",
            json!({}),
        ),
        (
            "mutation($id: ID!) { updateOperationService(id: $id, input: { name: \"x\" }) { id } }",
            json!({ "id": id }),
        ),
        (
            "mutation($id: ID!) { deleteOperationService(id: $id) }",
            json!({ "id": id }),
        ),
        (
            "mutation($id: ID!, $t: ID!) { grantOperationAccess(operationServiceId: $id, teamId: $t, level: FULL) }",
            json!({ "id": id, "t": team }),
        ),
        (
            "mutation($id: ID!, $t: ID!) { revokeOperationAccess(operationServiceId: $id, teamId: $t) }",
            json!({ "id": id, "t": team }),
        ),
    ];
    let before = crate::isolation::org_digest(&app, "org-0").await;
    for user in ["org-0-member", "org-0-viewer"] {
        let token = app.token(user, Some("org-0"));
        // Both read every service (operations READ), hint aside.
        let (nodes, _) = listed(&app, &token).await;
        assert_eq!(nodes.len(), 1, "{user}");
        assert_eq!(nodes[0]["configHint"], Value::Null, "{user}");
        for (query, vars) in &writes {
            let (_, body) = app.graphql(Some(&token), query, vars.clone()).await;
            assert_eq!(error_code(&body), "FORBIDDEN", "{user}: {query}: {body}");
        }
    }
    assert_eq!(
        crate::isolation::org_digest(&app, "org-0").await,
        before,
        "nothing written"
    );
    let audit = app
        .audit(
            &owner,
            &[
                "operation_service.create",
                "operation_service.update",
                "operation_service.delete",
                "operation_service.grant",
                "operation_service.revoke",
            ],
        )
        .await;
    let denied = audit.iter().filter(|(_, r)| r == "denied").count();
    assert_eq!(denied, 10, "every denial is audited: {audit:?}");

    let (_, body) = app.graphql(None, writes[0].0, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_orgs_services_do_not_exist() {
    let app = fixtures::seeded().await;
    let theirs = create(&app, &app.token("org-1-owner", Some("org-1")), "Theirs").await;
    let owner = app.token("org-0-owner", Some("org-0"));
    assert_eq!(node(&app, &owner, &theirs).await, Value::Null);
    let (nodes, _) = listed(&app, &owner).await;
    assert!(nodes.is_empty());
    let project = project(&app, "project-000").await;
    for (query, vars) in [
        (
            "mutation($id: ID!) { updateOperationService(id: $id, input: { name: \"x\" }) { id } }",
            json!({ "id": theirs }),
        ),
        (
            "mutation($id: ID!) { deleteOperationService(id: $id) }",
            json!({ "id": theirs }),
        ),
        (
            "mutation($p: ID!, $id: ID!) { linkOperationService(projectId: $p, operationServiceId: $id) { id } }",
            json!({ "id": theirs, "p": project }),
        ),
    ] {
        let (_, body) = app.graphql(Some(&owner), query, vars).await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{query}: {body}");
    }
    assert_eq!(stored(&app, "org-1").await, 1);
    let (nodes, _) = listed(&app, &app.token("org-1-owner", Some("org-1"))).await;
    assert_eq!(nodes[0]["name"], "Theirs", "unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_sees_only_the_services_granted_to_it() {
    let app = fixtures::seeded_with_teamer().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let granted = create(&app, &owner, "Granted").await;
    let other = create(&app, &owner, "Other").await;
    let team = {
        let conn = &mut app.db.owner().await;
        let team = fixtures::seeded_team(conn, "org-0", "Team 0").await;
        json!(TestApp::global_id("Team", team.id))
    };
    let teamer = app.token("org-0-teamer", Some("org-0"));
    let (nodes, _) = listed(&app, &teamer).await;
    assert!(nodes.is_empty(), "nothing granted yet: {nodes:?}");

    let grant = "mutation($id: ID!, $t: ID!, $l: AccessLevel!) {
        grantOperationAccess(operationServiceId: $id, teamId: $t, level: $l) }";
    let (_, body) = app
        .graphql(
            Some(&owner),
            grant,
            json!({ "id": granted, "t": team, "l": "READ" }),
        )
        .await;
    assert_eq!(body["data"]["grantOperationAccess"], true, "{body}");
    let (_, body) = app
        .graphql(
            Some(&owner),
            grant,
            json!({ "id": granted, "t": team, "l": "NONE" }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");

    let (nodes, text) = listed(&app, &teamer).await;
    assert!(!text.contains(SECRET));
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["id"], granted);
    assert_eq!(
        nodes[0]["configHint"],
        Value::Null,
        "a READ grant shows no hint"
    );
    assert_eq!(node(&app, &teamer, &other).await, Value::Null);
    let seen = node(&app, &owner, &granted).await;
    assert_eq!(seen["permissions"][0]["team"]["name"], "Team 0", "{seen}");
    assert_eq!(seen["permissions"][0]["level"], "READ");

    // A team role with operations FULL and a FULL grant shows the hint (the teamer's `member`
    // role has operations READ only).
    let (_, body) = app
        .graphql(
            Some(&owner),
            grant,
            json!({ "id": granted, "t": team, "l": "FULL" }),
        )
        .await;
    assert_eq!(body["data"]["grantOperationAccess"], true);
    assert_eq!(
        node(&app, &teamer, &granted).await["configHint"],
        Value::Null
    );
    {
        let conn = &mut app.db.owner().await;
        fixtures::leave_teams(conn, "org-0-teamer").await;
        let team = fixtures::seeded_team(conn, "org-0", "Team 0").await;
        let teamer = fixtures::id_of(
            conn,
            "select id from users where external_id = 'org-0-teamer'",
        )
        .await;
        fixtures::join_team(conn, &team, teamer, "admin").await;
    }
    app.settle_events().await;
    assert_eq!(
        node(&app, &teamer, &granted).await["configHint"],
        "bucket, secret_key"
    );

    let revoke = "mutation($id: ID!, $t: ID!) { revokeOperationAccess(operationServiceId: $id, teamId: $t) }";
    let (_, body) = app
        .graphql(Some(&owner), revoke, json!({ "id": granted, "t": team }))
        .await;
    assert_eq!(body["data"]["revokeOperationAccess"], true, "{body}");
    let (_, body) = app
        .graphql(Some(&owner), revoke, json!({ "id": granted, "t": team }))
        .await;
    assert_eq!(body["data"]["revokeOperationAccess"], false, "{body}");
    let (nodes, _) = listed(&app, &teamer).await;
    assert!(nodes.is_empty(), "revoked: {nodes:?}");
    let audit = app
        .audit(
            &owner,
            &["operation_service.grant", "operation_service.revoke"],
        )
        .await;
    assert_eq!(
        audit.iter().filter(|(_, r)| r == "success").count(),
        4,
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn services_link_to_projects_and_the_client_portal_sees_none() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let service = create(&app, &owner, "Backups").await;
    // Client 0's project.
    let project = project(&app, "project-000").await;
    let link = "mutation($p: ID!, $s: ID!) {
        linkOperationService(projectId: $p, operationServiceId: $s) { id operationServices { id name } } }";
    let (_, body) = app
        .graphql(Some(&owner), link, json!({ "p": project, "s": service }))
        .await;
    assert_eq!(
        body["data"]["linkOperationService"],
        json!({ "id": project, "operationServices": [{ "id": service, "name": "Backups" }] }),
        "{body}"
    );
    let (_, body) = app
        .graphql(Some(&owner), link, json!({ "p": project, "s": service }))
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(
        node(&app, &owner, &service).await["projects"],
        json!([{ "id": project, "slug": "project-000" }])
    );
    // Lists of projects load their services (one batch per level).
    let query = "{ viewer { organization { projects(first: 100) { nodes { slug
        operationServices { name projects { slug } } } } } } }";
    let (_, body) = app.graphql(Some(&owner), query, json!({})).await;
    let with: Vec<&Value> = body["data"]["viewer"]["organization"]["projects"]["nodes"]
        .as_array()
        .expect("projects")
        .iter()
        .filter(|p| !p["operationServices"].as_array().is_some_and(Vec::is_empty))
        .collect();
    assert_eq!(
        with,
        vec![&json!({ "slug": "project-000", "operationServices": [
            { "name": "Backups", "projects": [{ "slug": "project-000" }] }] })],
        "{body}"
    );

    // The client portal: the client's project shows, its services do not.
    let client = app.token("org-0-client-0", Some("org-0"));
    let (nodes, _) = listed(&app, &client).await;
    assert!(nodes.is_empty(), "{nodes:?}");
    assert_eq!(node(&app, &client, &service).await, Value::Null);
    let (_, body) = app
        .graphql(
            Some(&client),
            "query($id: ID!) { node(id: $id) { ... on Project { slug operationServices { id } } } }",
            json!({ "id": project }),
        )
        .await;
    assert_eq!(
        body["data"]["node"],
        json!({ "slug": "project-000", "operationServices": [] }),
        "{body}"
    );
    let (_, body) = app
        .graphql(Some(&client), link, json!({ "p": project, "s": service }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // A viewer may not link or unlink.
    let unlink = "mutation($p: ID!, $s: ID!) { unlinkOperationService(projectId: $p, operationServiceId: $s) }";
    let viewer = app.token("org-0-viewer", Some("org-0"));
    let (_, body) = app
        .graphql(Some(&viewer), unlink, json!({ "p": project, "s": service }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let (_, body) = app
        .graphql(Some(&owner), unlink, json!({ "p": project, "s": service }))
        .await;
    assert_eq!(body["data"]["unlinkOperationService"], true, "{body}");
    let (_, body) = app
        .graphql(Some(&owner), unlink, json!({ "p": project, "s": service }))
        .await;
    assert_eq!(body["data"]["unlinkOperationService"], false, "{body}");
    assert_eq!(node(&app, &owner, &service).await["projects"], json!([]));
    let audit = app
        .audit(
            &owner,
            &[
                "project.link_operation_service",
                "project.unlink_operation_service",
            ],
        )
        .await;
    let results: Vec<&str> = audit.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        results,
        ["success", "error", "denied", "success", "success"],
        "{audit:?}"
    );
}

/// Renames every operation service of org-0 without publishing an event.
async fn rename_services_quietly(app: &TestApp, name: &str) {
    use diesel_async::SimpleAsyncConnection;
    app.db
        .owner()
        .await
        .batch_execute(&format!(
            "set session_replication_role = replica;
             update operation_services set name = '{name}'
              where org_id = (select id from organizations where slug = 'org-0');
             set session_replication_role = origin;"
        ))
        .await
        .expect("quiet rename");
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_answers_follow_service_changes_and_links_only() {
    use crate::harness::wait::{PATIENCE, wait_until};
    let app = TestApp::spawn_with(|config| config.security.response_cache_bytes = 1 << 20).await;
    stackgate::devkit::seed::seed(&mut app.db.owner().await, 1)
        .await
        .expect("seed");
    let owner = app.token("org-0-owner", Some("org-0"));
    let service = create(&app, &owner, "Backups").await;
    app.settle_events().await;
    let services = "{ viewer { organization { operationServices { nodes { name } } } } }";
    let first_name = |body: &Value| {
        body["data"]["viewer"]["organization"]["operationServices"]["nodes"][0]["name"].clone()
    };
    let (_, body) = app.graphql(Some(&owner), services, json!({})).await;
    assert_eq!(first_name(&body), "Backups");

    // A change that touches nothing the answer read leaves it cached.
    rename_services_quietly(&app, "Quietly").await;
    let (_, body) = app
        .graphql(
            Some(&owner),
            "mutation($id: ID!) { updateProject(id: $id, input: { name: \"Renamed\" }) { id } }",
            json!({ "id": project(&app, "project-001").await }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    app.settle_events().await;
    let (_, body) = app.graphql(Some(&owner), services, json!({})).await;
    assert_eq!(first_name(&body), "Backups", "still served from the cache");

    // Linking the service changes it: the answer is read afresh.
    let (_, body) = app
        .graphql(
            Some(&owner),
            "mutation($p: ID!, $s: ID!) { linkOperationService(projectId: $p, operationServiceId: $s) { id } }",
            json!({ "p": project(&app, "project-000").await, "s": service }),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    wait_until("the services answer forgotten", PATIENCE, async || {
        first_name(&app.graphql(Some(&owner), services, json!({})).await.1) == "Quietly"
    })
    .await;
}
