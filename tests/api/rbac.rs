//! Roles, teams, clients and dock grants: what each viewer sees and may do.

use std::collections::HashSet;

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{TestApp, error_code};

const SEEN: &str = "{ viewer { organization {
    projects(first: 100) { nodes { id slug resources(first: 50) { nodes { id } } } }
    docks { nodes { id name } }
    resources(first: 500) { totalCount nodes { id dock { name } } }
    teams { name } clients { name } members { role } roles { name } } } }";

async fn seen(app: &TestApp, user: &str) -> Value {
    let (_, body) = app
        .graphql(Some(&app.token(user, Some("org-0"))), SEEN, json!({}))
        .await;
    assert!(body.get("errors").is_none(), "{user}: {body}");
    body["data"]["viewer"]["organization"].clone()
}

fn list<'a>(value: &'a Value, field: &str) -> Vec<&'a str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v[field].as_str())
        .collect()
}

/// Checks that every visible resource is on one of `docks` or linked to a visible project.
fn resources_follow_the_rules(org: &Value, docks: &[&str]) {
    let linked: HashSet<&str> = org["projects"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| list(&p["resources"]["nodes"], "id"))
        .collect();
    let resources = org["resources"]["nodes"].as_array().expect("resources");
    assert!(!resources.is_empty());
    assert_eq!(
        org["resources"]["totalCount"].as_u64(),
        Some(resources.len() as u64)
    );
    for r in resources {
        let on_dock = docks.contains(&r["dock"]["name"].as_str().unwrap_or(""));
        assert!(
            on_dock || linked.contains(r["id"].as_str().unwrap_or("")),
            "not reachable: {r}"
        );
    }
    assert!(
        linked.len() <= resources.len(),
        "every linked resource is listed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_portal_shows_the_clients_projects_read_only() {
    let app = fixtures::seeded_with_teamer().await;
    let org = seen(&app, "org-0-client-0").await;
    assert_eq!(
        list(&org["projects"]["nodes"], "slug"),
        vec!["project-000", "project-004", "project-008"]
    );
    assert_eq!(
        list(&org["docks"]["nodes"], "name"),
        vec!["Vercel"],
        "the dock granted to Client 0"
    );
    resources_follow_the_rules(&org, &["Vercel"]);
    assert_eq!(list(&org["clients"], "name"), vec!["Client 0"]);
    assert!(
        org["teams"].as_array().is_some_and(Vec::is_empty)
            && org["members"].as_array().is_some_and(Vec::is_empty)
    );

    let token = app.token("org-0-client-0", Some("org-0"));
    let owner = seen(&app, "org-0-owner").await;
    let project = |slug: &str| {
        owner["projects"]["nodes"]
            .as_array()
            .expect("p")
            .iter()
            .find(|p| p["slug"] == slug)
            .expect("project")["id"]
            .clone()
    };
    let update = "mutation($id: ID!) { updateProject(id: $id, input: { name: \"x\" }) { name } }";
    let (_, body) = app
        .graphql(
            Some(&token),
            update,
            json!({ "id": project("project-000") }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "visible but read-only: {body}"
    );
    let (_, body) = app
        .graphql(
            Some(&token),
            update,
            json!({ "id": project("project-001") }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "another client's project does not exist here: {body}"
    );
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": project("project-001") }),
        )
        .await;
    assert_eq!(body["data"]["node"], Value::Null);
    let (_, body) = app
        .graphql(
            Some(&token),
            "{ viewer { permissions { projects resources settings } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["permissions"],
        json!({ "projects": "READ", "resources": "READ", "settings": "NONE" })
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_sees_its_projects_and_granted_dock_only() {
    let app = fixtures::seeded_with_teamer().await;
    let org = seen(&app, "org-0-teamer").await;
    assert_eq!(
        list(&org["projects"]["nodes"], "slug"),
        vec!["project-001", "project-005", "project-009"]
    );
    assert_eq!(list(&org["docks"]["nodes"], "name"), vec!["DigitalOcean"]);
    resources_follow_the_rules(&org, &["DigitalOcean"]);
    assert_eq!(list(&org["teams"], "name"), vec!["Team 0"]);

    let token = app.token("org-0-teamer", Some("org-0"));
    let team_project = org["projects"]["nodes"][0]["id"].clone();
    let update = "mutation($id: ID!) { updateProject(id: $id, input: { name: \"Renamed by the team\" }) { name } }";
    let (_, body) = app
        .graphql(Some(&token), update, json!({ "id": team_project }))
        .await;
    assert_eq!(
        body["data"]["updateProject"]["name"], "Renamed by the team",
        "team role FULL over its projects: {body}"
    );
    let (_, body) = app
        .graphql(
            Some(&token),
            "mutation { createProject(input: { name: \"x\", slug: \"x\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "no org-wide project creation: {body}"
    );

    let owner = seen(&app, "org-0-owner").await;
    let linode = owner["docks"]["nodes"]
        .as_array()
        .expect("d")
        .iter()
        .find(|d| d["name"] == "Linode")
        .expect("linode")["id"]
        .clone();
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": linode }),
        )
        .await;
    assert_eq!(
        body["data"]["node"],
        Value::Null,
        "an ungranted dock does not exist for the team"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn org_roles_see_everything_in_the_org() {
    let app = fixtures::seeded_with_teamer().await;
    for user in ["org-0-owner", "org-0-admin", "org-0-member", "org-0-viewer"] {
        let org = seen(&app, user).await;
        assert_eq!(
            org["projects"]["nodes"].as_array().map(Vec::len),
            Some(10),
            "{user}"
        );
        assert_eq!(
            org["docks"]["nodes"].as_array().map(Vec::len),
            Some(4),
            "{user}"
        );
        assert_eq!(org["resources"]["totalCount"], 200, "{user}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_admins_enter_any_org_and_every_act_is_audited() {
    let app = fixtures::seeded_with_teamer().await;
    app.db
        .owner()
        .await
        .batch_execute(
            "update users set is_platform_admin = true where external_id = 'org-0-owner'",
        )
        .await
        .expect("admin");
    let admin = app.token("org-0-owner", Some("org-1"));
    let (_, body) = app
        .graphql(
            Some(&admin),
            "query Inspect { viewer { organization { slug projects { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "org-1",
        "{body}"
    );
    assert_eq!(
        body["data"]["viewer"]["organization"]["projects"]["totalCount"],
        10
    );

    let owner = app.token("org-1-owner", Some("org-1"));
    let query = "{ viewer { organization { auditLogs(actions: [\"platform_admin.request\"]) { nodes { message result actor { name } } } } } }";
    let (_, body) = app.graphql(Some(&owner), query, json!({})).await;
    let logs = body["data"]["viewer"]["organization"]["auditLogs"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(logs.len(), 1, "{body}");
    assert_eq!(logs[0]["message"], "Inspect");

    let (_, body) = app
        .graphql(
            Some(&app.token("org-0-admin", Some("org-1"))),
            "{ viewer { user { name } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "only platform admins enter foreign orgs: {body}"
    );
}

/// What a built-in role gets for an action: done, FORBIDDEN, hidden (`null`), or let through
/// the permission check to find no such object (`NOT_FOUND`).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Allowed,
    Forbidden,
    Hidden,
    Missing,
}

#[tokio::test(flavor = "multi_thread")]
async fn built_in_roles_by_area_and_action() {
    use Outcome::{Allowed, Forbidden, Hidden, Missing};
    let app = fixtures::seeded_with_teamer().await;
    // action → (query, outcome for owner, admin, member, viewer)
    let resource = app
        .graphql(
            Some(&app.token("org-0-owner", Some("org-0"))),
            "{ viewer { organization { resources(first: 1) { nodes { id } } } } }",
            json!({}),
        )
        .await
        .1["data"]["viewer"]["organization"]["resources"]["nodes"][0]["id"]
        .clone();
    let droplet = app
        .graphql(
            Some(&app.token("org-0-owner", Some("org-0"))),
            r#"{ viewer { organization { resources(first: 1, filter: { kinds: [SERVER], providers: ["digitalocean"] }) { nodes { id } } } } }"#,
            json!({}),
        )
        .await
        .1["data"]["viewer"]["organization"]["resources"]["nodes"][0]["id"]
        .clone();
    assert!(droplet.is_string(), "the seed has a DigitalOcean server");
    let table: [(&str, &str, [Outcome; 4]); 22] = [
        (
            "projects FULL: createProject",
            "mutation($s: String!) { createProject(input: { name: $s, slug: $s }) { id } }",
            [Allowed, Allowed, Allowed, Forbidden],
        ),
        (
            "settings FULL: createTeam",
            "mutation($s: String!) { createTeam(name: $s) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "audit READ: auditLogs",
            "{ viewer { organization { auditLogs(first: 1) { totalCount } } } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "resources FULL: fullApiData",
            "{ viewer { organization { resources(first: 1) { nodes { fullApiData } } } } }",
            [Allowed, Allowed, Hidden, Hidden],
        ),
        (
            "resources FULL: setResourceTags",
            "mutation($r: ID!, $s: String!) { setResourceTags(resourceId: $r, tags: [$s]) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            // The seeded dock's key cannot be decrypted: an allowed caller gets a FAILED run,
            // and nothing leaves the machine.
            "resources FULL: performResourceAction",
            "mutation($x: ID!) { performResourceAction(resourceId: $x, action: REBOOT) { status } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "docks FULL: apiKeyHint",
            "{ viewer { organization { docks(first: 1) { nodes { apiKeyHint } } } } }",
            [Allowed, Allowed, Hidden, Hidden],
        ),
        (
            "docks READ: docks",
            "{ viewer { organization { docks(first: 1) { totalCount } } } }",
            [Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "settings FULL: createInvitation",
            "mutation($e: String!) { createInvitation(input: { email: $e }) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "operations FULL: createOperationService",
            "mutation($s: String!) { createOperationService(input: { name: $s, kind: DNS, config: { token: \"t\" } }) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "operations READ: operationServices",
            "{ viewer { organization { operationServices(first: 10) { totalCount nodes { name } } } } }",
            [Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "operations FULL: configHint",
            "{ viewer { organization { operationServices(first: 1) { nodes { configHint } } } } }",
            [Allowed, Allowed, Hidden, Hidden],
        ),
        (
            "settings READ: invitations",
            "{ viewer { organization { invitations { id } } } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "settings FULL: updateOrganization",
            "mutation($o: ID!, $s: String!) { updateOrganization(id: $o, input: { name: $s }) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "settings FULL: updateTeam",
            "mutation($t: ID!, $s: String!) { updateTeam(id: $t, name: $s) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "settings FULL: updateClient",
            "mutation($c: ID!, $s: String!) { updateClient(id: $c, name: $s) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "docks FULL: updateDock",
            "mutation($d: ID!, $s: String!) { updateDock(id: $d, input: { name: $s }) { id } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "owner: deleteOrganization (denials only; deleting is in management.rs)",
            "mutation($o: ID!) { deleteOrganization(id: $o) }",
            [Hidden, Forbidden, Forbidden, Forbidden],
        ),
        (
            "monitoring FULL: createNotificationChannel",
            "mutation($s: String!) { createNotificationChannel(input: {
                name: $s, kind: WEBHOOK, url: \"http://127.0.0.1:9/hook\" }) { channel { id } } }",
            [Allowed, Allowed, Forbidden, Forbidden],
        ),
        (
            "monitoring READ: notificationChannels",
            "{ viewer { organization { notificationChannels(first: 1) { totalCount } } } }",
            [Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "monitoring FULL: acknowledgeAlert",
            "mutation { acknowledgeAlert(id: \"QWxlcnQ6MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw\") { id } }",
            [Missing, Missing, Forbidden, Forbidden],
        ),
        (
            "monitoring FULL: resolveAlert",
            "mutation { resolveAlert(id: \"QWxlcnQ6MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAw\") { id } }",
            [Missing, Missing, Forbidden, Forbidden],
        ),
    ];
    let org = fixtures::find_org(&mut app.db.owner().await, "org-0").await;
    let (_, body) = app
        .graphql(
            Some(&app.token("org-0-owner", Some("org-0"))),
            "{ viewer { organization { id teams { id } clients { id } docks(first: 1) { nodes { id } } } } }",
            json!({}),
        )
        .await;
    let ids = body["data"]["viewer"]["organization"].clone();
    assert_eq!(
        ids["id"],
        TestApp::global_id("Organization", org.id),
        "{body}"
    );
    let (team, client, dock) = (
        ids["teams"][0]["id"].clone(),
        ids["clients"][0]["id"].clone(),
        ids["docks"]["nodes"][0]["id"].clone(),
    );
    for (i, role) in ["owner", "admin", "member", "viewer"]
        .into_iter()
        .enumerate()
    {
        let token = app.token(&format!("org-0-{role}"), Some("org-0"));
        for (j, (action, query, outcomes)) in table.iter().enumerate() {
            // The owner would delete org-0 for everyone after it: not run, only listed.
            if outcomes[i] == Hidden && action.starts_with("owner:") {
                continue;
            }
            let slug = format!("{role}-{j}");
            let email = format!("{slug}@example.invalid");
            let (_, body) = app
                .graphql(
                    Some(&token),
                    query,
                    json!({ "s": slug, "e": email, "o": ids["id"], "t": team, "c": client, "d": dock, "r": resource, "x": droplet }),
                )
                .await;
            let leaf = body.to_string();
            let got = if error_code(&body) == "FORBIDDEN" {
                Forbidden
            } else if error_code(&body) == "NOT_FOUND" {
                Missing
            } else if body.get("errors").is_some() {
                panic!("{role} / {action}: {body}");
            } else if leaf.contains("\"fullApiData\":null")
                || leaf.contains("\"apiKeyHint\":null")
                || leaf.contains("\"configHint\":null")
            {
                Hidden
            } else {
                Allowed
            };
            assert_eq!(got, outcomes[i], "{role} / {action}: {body}");
        }
    }
}

/// Invitations by role: settings FULL revokes (but only owners touch an owner invitation),
/// the invitee alone accepts, whatever their role elsewhere.
#[tokio::test(flavor = "multi_thread")]
async fn invitations_by_role() {
    let app = fixtures::seeded_with_teamer().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&owner),
            "{ viewer { organization { roles { id name } } } }",
            json!({}),
        )
        .await;
    let roles = body["data"]["viewer"]["organization"]["roles"].clone();
    let role = |name: &str| {
        roles
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == name))
            .map(|r| r["id"].clone())
            .expect("role")
    };
    let invite = "mutation($e: String!, $r: ID) { createInvitation(input: { email: $e, roleId: $r }) { id } }";
    let mut invitations = Vec::new();
    for (email, r) in [
        ("a@example.invalid", role("member")),
        ("b@example.invalid", role("owner")),
    ] {
        let (_, body) = app
            .graphql(Some(&owner), invite, json!({ "e": email, "r": r }))
            .await;
        invitations.push(body["data"]["createInvitation"]["id"].clone());
    }
    let revoke = "mutation($id: ID!) { revokeInvitation(id: $id) }";
    // (who, invitation, expected code or "true")
    let cases = [
        ("member", 0, "FORBIDDEN"),
        ("viewer", 0, "FORBIDDEN"),
        ("client-0", 0, "FORBIDDEN"),
        ("admin", 1, "FORBIDDEN"),
        ("admin", 0, "true"),
        ("owner", 1, "true"),
    ];
    for (who, i, expected) in cases {
        let token = app.token(&format!("org-0-{who}"), Some("org-0"));
        let (_, body) = app
            .graphql(Some(&token), revoke, json!({ "id": invitations[i] }))
            .await;
        let got = match body["data"]["revokeInvitation"].as_bool() {
            Some(true) => "true",
            _ => error_code(&body),
        };
        assert_eq!(got, expected, "{who} revoking #{i}: {body}");
    }
    let accept = "mutation($id: ID!) { acceptInvitation(id: $id) { id } }";
    for who in ["owner", "admin", "member", "viewer", "client-0"] {
        let token = app.token(&format!("org-0-{who}"), Some("org-0"));
        let (_, body) = app
            .graphql(Some(&token), accept, json!({ "id": invitations[0] }))
            .await;
        assert_eq!(error_code(&body), "NOT_FOUND", "{who}: {body}");
    }
}
