//! Management completeness (issue 14): renaming and deleting teams, clients and custom roles,
//! taking people out of teams and clients, changing docks and the organization itself. Each:
//! success, the viewer's `FORBIDDEN`, and the audit trail (other organizations' ids are in
//! `isolation.rs`, the built-in roles' matrix in `rbac.rs`).

use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{TestApp, error_code, id_where};

const ORG: &str = "{ viewer { organization { id slug name teams { id name } clients { id name } \
    roles { id name } members { user { id email } role } \
    docks(first: 10) { nodes { id name syncIntervalSeconds } } } } }";

async fn run(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.graphql(Some(token), query, variables).await.1
}

async fn org(app: &TestApp, token: &str) -> Value {
    let body = run(app, token, ORG, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["viewer"]["organization"].clone()
}

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = (list.as_array().cloned().unwrap_or_default().iter())
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

async fn user_id(app: &TestApp, sub: &str, org: &str) -> Value {
    let body = run(
        app,
        &app.token(sub, Some(org)),
        "{ viewer { user { id } } }",
        json!({}),
    )
    .await;
    body["data"]["viewer"]["user"]["id"].clone()
}

/// Runs `query` as the viewer and as the owner (or `allowed`): FORBIDDEN, then done.
async fn denied_then_done(app: &TestApp, allowed: &str, query: &str, variables: Value) -> Value {
    let viewer = app.token("org-0-viewer", Some("org-0"));
    let body = run(app, &viewer, query, variables.clone()).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "viewer: {query}: {body}");
    let body = run(app, allowed, query, variables).await;
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

fn outcomes(audit: &[(String, String)], action: &str) -> Vec<String> {
    audit
        .iter()
        .filter(|(a, _)| a == action)
        .map(|(_, r)| r.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_are_renamed_deleted_and_their_members_removed() {
    let app = fixtures::seeded_with_teamer().await;
    let admin = app.token("org-0-admin", Some("org-0"));
    let teamer = app.token("org-0-teamer", Some("org-0"));
    let before = org(&app, &admin).await;
    let team = id_where(&before["teams"], "name", "Team 0");
    let teamer_id = user_id(&app, "org-0-teamer", "org-0").await;

    let rename = "mutation($id: ID!, $n: String!) { updateTeam(id: $id, name: $n) { id name } }";
    let done = denied_then_done(&app, &admin, rename, json!({ "id": team, "n": " Ops " })).await;
    assert_eq!(done["updateTeam"]["name"], "Ops");
    let other = names(&org(&app, &admin).await["teams"]);
    assert!(other.contains(&"Ops".to_owned()), "{other:?}");
    let taken = other
        .iter()
        .find(|n| *n != "Ops")
        .expect("a second team")
        .clone();
    let body = run(&app, &admin, rename, json!({ "id": team, "n": taken })).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let body = run(
        &app,
        &admin,
        rename,
        json!({ "id": team, "n": "x".repeat(201) }),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    // The team's member sees the new name.
    let body = run(
        &app,
        &teamer,
        "{ viewer { organization { teams { name } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["teams"],
        json!([{ "name": "Ops" }]),
        "{body}"
    );

    // Taken out of the team, the teamer (who reached org-0 only through it) reaches nothing.
    let remove = "mutation($t: ID!, $u: ID!) { removeTeamMember(teamId: $t, userId: $u) { name } }";
    let vars = json!({ "t": team, "u": teamer_id });
    let done = denied_then_done(&app, &admin, remove, vars.clone()).await;
    assert_eq!(done["removeTeamMember"]["name"], "Ops");
    let body = run(
        &app,
        &teamer,
        "{ viewer { organization { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = run(&app, &admin, remove, vars).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    let delete = "mutation($id: ID!) { deleteTeam(id: $id) }";
    let done = denied_then_done(&app, &admin, delete, json!({ "id": team })).await;
    assert_eq!(done["deleteTeam"], team);
    assert!(!names(&org(&app, &admin).await["teams"]).contains(&"Ops".to_owned()));
    let body = run(&app, &admin, delete, json!({ "id": team })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    let audit = app
        .audit(
            &admin,
            &["team.update", "team.remove_member", "team.delete"],
        )
        .await;
    // A bad name is refused before the act: not audited.
    assert_eq!(
        outcomes(&audit, "team.update"),
        ["denied", "success", "error"]
    );
    assert_eq!(
        outcomes(&audit, "team.remove_member"),
        ["denied", "success", "error"]
    );
    assert_eq!(
        outcomes(&audit, "team.delete"),
        ["denied", "success", "error"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_are_renamed_deleted_and_their_members_removed() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let portal = app.token("org-0-client-0", Some("org-0"));
    let client = id_where(&org(&app, &owner).await["clients"], "name", "Client 0");
    let portal_id = user_id(&app, "org-0-client-0", "org-0").await;

    let rename = "mutation($id: ID!, $n: String!) { updateClient(id: $id, name: $n) { id name } }";
    let done = denied_then_done(&app, &owner, rename, json!({ "id": client, "n": "Acme" })).await;
    assert_eq!(done["updateClient"]["name"], "Acme");
    let body = run(
        &app,
        &owner,
        rename,
        json!({ "id": client, "n": "Client 1" }),
    )
    .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    let projects = "{ viewer { organization { projects(first: 100) { totalCount } } } }";
    let body = run(&app, &portal, projects, json!({})).await;
    assert!(
        body["data"]["viewer"]["organization"]["projects"]["totalCount"].as_i64() > Some(0),
        "{body}"
    );
    let remove =
        "mutation($c: ID!, $u: ID!) { removeClientMember(clientId: $c, userId: $u) { name } }";
    let vars = json!({ "c": client, "u": portal_id });
    let done = denied_then_done(&app, &owner, remove, vars.clone()).await;
    assert_eq!(done["removeClientMember"]["name"], "Acme");
    let body = run(&app, &portal, projects, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = run(&app, &owner, remove, vars).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    let delete = "mutation($id: ID!) { deleteClient(id: $id) }";
    let done = denied_then_done(&app, &owner, delete, json!({ "id": client })).await;
    assert_eq!(done["deleteClient"], client);
    assert_eq!(names(&org(&app, &owner).await["clients"]), ["Client 1"]);

    let audit = app
        .audit(
            &owner,
            &["client.update", "client.remove_member", "client.delete"],
        )
        .await;
    assert_eq!(
        outcomes(&audit, "client.update"),
        ["denied", "success", "error"]
    );
    assert_eq!(
        outcomes(&audit, "client.remove_member"),
        ["denied", "success", "error"]
    );
    assert_eq!(outcomes(&audit, "client.delete"), ["denied", "success"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_roles_are_renamed_and_deleted_once_unused_and_built_in_ones_never() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let admin = app.token("org-0-admin", Some("org-0"));
    let body = run(
        &app,
        &admin,
        "mutation { createRole(name: \"Auditor\", permissions: { audit: \"read\" }) { id } }",
        json!({}),
    )
    .await;
    let role = body["data"]["createRole"]["id"].clone();
    assert!(role.is_string(), "{body}");

    let rename = "mutation($id: ID!, $n: String!) { updateRole(id: $id, name: $n) { name } }";
    let done = denied_then_done(&app, &admin, rename, json!({ "id": role, "n": "Reader" })).await;
    assert_eq!(done["updateRole"]["name"], "Reader");
    let body = run(&app, &admin, rename, json!({ "id": role, "n": "viewer" })).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");

    // Built-in roles keep their names and stay, even for owners.
    let roles = org(&app, &owner).await["roles"].clone();
    let delete = "mutation($id: ID!) { deleteRole(id: $id) }";
    for builtin in ["owner", "viewer"] {
        let id = id_where(&roles, "name", builtin);
        let body = run(&app, &owner, rename, json!({ "id": id, "n": "renamed" })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{builtin}: {body}");
        let body = run(&app, &owner, delete, json!({ "id": id })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{builtin}: {body}");
    }

    // A role someone holds is kept; once nobody does, it goes.
    let member = user_id(&app, "org-0-member", "org-0").await;
    let set = "mutation($u: ID!, $r: ID!) { setMemberRole(userId: $u, roleId: $r) { role } }";
    let body = run(&app, &admin, set, json!({ "u": member, "r": role })).await;
    assert_eq!(body["data"]["setMemberRole"]["role"], "Reader", "{body}");
    let body = run(&app, &admin, delete, json!({ "id": role })).await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let back = id_where(&roles, "name", "member");
    let body = run(&app, &admin, set, json!({ "u": member, "r": back })).await;
    assert_eq!(body["data"]["setMemberRole"]["role"], "member", "{body}");
    let done = denied_then_done(&app, &admin, delete, json!({ "id": role })).await;
    assert_eq!(done["deleteRole"], role);
    assert!(!names(&org(&app, &owner).await["roles"]).contains(&"Reader".to_owned()));

    let audit = app.audit(&owner, &["role.update", "role.delete"]).await;
    assert_eq!(
        outcomes(&audit, "role.update"),
        ["denied", "success", "error", "denied", "denied"]
    );
    assert_eq!(
        outcomes(&audit, "role.delete"),
        ["denied", "denied", "error", "denied", "success"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn docks_are_renamed_and_their_interval_bounded() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let docks = org(&app, &owner).await["docks"]["nodes"].clone();
    let dock = docks[0]["id"].clone();
    let update = "mutation($id: ID!, $input: UpdateDockInput!) { \
        updateDock(id: $id, input: $input) { name syncIntervalSeconds } }";
    let member = app.token("org-0-member", Some("org-0"));
    let vars = json!({ "id": dock, "input": { "name": "Main", "syncIntervalSeconds": 120 } });
    let body = run(&app, &member, update, vars.clone()).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "docks READ: {body}");
    let done = denied_then_done(&app, &owner, update, vars).await;
    assert_eq!(
        done["updateDock"],
        json!({ "name": "Main", "syncIntervalSeconds": 120 })
    );
    for input in [
        json!({ "syncIntervalSeconds": 59 }),
        json!({ "syncIntervalSeconds": 604_801 }),
        json!({ "name": "" }),
    ] {
        let body = run(&app, &owner, update, json!({ "id": dock, "input": input })).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{input}: {body}");
    }
    let body = run(
        &app,
        &owner,
        update,
        json!({ "id": dock, "input": { "name": docks[1]["name"] } }),
    )
    .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let after = org(&app, &owner).await["docks"]["nodes"].clone();
    let main = after
        .as_array()
        .and_then(|d| d.iter().find(|d| d["id"] == dock))
        .cloned();
    assert_eq!(
        main.map(|d| d["syncIntervalSeconds"].clone()),
        Some(json!(120))
    );
    let audit = app.audit(&owner, &["dock.update"]).await;
    assert_eq!(
        outcomes(&audit, "dock.update"),
        ["denied", "denied", "success", "error"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn organizations_are_renamed_and_soft_deleted_by_their_owners() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-2-owner", Some("org-2"));
    let admin = app.token("org-2-admin", Some("org-2"));
    let id = org(&app, &owner).await["id"].clone();
    let update = "mutation($id: ID!, $input: UpdateOrganizationInput!) { \
        updateOrganization(id: $id, input: $input) { name slug } }";
    let viewer = app.token("org-2-viewer", Some("org-2"));
    let vars = json!({ "id": id, "input": { "name": "Two" } });
    let body = run(&app, &viewer, update, vars.clone()).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = run(&app, &admin, update, vars).await;
    assert_eq!(
        body["data"]["updateOrganization"],
        json!({ "name": "Two", "slug": "org-2" }),
        "{body}"
    );
    let body = run(
        &app,
        &admin,
        update,
        json!({ "id": id, "input": { "slug": "org-1" } }),
    )
    .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let body = run(
        &app,
        &admin,
        update,
        json!({ "id": id, "input": { "slug": "Two" } }),
    )
    .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(org(&app, &viewer).await["name"], "Two");

    let delete = "mutation($id: ID!) { deleteOrganization(id: $id) }";
    for token in [&viewer, &admin] {
        let body = run(&app, token, delete, json!({ "id": id })).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let audit = app
        .audit(&owner, &["organization.update", "organization.delete"])
        .await;
    assert_eq!(
        outcomes(&audit, "organization.update"),
        ["denied", "success", "error"]
    );
    assert_eq!(
        outcomes(&audit, "organization.delete"),
        ["denied", "denied"]
    );
    let body = run(&app, &owner, delete, json!({ "id": id })).await;
    assert_eq!(body["data"]["deleteOrganization"], id, "{body}");
    // Gone for everyone at once; the rows stay, and the slug stays taken.
    for token in [&owner, &viewer] {
        let body = run(&app, token, "{ viewer { organization { id } } }", json!({})).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    }
    let body = run(
        &app,
        &app.token("org-2-owner", None),
        "{ viewer { organizations { slug } } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["viewer"]["organizations"], json!([]), "{body}");
    let conn = &mut app.db.owner().await;
    let gone = fixtures::find_org(conn, "org-2").await;
    assert_eq!(
        fixtures::count(
            conn,
            "select count(*) as n from organizations where id = $1 and deleted_at is not null",
            gone.id
        )
        .await,
        1
    );
    // Other organizations are untouched.
    let other = app.token("org-1-owner", Some("org-1"));
    assert_eq!(org(&app, &other).await["slug"], "org-1");
}
