//! Access management: teams, clients, roles, members, dock grants and API keys, with their codes,
//! the last-owner rule, and an audit entry for every change.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use stackgate::db::models::api_key;
use stackgate::db::schema::{
    api_keys, client_memberships, clients, dock_permissions, memberships, organizations, roles,
    team_memberships, users,
};
use stackgate::db::{Scope, build_pool};
use uuid::Uuid;

use crate::harness::{TestApp, error_code};

const DIRECTORY: &str = "{ viewer { user { id } organization { \
    teams { id name } clients { id name } roles { id name } members { user { id email } role } \
    docks(first: 10) { nodes { id name } } } } }";
const CREATE_TEAM: &str = "mutation($name: String!) { createTeam(name: $name) { id name } }";
const ADD_TEAM_MEMBER: &str = "mutation($team: ID!, $user: ID, $email: String, $role: ID!) { \
    addTeamMember(teamId: $team, userId: $user, email: $email, roleId: $role) { id name } }";
const CREATE_CLIENT: &str = "mutation($name: String!) { createClient(name: $name) { id name } }";
const ADD_CLIENT_MEMBER: &str = "mutation($client: ID!, $user: ID, $email: String, $role: ID) { \
    addClientMember(clientId: $client, userId: $user, email: $email, roleId: $role) { id name } }";
const CREATE_ROLE: &str = "mutation($name: String!, $p: JSON!) { \
    createRole(name: $name, permissions: $p) { id name permissions isBuiltin } }";
const SET_ROLE: &str = "mutation($user: ID!, $role: ID!) { \
    setMemberRole(userId: $user, roleId: $role) { user { email } role } }";
const REMOVE: &str = "mutation($user: ID!) { removeMember(userId: $user) }";
const GRANT: &str = "mutation($dock: ID!, $team: ID, $client: ID, $level: AccessLevel!) { \
    grantDockAccess(dockId: $dock, teamId: $team, clientId: $client, level: $level) }";
const REVOKE_GRANT: &str = "mutation($dock: ID!, $team: ID, $client: ID) { \
    revokeDockAccess(dockId: $dock, teamId: $team, clientId: $client) }";
const CREATE_KEY: &str = "mutation($name: String!, $at: DateTime) { createApiKey(name: $name, expiresAt: $at) { \
    secret apiKey { id name prefix createdAt lastUsedAt expiresAt revokedAt } } }";
const REVOKE_KEY: &str = "mutation($id: ID!) { revokeApiKey(id: $id) }";

/// A seeded app with two of its users' tokens in `org-0` and one in `org-1`.
struct Seeded {
    app: TestApp,
    owner: String,
    viewer: String,
    other: String,
}

async fn seeded() -> Seeded {
    let app = TestApp::spawn().await;
    stackgate::devkit::seed::seed(&mut app.db.owner().await, 1)
        .await
        .expect("seed");
    Seeded {
        owner: app.token("org-0-owner", Some("org-0")),
        viewer: app.token("org-0-viewer", Some("org-0")),
        other: app.token("org-1-owner", Some("org-1")),
        app,
    }
}

impl Seeded {
    fn token(&self, who: &str) -> String {
        self.app.token(&format!("org-0-{who}"), Some("org-0"))
    }

    /// The response body of a request.
    async fn run(&self, token: &str, query: &str, variables: Value) -> Value {
        self.app.graphql(Some(token), query, variables).await.1
    }

    /// The organization (and user) `token` sees.
    async fn directory(&self, token: &str) -> Value {
        let body = self.run(token, DIRECTORY, json!({})).await;
        assert!(body["errors"].is_null(), "{body}");
        body["data"]["viewer"].clone()
    }

    /// `(action, result)` of every audit entry of `org-0` with one of `actions`, oldest first.
    async fn audit(&self, actions: &[&str]) -> Vec<(String, String)> {
        let query = "query($a: [String!]) { viewer { organization { auditLogs(first: 100, actions: $a) { nodes { action result } } } } }";
        let body = self.run(&self.owner, query, json!({ "a": actions })).await;
        let nodes = body["data"]["viewer"]["organization"]["auditLogs"]["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("audit log: {body}"))
            .clone();
        nodes
            .iter()
            .rev()
            .map(|n| (text(&n["action"]), text(&n["result"])))
            .collect()
    }

    async fn db(&self) -> AsyncPgConnection {
        self.app.db.owner().await
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The `id` of the element of `list` whose `key` is `value`.
fn id_where(list: &Value, key: &str, value: &str) -> Value {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i[key] == value))
        .map(|i| i["id"].clone())
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

/// The user id of the member of `dir` with email `email`.
fn member_id(dir: &Value, email: &str) -> Value {
    dir["organization"]["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user"]["email"] == email))
        .map(|m| m["user"]["id"].clone())
        .unwrap_or_else(|| panic!("no member {email}"))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, r)| ((*a).to_owned(), (*r).to_owned()))
        .collect()
}

async fn org_id(conn: &mut AsyncPgConnection, slug: &str) -> Uuid {
    organizations::table
        .filter(organizations::slug.eq(slug))
        .select(organizations::id)
        .first(conn)
        .await
        .expect("org")
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_and_clients_are_created_and_filled() {
    let s = seeded().await;
    let dir = s.directory(&s.owner).await;
    let org = &dir["organization"];
    let foreign = s.directory(&s.other).await;
    let member_role = id_where(&org["roles"], "name", "member");

    let body = s
        .run(&s.owner, CREATE_TEAM, json!({ "name": " Ops " }))
        .await;
    let team = body["data"]["createTeam"].clone();
    assert_eq!(team["name"], "Ops", "{body}");
    for (name, code) in [
        ("ops", "NONE"),
        ("Ops", "CONFLICT"),
        ("  ", "BAD_USER_INPUT"),
    ] {
        let body = s.run(&s.owner, CREATE_TEAM, json!({ "name": name })).await;
        if code == "NONE" {
            assert!(body["errors"].is_null(), "names are case-sensitive: {body}");
        } else {
            assert_eq!(error_code(&body), code, "{name}: {body}");
        }
    }
    let long = "t".repeat(201);
    let body = s.run(&s.owner, CREATE_TEAM, json!({ "name": long })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = s
        .run(&s.viewer, CREATE_TEAM, json!({ "name": "Mine" }))
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let viewer_id = member_id(&dir, "org-0-viewer@example.test");
    let add = |user: Value, email: Value| json!({ "team": team["id"], "user": user, "email": email, "role": member_role });
    let body = s
        .run(
            &s.owner,
            ADD_TEAM_MEMBER,
            add(viewer_id.clone(), Value::Null),
        )
        .await;
    assert_eq!(body["data"]["addTeamMember"]["id"], team["id"], "{body}");
    let body = s
        .run(
            &s.owner,
            ADD_TEAM_MEMBER,
            add(viewer_id.clone(), Value::Null),
        )
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "already in the team: {body}");
    // Someone of another organization, by email: not added (they are invited instead) ...
    let outsider = json!("org-1-member@example.test");
    let body = s
        .run(
            &s.owner,
            ADD_TEAM_MEMBER,
            add(Value::Null, outsider.clone()),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    // ... while a member of org-0 is found by email, whatever its case.
    let body = s
        .run(
            &s.owner,
            ADD_TEAM_MEMBER,
            add(Value::Null, json!("ORG-0-Member@example.test")),
        )
        .await;
    assert_eq!(body["data"]["addTeamMember"]["name"], "Ops", "{body}");
    let mut conn = s.db().await;
    let in_team: i64 = team_memberships::table
        .inner_join(users::table.on(users::id.eq(team_memberships::user_id)))
        .filter(users::email.eq("org-1-member@example.test"))
        .filter(team_memberships::org_id.eq(org_id(&mut conn, "org-0").await))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(in_team, 0, "no one joins without an invitation");

    let foreign_user = member_id(&foreign, "org-1-viewer@example.test");
    let foreign_team = foreign["organization"]["teams"][0]["id"].clone();
    let foreign_role = id_where(&foreign["organization"]["roles"], "name", "member");
    let cases = [
        (add(Value::Null, json!("nobody@example.test")), "NOT_FOUND"),
        (add(Value::Null, json!("not an email")), "BAD_USER_INPUT"),
        (add(viewer_id.clone(), outsider.clone()), "BAD_USER_INPUT"),
        (add(Value::Null, Value::Null), "BAD_USER_INPUT"),
        (add(foreign_user.clone(), Value::Null), "NOT_FOUND"),
        (add(json!("garbage!"), Value::Null), "BAD_USER_INPUT"),
        (add(team["id"].clone(), Value::Null), "NOT_FOUND"),
        (
            json!({ "team": foreign_team, "user": viewer_id, "role": member_role }),
            "NOT_FOUND",
        ),
        (
            json!({ "team": team["id"], "user": viewer_id, "role": foreign_role }),
            "NOT_FOUND",
        ),
        (
            json!({ "team": member_role, "user": viewer_id, "role": member_role }),
            "NOT_FOUND",
        ),
    ];
    for (variables, code) in cases {
        let body = s.run(&s.owner, ADD_TEAM_MEMBER, variables.clone()).await;
        assert_eq!(error_code(&body), code, "{variables}: {body}");
    }
    let body = s
        .run(
            &s.viewer,
            ADD_TEAM_MEMBER,
            add(viewer_id.clone(), Value::Null),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let body = s
        .run(&s.owner, CREATE_CLIENT, json!({ "name": "Acme" }))
        .await;
    let client = body["data"]["createClient"].clone();
    assert_eq!(client["name"], "Acme", "{body}");
    let body = s
        .run(&s.owner, CREATE_CLIENT, json!({ "name": "Acme" }))
        .await;
    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    let body = s
        .run(
            &s.owner,
            ADD_CLIENT_MEMBER,
            json!({ "client": client["id"], "email": "org-2-client-0@example.test" }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "another org's client user: {body}"
    );
    let body = s
        .run(
            &s.owner,
            ADD_CLIENT_MEMBER,
            json!({ "client": client["id"], "email": "org-0-client-1@example.test" }),
        )
        .await;
    assert_eq!(body["data"]["addClientMember"]["name"], "Acme", "{body}");
    let role: String = client_memberships::table
        .inner_join(roles::table.on(roles::id.eq(client_memberships::role_id)))
        .inner_join(users::table.on(users::id.eq(client_memberships::user_id)))
        .inner_join(clients::table.on(clients::id.eq(client_memberships::client_id)))
        .filter(users::email.eq("org-0-client-1@example.test"))
        .filter(clients::name.eq("Acme"))
        .select(roles::name)
        .first(&mut conn)
        .await
        .expect("client membership");
    assert_eq!(role, "viewer", "client members default to the viewer role");
    let body = s
        .run(
            &s.owner,
            ADD_CLIENT_MEMBER,
            json!({ "client": team["id"], "user": viewer_id }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "a team id is no client: {body}"
    );
    let body = s
        .run(
            &s.other,
            ADD_CLIENT_MEMBER,
            json!({ "client": client["id"], "user": foreign_user }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "org-1 cannot see it: {body}"
    );

    assert_eq!(
        s.audit(&[
            "team.create",
            "team.add_member",
            "client.create",
            "client.add_member"
        ])
        .await
        .into_iter()
        .filter(|(_, result)| result != "error")
        .collect::<Vec<_>>(),
        pairs(&[
            ("team.create", "success"),
            ("team.create", "success"),
            ("team.create", "denied"),
            ("team.add_member", "success"),
            ("team.add_member", "success"),
            ("team.add_member", "denied"),
            ("client.create", "success"),
            ("client.add_member", "success"),
        ])
    );
}

/// The `stackgate.lookup_email` setting once showed one user of any organization (the lookup
/// behind row H); its policy is gone, so the setting shows no one.
#[tokio::test(flavor = "multi_thread")]
async fn the_email_lookup_setting_shows_no_one() {
    let s = seeded().await;
    let pool = build_pool(&s.app.db.url(), 1).expect("pool");
    let org = org_id(&mut s.db().await, "org-0").await;
    let scope = Scope::org(org, Uuid::nil());
    let seen = |email: &'static str| {
        let scope = scope.clone();
        let pool = pool.clone();
        async move {
            scope
                .transaction(&pool, async |conn| {
                    diesel::sql_query("select set_config('stackgate.lookup_email', $1, true)")
                        .bind::<diesel::sql_types::Text, _>(email)
                        .execute(conn)
                        .await?;
                    Ok(users::table
                        .select(users::email)
                        .order(users::email)
                        .load::<String>(conn)
                        .await?)
                })
                .await
                .expect("lookup")
        }
    };
    let plain = seen("").await;
    assert!(
        plain.iter().all(|e| e.starts_with("org-0-")) && plain.len() == 6,
        "{plain:?}"
    );
    assert_eq!(seen("org-5-admin@example.test").await, plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_are_validated_strictly() {
    let s = seeded().await;
    let permissions = json!({ "projects": "full", "docks": "read", "audit": "read" });
    let body = s
        .run(
            &s.owner,
            CREATE_ROLE,
            json!({ "name": "Release manager", "p": permissions }),
        )
        .await;
    assert_eq!(
        body["data"]["createRole"]["permissions"], permissions,
        "{body}"
    );
    assert_eq!(body["data"]["createRole"]["isBuiltin"], false);
    let long_name = "r".repeat(65);
    for (name, p, code) in [
        ("Release manager", json!({}), "CONFLICT"),
        ("owner", json!({}), "CONFLICT"),
        ("", json!({}), "BAD_USER_INPUT"),
        (long_name.as_str(), json!({}), "BAD_USER_INPUT"),
        ("x", json!([]), "BAD_USER_INPUT"),
        ("x", json!("full"), "BAD_USER_INPUT"),
        ("x", json!({ "billing": "full" }), "BAD_USER_INPUT"),
        ("x", json!({ "projects": "none" }), "BAD_USER_INPUT"),
        ("x", json!({ "projects": "FULL" }), "BAD_USER_INPUT"),
        ("x", json!({ "projects": 2 }), "BAD_USER_INPUT"),
    ] {
        let body = s
            .run(&s.owner, CREATE_ROLE, json!({ "name": name, "p": p }))
            .await;
        assert_eq!(error_code(&body), code, "{name} {p}: {body}");
    }
    let body = s
        .run(
            &s.token("admin"),
            CREATE_ROLE,
            json!({ "name": "Auditor", "p": { "audit": "read" } }),
        )
        .await;
    assert_eq!(body["data"]["createRole"]["name"], "Auditor", "{body}");
    let body = s
        .run(
            &s.token("member"),
            CREATE_ROLE,
            json!({ "name": "Mine", "p": {} }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    assert_eq!(
        s.audit(&["role.create"]).await.last(),
        Some(&("role.create".to_owned(), "denied".to_owned()))
    );
    assert_eq!(
        s.audit(&["role.create"])
            .await
            .iter()
            .filter(|(_, r)| r == "success")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn member_roles_always_keep_an_owner() {
    let s = seeded().await;
    let dir = s.directory(&s.owner).await;
    let org = &dir["organization"];
    let role = |name: &str| id_where(&org["roles"], "name", name);
    let owner = member_id(&dir, "org-0-owner@example.test");
    let admin = member_id(&dir, "org-0-admin@example.test");
    let member = member_id(&dir, "org-0-member@example.test");

    let body = s
        .run(
            &s.owner,
            SET_ROLE,
            json!({ "user": member, "role": role("viewer") }),
        )
        .await;
    assert_eq!(
        body["data"]["setMemberRole"],
        json!({ "user": { "email": "org-0-member@example.test" }, "role": "viewer" }),
        "{body}"
    );
    let body = s
        .run(
            &s.owner,
            SET_ROLE,
            json!({ "user": owner, "role": role("admin") }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "CONFLICT",
        "the last owner stays: {body}"
    );
    let body = s.run(&s.owner, REMOVE, json!({ "user": owner })).await;
    assert_eq!(
        error_code(&body),
        "CONFLICT",
        "the last owner stays: {body}"
    );

    let foreign = s.directory(&s.other).await;
    let foreign_user = member_id(&foreign, "org-1-member@example.test");
    let foreign_role = id_where(&foreign["organization"]["roles"], "name", "viewer");
    for (variables, code) in [
        (
            json!({ "user": foreign_user, "role": role("viewer") }),
            "NOT_FOUND",
        ),
        (json!({ "user": member, "role": foreign_role }), "NOT_FOUND"),
        (
            json!({ "user": role("viewer"), "role": role("viewer") }),
            "NOT_FOUND",
        ),
        (json!({ "user": member, "role": member }), "NOT_FOUND"),
        (
            json!({ "user": "nonsense", "role": role("viewer") }),
            "BAD_USER_INPUT",
        ),
    ] {
        let body = s.run(&s.owner, SET_ROLE, variables.clone()).await;
        assert_eq!(error_code(&body), code, "{variables}: {body}");
    }
    let body = s
        .run(
            &s.viewer,
            SET_ROLE,
            json!({ "user": member, "role": role("owner") }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Two owners demoting each other at once: exactly one succeeds, every round.
    let mut conn = s.db().await;
    let org_uuid = org_id(&mut conn, "org-0").await;
    let admin_token = s.token("admin");
    for round in 0..5 {
        let body = s
            .run(
                &s.owner,
                SET_ROLE,
                json!({ "user": admin, "role": role("owner") }),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let (first, second) = tokio::join!(
            s.run(
                &s.owner,
                SET_ROLE,
                json!({ "user": admin, "role": role("admin") })
            ),
            s.run(
                &admin_token,
                SET_ROLE,
                json!({ "user": owner, "role": role("admin") })
            ),
        );
        let mut codes = [error_code(&first), error_code(&second)];
        codes.sort_unstable();
        assert_eq!(
            codes,
            ["<no code>", "CONFLICT"],
            "round {round}: one wins, one is refused: {first} {second}"
        );
        let owners: i64 = memberships::table
            .inner_join(roles::table.on(roles::id.eq(memberships::role_id)))
            .filter(memberships::org_id.eq(org_uuid))
            .filter(roles::name.eq("owner"))
            .count()
            .get_result(&mut conn)
            .await
            .expect("owners");
        assert_eq!(owners, 1, "round {round}");
        if error_code(&first) == "CONFLICT" {
            // The admin demoted org-0-owner: make org-0-owner the owner again.
            let body = s
                .run(
                    &admin_token,
                    SET_ROLE,
                    json!({ "user": owner, "role": role("owner") }),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
            let body = s
                .run(
                    &s.owner,
                    SET_ROLE,
                    json!({ "user": admin, "role": role("admin") }),
                )
                .await;
            assert!(body["errors"].is_null(), "{body}");
        }
    }

    let body = s.run(&s.owner, REMOVE, json!({ "user": member })).await;
    assert_eq!(body["data"]["removeMember"], true, "{body}");
    let body = s.run(&s.owner, REMOVE, json!({ "user": member })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "gone: {body}");
    let members = s.directory(&s.owner).await["organization"]["members"].clone();
    assert_eq!(members.as_array().map(Vec::len), Some(3), "{members}");
    let left: i64 = team_memberships::table
        .inner_join(users::table.on(users::id.eq(team_memberships::user_id)))
        .filter(users::email.eq("org-0-member@example.test"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 0, "their team memberships went with them");
    let body = s
        .run(&s.owner, REMOVE, json!({ "user": foreign_user }))
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let body = s.run(&s.viewer, REMOVE, json!({ "user": admin })).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    let log = s.audit(&["member.set_role", "member.remove"]).await;
    for expected in [
        ("member.set_role", "success"),
        ("member.set_role", "error"),
        ("member.set_role", "denied"),
        ("member.remove", "success"),
        ("member.remove", "error"),
        ("member.remove", "denied"),
    ] {
        assert!(
            log.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} in {log:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dock_grants_are_upserted_and_revoked() {
    let s = seeded().await;
    let dir = s.directory(&s.owner).await;
    let org = &dir["organization"];
    let dock = org["docks"]["nodes"][0]["id"].clone();
    let team = id_where(&org["teams"], "name", "Team 1");
    let client = id_where(&org["clients"], "name", "Client 1");
    let mut conn = s.db().await;
    let org_uuid = org_id(&mut conn, "org-0").await;
    let before: i64 = dock_permissions::table
        .filter(dock_permissions::org_id.eq(org_uuid))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");

    for level in ["READ", "FULL"] {
        let body = s
            .run(
                &s.owner,
                GRANT,
                json!({ "dock": dock, "team": team, "level": level }),
            )
            .await;
        assert_eq!(body["data"]["grantDockAccess"], true, "{body}");
    }
    let body = s
        .run(
            &s.owner,
            GRANT,
            json!({ "dock": dock, "client": client, "level": "READ" }),
        )
        .await;
    assert_eq!(body["data"]["grantDockAccess"], true, "{body}");
    let levels: Vec<(Option<Uuid>, String)> = dock_permissions::table
        .filter(dock_permissions::org_id.eq(org_uuid))
        .order(dock_permissions::level)
        .select((dock_permissions::team_id, dock_permissions::level))
        .load(&mut conn)
        .await
        .expect("grants");
    assert_eq!(
        levels.len() as i64,
        before + 2,
        "one row per grantee: {levels:?}"
    );
    assert!(
        levels.iter().any(|(t, l)| t.is_some() && l == "full"),
        "upserted to full: {levels:?}"
    );

    let body = s
        .run(
            &s.owner,
            REVOKE_GRANT,
            json!({ "dock": dock, "team": team }),
        )
        .await;
    assert_eq!(body["data"]["revokeDockAccess"], true, "{body}");
    let body = s
        .run(
            &s.owner,
            REVOKE_GRANT,
            json!({ "dock": dock, "team": team }),
        )
        .await;
    assert_eq!(
        body["data"]["revokeDockAccess"], false,
        "already gone: {body}"
    );
    let body = s
        .run(
            &s.owner,
            REVOKE_GRANT,
            json!({ "dock": dock, "client": client }),
        )
        .await;
    assert_eq!(body["data"]["revokeDockAccess"], true, "{body}");

    let foreign = s.directory(&s.other).await["organization"].clone();
    let foreign_dock = foreign["docks"]["nodes"][0]["id"].clone();
    let foreign_team = foreign["teams"][0]["id"].clone();
    for (variables, code) in [
        (
            json!({ "dock": dock, "team": team, "client": client, "level": "READ" }),
            "BAD_USER_INPUT",
        ),
        (json!({ "dock": dock, "level": "READ" }), "BAD_USER_INPUT"),
        (
            json!({ "dock": dock, "team": team, "level": "NONE" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "dock": foreign_dock, "team": team, "level": "READ" }),
            "NOT_FOUND",
        ),
        (
            json!({ "dock": dock, "team": foreign_team, "level": "READ" }),
            "NOT_FOUND",
        ),
        (
            json!({ "dock": team, "team": team, "level": "READ" }),
            "NOT_FOUND",
        ),
        (
            json!({ "dock": dock, "team": client, "level": "READ" }),
            "NOT_FOUND",
        ),
        (
            json!({ "dock": dock, "client": team, "level": "READ" }),
            "NOT_FOUND",
        ),
    ] {
        let body = s.run(&s.owner, GRANT, variables.clone()).await;
        assert_eq!(error_code(&body), code, "{variables}: {body}");
    }
    let body = s
        .run(
            &s.owner,
            REVOKE_GRANT,
            json!({ "dock": foreign_dock, "team": team }),
        )
        .await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");
    let body = s.run(&s.owner, REVOKE_GRANT, json!({ "dock": dock })).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let body = s
        .run(
            &s.token("member"),
            GRANT,
            json!({ "dock": dock, "team": team, "level": "READ" }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "FORBIDDEN",
        "members read docks only: {body}"
    );

    let log = s.audit(&["dock.grant", "dock.revoke"]).await;
    assert_eq!(
        log.iter()
            .filter(|e| *e == &("dock.grant".to_owned(), "success".to_owned()))
            .count(),
        3,
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|e| *e == &("dock.revoke".to_owned(), "success".to_owned()))
            .count(),
        3,
        "{log:?}"
    );
    assert_eq!(
        log.last(),
        Some(&("dock.grant".to_owned(), "denied".to_owned()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_show_their_secret_once_and_store_its_hash() {
    let s = seeded().await;
    let member = s.token("member");
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let body = s
        .run(
            &member,
            CREATE_KEY,
            json!({ "name": " CI ", "at": expires }),
        )
        .await;
    let created = body["data"]["createApiKey"].clone();
    let token = text(&created["secret"]);
    let (prefix, secret) = api_key::parse_key(&token).unwrap_or_else(|| panic!("{body}"));
    assert_eq!(created["apiKey"]["prefix"], prefix);
    assert_eq!(created["apiKey"]["name"], "CI");
    assert!(created["apiKey"]["expiresAt"].is_string());
    assert!(created["apiKey"]["revokedAt"].is_null() && created["apiKey"]["lastUsedAt"].is_null());

    let mut conn = s.db().await;
    let (hash, user): (Vec<u8>, Uuid) = api_keys::table
        .filter(api_keys::prefix.eq(prefix))
        .select((api_keys::secret_hash, api_keys::user_id))
        .first(&mut conn)
        .await
        .expect("stored key");
    assert_eq!(
        hash,
        api_key::hash_secret(secret),
        "only the hash is stored"
    );
    let row: String = diesel::sql_query("select row_to_json(k)::text as row from api_keys k")
        .get_result::<Row>(&mut conn)
        .await
        .expect("row")
        .row;
    assert!(
        !row.contains(secret),
        "the secret is nowhere in the row: {row}"
    );
    let logged: Vec<String> =
        diesel::sql_query("select row_to_json(a)::text as row from audit_logs a")
            .load::<Row>(&mut conn)
            .await
            .expect("audit rows")
            .into_iter()
            .map(|r| r.row)
            .collect();
    assert!(
        logged.iter().all(|r| !r.contains(secret)),
        "nor in the audit log"
    );
    let member_id: Uuid = users::table
        .filter(users::external_id.eq("org-0-member"))
        .select(users::id)
        .first(&mut conn)
        .await
        .expect("user");
    assert_eq!(user, member_id, "the key is the creator's");

    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    for variables in [json!({ "name": "old", "at": past }), json!({ "name": " " })] {
        let body = s.run(&member, CREATE_KEY, variables.clone()).await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{variables}: {body}");
    }
    let body = s
        .run(&s.viewer, CREATE_KEY, json!({ "name": "mine" }))
        .await;
    assert!(
        body["data"]["createApiKey"]["secret"].is_string(),
        "anyone may: {body}"
    );
    assert_eq!(
        s.audit(&["api_key.create"]).await,
        pairs(&[("api_key.create", "success"), ("api_key.create", "success")])
    );

    // What authentication will use: the key by prefix before any org, then a bounded touch.
    let pool = build_pool(&s.app.db.url(), 1).expect("pool");
    let found = Scope::default()
        .transaction(&pool, async |conn| {
            api_key::find_for_auth(conn, prefix).await
        })
        .await
        .expect("lookup")
        .expect("found by prefix");
    assert_eq!(found.user_id, member_id);
    assert!(api_key::verify_secret(secret, &found.secret_hash));
    let missing = Scope::default()
        .transaction(&pool, async |conn| {
            api_key::find_for_auth(conn, "zzzzzzzzzz").await
        })
        .await
        .expect("lookup");
    assert!(missing.is_none());
    let scope = Scope::org(found.org_id, found.user_id);
    for expected in [true, false] {
        let touched = scope
            .transaction(&pool, async |conn| api_key::touch(conn, found.id).await)
            .await
            .expect("touch");
        assert_eq!(touched, expected, "written once per five minutes");
    }
}

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    row: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_revoked_by_their_owner_or_an_admin() {
    let s = seeded().await;
    let member = s.token("member");
    let create = async |token: &str, name: &str| {
        let body = s.run(token, CREATE_KEY, json!({ "name": name })).await;
        body["data"]["createApiKey"]["apiKey"]["id"].clone()
    };
    let own = create(&member, "laptop").await;
    let body = s.run(&s.viewer, REVOKE_KEY, json!({ "id": own })).await;
    assert_eq!(
        error_code(&body),
        "NOT_FOUND",
        "others' keys do not exist: {body}"
    );
    let body = s.run(&s.other, REVOKE_KEY, json!({ "id": own })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "nor in other orgs: {body}");
    let body = s.run(&member, REVOKE_KEY, json!({ "id": own })).await;
    assert_eq!(body["data"]["revokeApiKey"], true, "{body}");
    let body = s.run(&member, REVOKE_KEY, json!({ "id": own })).await;
    assert_eq!(
        body["data"]["revokeApiKey"], false,
        "already revoked: {body}"
    );

    let second = create(&member, "ci").await;
    let body = s
        .run(&s.token("admin"), REVOKE_KEY, json!({ "id": second }))
        .await;
    assert_eq!(
        body["data"]["revokeApiKey"], true,
        "settings FULL revokes any: {body}"
    );
    let team = s.directory(&s.owner).await["organization"]["teams"][0]["id"].clone();
    for (id, code) in [(team, "NOT_FOUND"), (json!("!!"), "BAD_USER_INPUT")] {
        let body = s.run(&member, REVOKE_KEY, json!({ "id": id })).await;
        assert_eq!(error_code(&body), code, "{body}");
    }

    // Removing a person revokes their keys in the organization.
    let viewer_key = create(&s.viewer, "script").await;
    assert!(viewer_key.is_string());
    let dir = s.directory(&s.owner).await;
    let viewer_id = member_id(&dir, "org-0-viewer@example.test");
    let body = s.run(&s.owner, REMOVE, json!({ "user": viewer_id })).await;
    assert_eq!(body["data"]["removeMember"], true, "{body}");
    let live: i64 = api_keys::table
        .filter(api_keys::revoked_at.is_null())
        .count()
        .get_result(&mut s.db().await)
        .await
        .expect("count");
    assert_eq!(live, 0, "every key here is revoked");

    let log = s.audit(&["api_key.revoke"]).await;
    assert_eq!(
        log.iter().filter(|(_, r)| r == "success").count(),
        3,
        "{log:?}"
    );
    assert!(log.iter().any(|(_, r)| r == "error"), "{log:?}");
}
