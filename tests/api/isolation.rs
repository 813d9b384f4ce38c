//! Tenant isolation, generated from the schema: every `Node` type (from introspection) and every
//! mutation taking an id is tried by `org-0` with `org-1`'s ids. Nothing is visible, nothing
//! changes.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{TestApp, error_code};

/// The seed, with a notification channel and an alert (so a delivery) in `org-1`.
async fn seeded() -> TestApp {
    let app = fixtures::seeded().await;
    let conn = &mut app.db.owner().await;
    diesel::sql_query(
        "insert into notification_channels (org_id, name, kind, email_to) \
         select id, 'ops', 'email', 'ops@example.invalid' from organizations where slug = 'org-1'",
    )
    .execute(conn)
    .await
    .expect("channel");
    let server = fixtures::id_of(
        conn,
        "select s.id from servers s join organizations o on o.id = s.org_id \
         where o.slug = 'org-1' limit 1",
    )
    .await;
    fixtures::alert(conn, server, "critical", "seeded").await;
    fixtures::action_run(conn, server).await;
    app
}

/// One id of every type org-1's owner can see, by GraphQL type name (an invitation of org-1,
/// to someone in no organization, and an operation service are made first).
async fn ids_of_org_1(app: &TestApp) -> BTreeMap<String, String> {
    let (_, body) = app
        .graphql(
            Some(&app.token("org-1-owner", Some("org-1"))),
            "mutation { createInvitation(input: { email: \"invitee@example.invalid\" }) { id } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (_, body) = app
        .graphql(
            Some(&app.token("org-1-owner", Some("org-1"))),
            "mutation { createOperationService(input: { name: \"Theirs\", kind: DNS,
                config: { token: \"t\" } }) { id } }",
            json!({}),
        )
        .await;
    assert!(body.get("errors").is_none(), "{body}");
    let query = "{ viewer { user { id } organization { id invitations { id }
        teams { id } clients { id } members { user { id } }
        projects(first: 1) { nodes { id } }
        docks(first: 1) { nodes { id syncRuns(first: 1) { nodes { id } } } }
        resources(first: 500) { nodes { __typename id ... on Resource { actionRuns(first: 1) { id } } } }
        alerts(first: 1) { nodes { id } }
        operationServices(first: 1) { nodes { id } }
        notificationChannels(first: 1) { nodes { id deliveries(first: 1) { nodes { id } } } } } } }";
    let (_, body) = app
        .graphql(
            Some(&app.token("org-1-owner", Some("org-1"))),
            query,
            json!({}),
        )
        .await;
    let org = &body["data"]["viewer"]["organization"];
    let mut ids = BTreeMap::new();
    let mut put = |type_name: &str, id: &Value| {
        if let Some(id) = id.as_str() {
            ids.entry(type_name.to_owned())
                .or_insert_with(|| id.to_owned());
        }
    };
    put("Organization", &org["id"]);
    put("User", &body["data"]["viewer"]["user"]["id"]);
    put("Team", &org["teams"][0]["id"]);
    put("Client", &org["clients"][0]["id"]);
    put("Project", &org["projects"]["nodes"][0]["id"]);
    put("Dock", &org["docks"]["nodes"][0]["id"]);
    put("Alert", &org["alerts"]["nodes"][0]["id"]);
    put("Invitation", &org["invitations"][0]["id"]);
    let channel = &org["notificationChannels"]["nodes"][0];
    put("NotificationChannel", &channel["id"]);
    put(
        "NotificationDelivery",
        &channel["deliveries"]["nodes"][0]["id"],
    );
    put(
        "OperationService",
        &org["operationServices"]["nodes"][0]["id"],
    );
    put(
        "SyncRun",
        &org["docks"]["nodes"][0]["syncRuns"]["nodes"][0]["id"],
    );
    for resource in org["resources"]["nodes"].as_array().into_iter().flatten() {
        put(
            resource["__typename"].as_str().unwrap_or(""),
            &resource["id"],
        );
        put("ActionRun", &resource["actionRuns"][0]["id"]);
    }
    ids
}

/// The possible types of the `Node` interface, read from the served schema.
async fn node_types(app: &TestApp, token: &str) -> Vec<String> {
    let (_, body) = app
        .graphql(
            Some(token),
            "{ __type(name: \"Node\") { possibleTypes { name } } }",
            json!({}),
        )
        .await;
    body["data"]["__type"]["possibleTypes"]
        .as_array()
        .expect("Node has possible types")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

#[derive(QueryableByName)]
struct Digest {
    #[diesel(sql_type = Text)]
    digest: String,
}

/// A digest of every org-1 row of every tenant table (as the owner, past row-level security),
/// the audit log aside (denials are written there on purpose).
pub async fn org_1_digest(app: &TestApp) -> String {
    org_digest(app, "org-1").await
}

/// A digest of every row of the organization `slug` in every tenant table (as the owner, past
/// row-level security), the audit log and the event outbox (which the relay empties) aside.
pub async fn org_digest(app: &TestApp, slug: &str) -> String {
    let mut conn = app.db.owner().await;
    let tables: Vec<Digest> = diesel::sql_query(
        "select c.relname::text as digest from pg_class c join pg_attribute a on a.attrelid = c.oid \
         where a.attname = 'org_id' and c.relkind = 'r' and c.relnamespace = 'public'::regnamespace \
         and c.relname not in ('audit_logs', 'event_outbox') order by 1",
    )
    .load(&mut conn)
    .await
    .expect("tables");
    let mut digest = String::new();
    for table in tables {
        let sql = format!(
            "select md5(coalesce(string_agg(x::text, ',' order by x::text), '')) as digest from {} x \
             where org_id = (select id from organizations where slug = $1)",
            table.digest
        );
        let row: Digest = diesel::sql_query(sql)
            .bind::<Text, _>(slug)
            .get_result(&mut conn)
            .await
            .expect("digest");
        digest.push_str(&format!("{}={} ", table.digest, row.digest));
    }
    // The organization's own row (it has no org_id).
    let row: Digest = diesel::sql_query(
        "select md5(x::text) as digest from organizations x where slug = 'org-1'",
    )
    .get_result(&mut conn)
    .await
    .expect("digest");
    digest.push_str(&format!("organizations={}", row.digest));
    digest
}

#[tokio::test(flavor = "multi_thread")]
async fn no_node_of_another_org_is_visible() {
    let app = seeded().await;
    let token = app.token("org-0-owner", Some("org-0"));
    let theirs = ids_of_org_1(&app).await;
    let types = node_types(&app, &token).await;
    let missing: Vec<&String> = types.iter().filter(|t| !theirs.contains_key(*t)).collect();
    assert!(
        missing.is_empty(),
        "the matrix needs an org-1 id of every Node type; add: {missing:?}"
    );
    let before = org_1_digest(&app).await;
    for (type_name, id) in &theirs {
        let (_, body) = app
            .graphql(
                Some(&token),
                "query($id: ID!) { node(id: $id) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(
            body,
            json!({ "data": { "node": null } }),
            "{type_name} of org-1 is visible to org-0"
        );
    }
    let all: Vec<&String> = theirs.values().collect();
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": all }),
        )
        .await;
    assert!(
        body["data"]["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(Value::is_null),
        "{body}"
    );
    assert_eq!(org_1_digest(&app).await, before);
}

/// Every mutation with an `ID` argument, as the served schema lists them.
async fn mutations_taking_ids(app: &TestApp, token: &str) -> Vec<String> {
    let query = "{ __schema { mutationType { fields { name args { type { name ofType { name ofType { name } } } } } } } }";
    let (_, body) = app.graphql(Some(token), query, json!({})).await;
    let fields = body["data"]["__schema"]["mutationType"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let is_id = |t: &Value| {
        [
            &t["name"],
            &t["ofType"]["name"],
            &t["ofType"]["ofType"]["name"],
        ]
        .iter()
        .any(|n| n.as_str() == Some("ID"))
    };
    fields
        .iter()
        .filter(|f| {
            f["args"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| is_id(&a["type"]))
        })
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_mutation_reaches_into_another_org() {
    let app = seeded().await;
    let token = app.token("org-0-owner", Some("org-0"));
    let theirs = ids_of_org_1(&app).await;
    let org_1 = app.token("org-1-owner", Some("org-1"));
    let (_, body) = app
        .graphql(
            Some(&org_1),
            "{ viewer { organization { roles { id } } } }",
            json!({}),
        )
        .await;
    let role = body["data"]["viewer"]["organization"]["roles"][0]["id"].clone();
    let (_, body) = app
        .graphql(
            Some(&org_1),
            "mutation { createApiKey(name: \"theirs\") { apiKey { id } } }",
            json!({}),
        )
        .await;
    let key = body["data"]["createApiKey"]["apiKey"]["id"].clone();
    let id = |t: &str| json!(theirs[t]);

    let matrix: Vec<(&str, &str, Value)> = vec![
        (
            "updateProject",
            "mutation($a: ID!) { updateProject(id: $a, input: { name: \"x\" }) { id } }",
            json!({ "a": id("Project") }),
        ),
        (
            "deleteProject",
            "mutation($a: ID!) { deleteProject(id: $a) }",
            json!({ "a": id("Project") }),
        ),
        (
            "linkResource",
            "mutation($a: ID!, $b: ID!) { linkResource(projectId: $a, resourceId: $b) { cursor } }",
            json!({ "a": id("Project"), "b": id("Server") }),
        ),
        (
            "unlinkResource",
            "mutation($a: ID!, $b: ID!) { unlinkResource(projectId: $a, resourceId: $b) }",
            json!({ "a": id("Project"), "b": id("Server") }),
        ),
        (
            "addTeamMember",
            "mutation($a: ID!, $b: ID!, $c: ID!) { addTeamMember(teamId: $a, userId: $b, roleId: $c) { id } }",
            json!({ "a": id("Team"), "b": id("User"), "c": role }),
        ),
        (
            "addClientMember",
            "mutation($a: ID!, $b: ID!) { addClientMember(clientId: $a, userId: $b) { id } }",
            json!({ "a": id("Client"), "b": id("User") }),
        ),
        (
            "setMemberRole",
            "mutation($a: ID!, $b: ID!) { setMemberRole(userId: $a, roleId: $b) { role } }",
            json!({ "a": id("User"), "b": role }),
        ),
        (
            "removeMember",
            "mutation($a: ID!) { removeMember(userId: $a) }",
            json!({ "a": id("User") }),
        ),
        (
            "grantDockAccess",
            "mutation($a: ID!, $b: ID!) { grantDockAccess(dockId: $a, teamId: $b, level: FULL) }",
            json!({ "a": id("Dock"), "b": id("Team") }),
        ),
        (
            "revokeDockAccess",
            "mutation($a: ID!, $b: ID!) { revokeDockAccess(dockId: $a, teamId: $b) }",
            json!({ "a": id("Dock"), "b": id("Team") }),
        ),
        (
            "revokeApiKey",
            "mutation($a: ID!) { revokeApiKey(id: $a) }",
            json!({ "a": key }),
        ),
        (
            "updateDockCredentials",
            "mutation($a: ID!) { updateDockCredentials(id: $a, apiKey: \"k\") { id } }",
            json!({ "a": id("Dock") }),
        ),
        (
            "deleteDock",
            "mutation($a: ID!) { deleteDock(id: $a) }",
            json!({ "a": id("Dock") }),
        ),
        (
            "syncDock",
            "mutation($a: ID!) { syncDock(id: $a) { id } }",
            json!({ "a": id("Dock") }),
        ),
        (
            "setResourceTags",
            "mutation($a: ID!) { setResourceTags(resourceId: $a, tags: [\"x\"]) { id } }",
            json!({ "a": id("Server") }),
        ),
        (
            "performResourceAction",
            "mutation($a: ID!) { performResourceAction(resourceId: $a, action: REBOOT) { id } }",
            json!({ "a": id("Server") }),
        ),
        (
            "updateOperationService",
            "mutation($a: ID!) { updateOperationService(id: $a, input: { name: \"x\" }) { id } }",
            json!({ "a": id("OperationService") }),
        ),
        (
            "deleteOperationService",
            "mutation($a: ID!) { deleteOperationService(id: $a) }",
            json!({ "a": id("OperationService") }),
        ),
        (
            "grantOperationAccess",
            "mutation($a: ID!, $b: ID!) { grantOperationAccess(operationServiceId: $a, teamId: $b, level: FULL) }",
            json!({ "a": id("OperationService"), "b": id("Team") }),
        ),
        (
            "revokeOperationAccess",
            "mutation($a: ID!, $b: ID!) { revokeOperationAccess(operationServiceId: $a, teamId: $b) }",
            json!({ "a": id("OperationService"), "b": id("Team") }),
        ),
        (
            "linkOperationService",
            "mutation($a: ID!, $b: ID!) { linkOperationService(projectId: $a, operationServiceId: $b) { id } }",
            json!({ "a": id("Project"), "b": id("OperationService") }),
        ),
        (
            "unlinkOperationService",
            "mutation($a: ID!, $b: ID!) { unlinkOperationService(projectId: $a, operationServiceId: $b) }",
            json!({ "a": id("Project"), "b": id("OperationService") }),
        ),
        (
            "updateNotificationChannel",
            "mutation($a: ID!) { updateNotificationChannel(id: $a, input: { name: \"x\" }) { id } }",
            json!({ "a": id("NotificationChannel") }),
        ),
        (
            "deleteNotificationChannel",
            "mutation($a: ID!) { deleteNotificationChannel(id: $a) }",
            json!({ "a": id("NotificationChannel") }),
        ),
        (
            "testNotificationChannel",
            "mutation($a: ID!) { testNotificationChannel(id: $a) { id } }",
            json!({ "a": id("NotificationChannel") }),
        ),
        (
            "acknowledgeAlert",
            "mutation($a: ID!) { acknowledgeAlert(id: $a, note: \"x\") { id } }",
            json!({ "a": id("Alert") }),
        ),
        (
            "resolveAlert",
            "mutation($a: ID!) { resolveAlert(id: $a, note: \"x\") { id } }",
            json!({ "a": id("Alert") }),
        ),
        (
            "createNotificationChannel",
            "mutation($a: ID!) { createNotificationChannel(input: { name: \"x\", kind: WEBHOOK, url: \"http://127.0.0.1:9/\", projectId: $a }) { channel { id } } }",
            json!({ "a": id("Project") }),
        ),
        (
            "revokeInvitation",
            "mutation($a: ID!) { revokeInvitation(id: $a) }",
            json!({ "a": id("Invitation") }),
        ),
        (
            "acceptInvitation",
            "mutation($a: ID!) { acceptInvitation(id: $a) { id } }",
            json!({ "a": id("Invitation") }),
        ),
        (
            "createInvitation",
            "mutation($a: ID!) { createInvitation(input: { email: \"x@example.invalid\", teamId: $a }) { id } }",
            json!({ "a": id("Team") }),
        ),
        (
            "createInvitation",
            "mutation($a: ID!) { createInvitation(input: { email: \"x@example.invalid\", roleId: $a }) { id } }",
            json!({ "a": role }),
        ),
        (
            "updateTeam",
            "mutation($a: ID!) { updateTeam(id: $a, name: \"x\") { id } }",
            json!({ "a": id("Team") }),
        ),
        (
            "deleteTeam",
            "mutation($a: ID!) { deleteTeam(id: $a) }",
            json!({ "a": id("Team") }),
        ),
        (
            "removeTeamMember",
            "mutation($a: ID!, $b: ID!) { removeTeamMember(teamId: $a, userId: $b) { id } }",
            json!({ "a": id("Team"), "b": id("User") }),
        ),
        (
            "updateClient",
            "mutation($a: ID!) { updateClient(id: $a, name: \"x\") { id } }",
            json!({ "a": id("Client") }),
        ),
        (
            "deleteClient",
            "mutation($a: ID!) { deleteClient(id: $a) }",
            json!({ "a": id("Client") }),
        ),
        (
            "removeClientMember",
            "mutation($a: ID!, $b: ID!) { removeClientMember(clientId: $a, userId: $b) { id } }",
            json!({ "a": id("Client"), "b": id("User") }),
        ),
        (
            "updateRole",
            "mutation($a: ID!) { updateRole(id: $a, name: \"x\") { id } }",
            json!({ "a": role }),
        ),
        (
            "deleteRole",
            "mutation($a: ID!) { deleteRole(id: $a) }",
            json!({ "a": role }),
        ),
        (
            "updateDock",
            "mutation($a: ID!) { updateDock(id: $a, input: { name: \"x\" }) { id } }",
            json!({ "a": id("Dock") }),
        ),
        (
            "updateOrganization",
            "mutation($a: ID!) { updateOrganization(id: $a, input: { name: \"x\" }) { id } }",
            json!({ "a": id("Organization") }),
        ),
        (
            "deleteOrganization",
            "mutation($a: ID!) { deleteOrganization(id: $a) }",
            json!({ "a": id("Organization") }),
        ),
    ];
    let listed = mutations_taking_ids(&app, &token).await;
    let missing: Vec<&String> = listed
        .iter()
        .filter(|m| !matrix.iter().any(|(name, _, _)| name == *m))
        .collect();
    assert!(
        missing.is_empty(),
        "add these mutations to the isolation matrix: {missing:?}"
    );

    let before = org_1_digest(&app).await;
    for (name, document, variables) in &matrix {
        let (_, body) = app.graphql(Some(&token), document, variables.clone()).await;
        assert_eq!(
            error_code(&body),
            "NOT_FOUND",
            "{name} with org-1 ids: {body}"
        );
        assert!(
            body["data"].is_null() || body["data"][name].is_null(),
            "{name}: {body}"
        );
    }
    assert_eq!(org_1_digest(&app).await, before, "org-1 changed");
}
