//! Adversarial tests: RBAC integrity and invitations (issue 11 item 7, rows G and H).
//!
//! The attacker of row G held settings FULL (admin) and climbed to owner; the attacker of row H
//! owned another organization and pulled strangers into it by e-mail, learning on the way which
//! e-mails exist. Each test below replays one such move and expects a refusal, audited where it
//! is an act on something the caller can see.

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{TestApp, error_code};
use crate::subscriptions::Subscriber;

const MEMBERS: &str = "{ viewer { organization { roles { id name } members { user { id email } role } \
    teams { id name } clients { id name } } } }";
const SET_ROLE: &str =
    "mutation($user: ID!, $role: ID!) { setMemberRole(userId: $user, roleId: $role) { role } }";
const REMOVE: &str = "mutation($user: ID!) { removeMember(userId: $user) }";
const CREATE_ROLE: &str =
    "mutation($name: String!, $p: JSON!) { createRole(name: $name, permissions: $p) { id name } }";
const ADD_TEAM_MEMBER: &str = "mutation($team: ID!, $user: ID, $email: String, $role: ID!) { \
    addTeamMember(teamId: $team, userId: $user, email: $email, roleId: $role) { id } }";
const ADD_CLIENT_MEMBER: &str = "mutation($client: ID!, $user: ID, $email: String, $role: ID) { \
    addClientMember(clientId: $client, userId: $user, email: $email, roleId: $role) { id } }";
const INVITE: &str = "mutation($input: CreateInvitationInput!) { createInvitation(input: $input) { \
    id email organizationName organizationSlug role { name } team { name } client { name } \
    invitedBy { email } expiresAt acceptedAt revokedAt createdAt } }";
const ACCEPT: &str =
    "mutation($id: ID!) { acceptInvitation(id: $id) { id acceptedAt role { name } } }";
const REVOKE: &str = "mutation($id: ID!) { revokeInvitation(id: $id) }";
const MY_INVITATIONS: &str = "{ viewer { user { email } invitations { id email organizationSlug \
    role { name } team { name } invitedBy { email } } } }";

/// The seed (ten organizations, each with `org-K-owner`, `-admin`, `-member`, `-viewer`,
/// `-client-0`, `-client-1`) behind a running server.
async fn seeded() -> TestApp {
    let app = TestApp::spawn().await;
    stackgate::devkit::seed::seed(&mut app.db.owner().await, 1)
        .await
        .expect("seed");
    app
}

/// A token of `org-0`'s `who` (owner, admin, ...), pinned to `org-0`.
fn org_0(app: &TestApp, who: &str) -> String {
    app.token(&format!("org-0-{who}"), Some("org-0"))
}

async fn run(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.graphql(Some(token), query, variables).await.1
}

/// The same operation over `graphql-transport-ws`: its one result.
async fn run_ws(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let mut socket = Subscriber::open(&app.url("/graphql/ws"), token, query, variables).await;
    socket.result().await
}

/// `org-0` as its owner sees it.
async fn directory(app: &TestApp) -> Value {
    let body = run(app, &org_0(app, "owner"), MEMBERS, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    body["data"]["viewer"]["organization"].clone()
}

fn id_where(list: &Value, key: &str, value: &str) -> Value {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i[key] == value))
        .map(|i| i["id"].clone())
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

fn member_id(org: &Value, email: &str) -> Value {
    org["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user"]["email"] == email))
        .map(|m| m["user"]["id"].clone())
        .unwrap_or_else(|| panic!("no member {email} in {org}"))
}

fn role_of(org: &Value, email: &str) -> String {
    org["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user"]["email"] == email))
        .and_then(|m| m["role"].as_str())
        .unwrap_or("<none>")
        .to_owned()
}

/// `(action, result)` of `org`'s audit entries with one of `actions`, oldest first.
async fn audit(app: &TestApp, org: &str, actions: &[&str]) -> Vec<(String, String)> {
    let query = "query($a: [String!]) { viewer { organization { auditLogs(first: 100, actions: $a) { \
        nodes { action result } } } } }";
    let token = app.token(&format!("{org}-owner"), Some(org));
    let body = run(app, &token, query, json!({ "a": actions })).await;
    let nodes = body["data"]["viewer"]["organization"]["auditLogs"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("audit log: {body}"))
        .clone();
    nodes
        .iter()
        .rev()
        .map(|n| {
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (text(&n["action"]), text(&n["result"]))
        })
        .collect()
}

fn refused(body: &Value, code: &str, field: &str) {
    assert_eq!(error_code(body), code, "{body}");
    assert!(
        body["data"].is_null() || body["data"][field].is_null(),
        "{body}"
    );
}

/// Row G: an admin (settings FULL) made themselves owner with `setMemberRole`, then removed the
/// owner. Both moves are refused over HTTP and WebSocket, audited as denied, and change nothing;
/// an owner still may do both.
#[tokio::test(flavor = "multi_thread")]
async fn g_an_admin_cannot_become_owner_nor_demote_or_remove_an_owner() {
    let app = seeded().await;
    let org = directory(&app).await;
    let owner_role = id_where(&org["roles"], "name", "owner");
    let admin = member_id(&org, "org-0-admin@example.test");
    let owner = member_id(&org, "org-0-owner@example.test");
    let member = member_id(&org, "org-0-member@example.test");
    // A second owner, so that the last-owner rule is not what refuses below.
    app.db
        .owner()
        .await
        .batch_execute(
            "update memberships set role_id = (select id from roles where org_id = memberships.org_id and name = 'owner') \
             where user_id = (select id from users where external_id = 'org-0-member')",
        )
        .await
        .expect("second owner");
    let token = org_0(&app, "admin");

    let climb = json!({ "user": admin, "role": owner_role });
    refused(
        &run(&app, &token, SET_ROLE, climb.clone()).await,
        "FORBIDDEN",
        "setMemberRole",
    );
    refused(
        &run_ws(&app, &token, SET_ROLE, climb).await,
        "FORBIDDEN",
        "setMemberRole",
    );
    let viewer_role = id_where(&org["roles"], "name", "viewer");
    let demote = json!({ "user": owner, "role": viewer_role });
    refused(
        &run(&app, &token, SET_ROLE, demote).await,
        "FORBIDDEN",
        "setMemberRole",
    );
    let remove = json!({ "user": owner });
    refused(
        &run(&app, &token, REMOVE, remove.clone()).await,
        "FORBIDDEN",
        "removeMember",
    );
    refused(
        &run_ws(&app, &token, REMOVE, remove).await,
        "FORBIDDEN",
        "removeMember",
    );

    let after = directory(&app).await;
    assert_eq!(role_of(&after, "org-0-admin@example.test"), "admin");
    assert_eq!(role_of(&after, "org-0-owner@example.test"), "owner");
    let log = audit(&app, "org-0", &["member.set_role", "member.remove"]).await;
    let denied = |action: &str| {
        log.iter()
            .filter(|(a, r)| a == action && r == "denied")
            .count()
    };
    assert_eq!(
        (denied("member.set_role"), denied("member.remove")),
        (3, 2),
        "{log:?}"
    );

    // An owner may: promote the admin, then have the new owner remove the second one.
    let owner_token = org_0(&app, "owner");
    let promote = json!({ "user": admin, "role": owner_role });
    let body = run(&app, &owner_token, SET_ROLE, promote).await;
    assert_eq!(body["data"]["setMemberRole"]["role"], "owner", "{body}");
    let body = run(&app, &token, REMOVE, json!({ "user": member })).await;
    assert_eq!(body["data"]["removeMember"], true, "{body}");
}

/// Item 7: nobody grants a level above their own, through a custom role. A "people manager"
/// (viewer's levels plus settings FULL) may create roles up to their own levels, not above.
#[tokio::test(flavor = "multi_thread")]
async fn custom_roles_above_their_creators_level_are_refused() {
    let app = seeded().await;
    let (token, _) = people_manager(&app).await;
    let body = run(
        &app,
        &token,
        CREATE_ROLE,
        json!({ "name": "Dock admin", "p": { "docks": "full" } }),
    )
    .await;
    refused(&body, "FORBIDDEN", "createRole");
    let body = run(
        &app,
        &token,
        CREATE_ROLE,
        json!({ "name": "Auditor", "p": { "audit": "read" } }),
    )
    .await;
    refused(&body, "FORBIDDEN", "createRole");
    let body = run(
        &app,
        &token,
        CREATE_ROLE,
        json!({ "name": "Reader", "p": { "docks": "read", "settings": "full" } }),
    )
    .await;
    assert_eq!(
        body["data"]["createRole"]["name"], "Reader",
        "at their level: {body}"
    );
    let log = audit(&app, "org-0", &["role.create"]).await;
    assert_eq!(
        log.iter().filter(|(_, r)| r == "denied").count(),
        2,
        "{log:?}"
    );
    let mut conn = app.db.owner().await;
    let created: Vec<String> = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use stackgate::db::schema::roles;
        roles::table
            .filter(roles::is_builtin.eq(false))
            .select(roles::name)
            .load(&mut conn)
            .await
            .expect("roles")
    };
    assert!(
        !created.iter().any(|n| n == "Dock admin" || n == "Auditor"),
        "{created:?}"
    );
}

/// A custom role with the built-in viewer's levels plus settings FULL, held by `org-0-viewer`;
/// returns their token and the role's id.
async fn people_manager(app: &TestApp) -> (String, Value) {
    let owner = org_0(app, "owner");
    let levels = json!({ "projects": "read", "resources": "read", "docks": "read",
                         "operations": "read", "monitoring": "read", "settings": "full" });
    let body = run(
        app,
        &owner,
        CREATE_ROLE,
        json!({ "name": "People manager", "p": levels }),
    )
    .await;
    let role = body["data"]["createRole"]["id"].clone();
    assert!(role.is_string(), "{body}");
    let org = directory(app).await;
    let viewer = member_id(&org, "org-0-viewer@example.test");
    let body = run(
        app,
        &owner,
        SET_ROLE,
        json!({ "user": viewer, "role": role }),
    )
    .await;
    assert_eq!(
        body["data"]["setMemberRole"]["role"], "People manager",
        "{body}"
    );
    (org_0(app, "viewer"), role)
}

/// Item 7: nobody assigns a role above their own — as an org role, a team role, a client role or
/// an invitation's role — nor changes the role of someone above them; dock grants at FULL need
/// docks FULL. Every refusal is audited as denied.
#[tokio::test(flavor = "multi_thread")]
async fn roles_above_the_assigners_own_are_not_assigned() {
    let app = seeded().await;
    let (token, _) = people_manager(&app).await;
    let org = directory(&app).await;
    let role = |name: &str| id_where(&org["roles"], "name", name);
    let team = id_where(&org["teams"], "name", "Team 0");
    let client = id_where(&org["clients"], "name", "Client 0");
    let viewer_user = member_id(&org, "org-0-viewer@example.test");
    let admin = member_id(&org, "org-0-admin@example.test");
    let member = member_id(&org, "org-0-member@example.test");

    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "setMemberRole",
            SET_ROLE,
            json!({ "user": viewer_user, "role": role("admin") }),
        ),
        (
            "setMemberRole",
            SET_ROLE,
            json!({ "user": admin, "role": role("viewer") }),
        ),
        (
            "setMemberRole",
            SET_ROLE,
            json!({ "user": member, "role": role("viewer") }),
        ),
        (
            "addTeamMember",
            ADD_TEAM_MEMBER,
            json!({ "team": team, "user": viewer_user, "role": role("member") }),
        ),
        (
            "addClientMember",
            ADD_CLIENT_MEMBER,
            json!({ "client": client, "user": admin, "role": role("admin") }),
        ),
        (
            "createInvitation",
            INVITE,
            json!({ "input": { "email": "new@example.invalid", "roleId": role("member") } }),
        ),
        (
            "createInvitation",
            INVITE,
            json!({ "input": { "email": "new@example.invalid", "roleId": role("owner") } }),
        ),
        ("removeMember", REMOVE, json!({ "user": admin })),
    ];
    for (field, query, variables) in &cases {
        let body = run(&app, &token, query, variables.clone()).await;
        refused(&body, "FORBIDDEN", field);
    }
    // At or below their own level it works.
    let body = run(
        &app,
        &token,
        ADD_TEAM_MEMBER,
        json!({ "team": team, "user": viewer_user, "role": role("viewer") }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");

    // Dock grants: FULL needs docks FULL of the granter (the member role reads docks only).
    let docks = run(
        &app,
        &org_0(&app, "owner"),
        "{ viewer { organization { docks { nodes { id } } } } }",
        json!({}),
    )
    .await;
    let dock = docks["data"]["viewer"]["organization"]["docks"]["nodes"][0]["id"].clone();
    let grant =
        "mutation($d: ID!, $t: ID!) { grantDockAccess(dockId: $d, teamId: $t, level: FULL) }";
    let body = run(
        &app,
        &org_0(&app, "member"),
        grant,
        json!({ "d": dock, "t": team }),
    )
    .await;
    refused(&body, "FORBIDDEN", "grantDockAccess");

    let log = audit(
        &app,
        "org-0",
        &[
            "member.set_role",
            "member.remove",
            "team.add_member",
            "client.add_member",
            "invitation.create",
            "dock.grant",
        ],
    )
    .await;
    let denied = log.iter().filter(|(_, r)| r == "denied").count();
    assert_eq!(denied, cases.len() + 1, "{log:?}");
    let after = directory(&app).await;
    assert_eq!(role_of(&after, "org-0-admin@example.test"), "admin");
    assert_eq!(role_of(&after, "org-0-member@example.test"), "member");
}

/// Row H: an owner added another organization's user to a team by e-mail, without their
/// consent, and unknown e-mails answered differently. Now a person who does not reach the
/// organization gets the same `NOT_FOUND` whether their e-mail (or id) is known or not, nothing
/// is written, and their own tokens keep working.
#[tokio::test(flavor = "multi_thread")]
async fn h_strangers_are_not_added_and_known_emails_look_unknown() {
    let app = seeded().await;
    let owner = org_0(&app, "owner");
    let org = directory(&app).await;
    let team = id_where(&org["teams"], "name", "Team 0");
    let client = id_where(&org["clients"], "name", "Client 0");
    let member_role = id_where(&org["roles"], "name", "member");
    let by_email = |email: &str| json!({ "team": team, "email": email, "role": member_role });
    let known = run(
        &app,
        &owner,
        ADD_TEAM_MEMBER,
        by_email("org-1-member@example.test"),
    )
    .await;
    let unknown = run(
        &app,
        &owner,
        ADD_TEAM_MEMBER,
        by_email("nobody@example.invalid"),
    )
    .await;
    assert_eq!(error_code(&known), "NOT_FOUND", "{known}");
    assert_eq!(known, unknown, "a known e-mail answers like an unknown one");
    let shouted = run(
        &app,
        &owner,
        ADD_TEAM_MEMBER,
        by_email("ORG-1-Member@Example.test"),
    )
    .await;
    assert_eq!(known, shouted);
    let known = run(
        &app,
        &owner,
        ADD_CLIENT_MEMBER,
        json!({ "client": client, "email": "org-1-member@example.test" }),
    )
    .await;
    let unknown = run(
        &app,
        &owner,
        ADD_CLIENT_MEMBER,
        json!({ "client": client, "email": "nobody@example.invalid" }),
    )
    .await;
    assert_eq!(error_code(&known), "NOT_FOUND", "{known}");
    assert_eq!(known, unknown);

    // By id: another organization's user id is no one here either.
    let theirs = run(
        &app,
        &app.token("org-1-owner", Some("org-1")),
        "{ viewer { user { id } } }",
        json!({}),
    )
    .await;
    let body = run(&app, &owner, ADD_TEAM_MEMBER, json!({ "team": team, "user": theirs["data"]["viewer"]["user"]["id"], "role": member_role })).await;
    assert_eq!(error_code(&body), "NOT_FOUND", "{body}");

    // Nothing was written, and org-1's member still signs in without an `org` claim.
    let mut conn = app.db.owner().await;
    let strangers: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use stackgate::db::schema::{team_memberships, users};
        team_memberships::table
            .inner_join(users::table.on(users::id.eq(team_memberships::user_id)))
            .filter(users::email.eq("org-1-member@example.test"))
            .count()
            .get_result(&mut conn)
            .await
            .expect("count")
    };
    assert_eq!(strangers, 1, "only org-1's own team-0 membership");
    let body = run(
        &app,
        &app.token("org-1-member", None),
        "{ viewer { organization { slug } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "org-1",
        "{body}"
    );

    // A person who reaches org-0 is found by e-mail, whatever its case.
    let body = run(
        &app,
        &owner,
        ADD_TEAM_MEMBER,
        by_email("ORG-0-Viewer@example.test"),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
}

/// Row H / item 7: `createInvitation` answers a known and an unknown e-mail alike (no lookup).
#[tokio::test(flavor = "multi_thread")]
async fn h_invitations_answer_known_and_unknown_emails_alike() {
    let app = seeded().await;
    let owner = org_0(&app, "owner");
    let at = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let invite = |email: &str| json!({ "input": { "email": email, "expiresAt": at } });
    let mut known = run(&app, &owner, INVITE, invite("org-1-member@example.test")).await;
    let mut unknown = run(&app, &owner, INVITE, invite("nobody@example.invalid")).await;
    for body in [&mut known, &mut unknown] {
        assert!(body.get("errors").is_none(), "{body}");
        let invitation = &mut body["data"]["createInvitation"];
        for volatile in ["id", "email", "createdAt"] {
            invitation[volatile] = Value::Null;
        }
    }
    assert_eq!(known, unknown);
    assert_eq!(known["data"]["createInvitation"]["role"]["name"], "member");
}

/// Item 7: the invitation flow end to end. The invitee (a member of org-1 only) sees it in
/// `viewer.invitations`, nobody else does or may accept it, accepting makes them a member of
/// org-0 with its role, once.
#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_is_seen_and_accepted_by_its_invitee_only() {
    let app = seeded().await;
    let owner = org_0(&app, "owner");
    let org = directory(&app).await;
    let viewer_role = id_where(&org["roles"], "name", "viewer");
    let body = run(
        &app,
        &owner,
        INVITE,
        json!({ "input": { "email": " Org-1-Member@Example.TEST ", "roleId": viewer_role } }),
    )
    .await;
    let invitation = body["data"]["createInvitation"].clone();
    assert_eq!(invitation["email"], "org-1-member@example.test", "{body}");
    assert_eq!(invitation["organizationSlug"], "org-0");
    assert_eq!(invitation["invitedBy"]["email"], "org-0-owner@example.test");
    let id = invitation["id"].clone();

    let invitee = app.token("org-1-member", None);
    let mine = run(&app, &invitee, MY_INVITATIONS, json!({})).await;
    let listed = &mine["data"]["viewer"]["invitations"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["role"]["name"], "viewer");
    assert_eq!(listed[0]["invitedBy"]["email"], "org-0-owner@example.test");
    let pending = run(
        &app,
        &owner,
        "{ viewer { organization { invitations { id } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        pending["data"]["viewer"]["organization"]["invitations"][0]["id"], id,
        "{pending}"
    );

    for stranger in [
        app.token("org-1-viewer", None),
        owner.clone(),
        app.token("org-0-admin", Some("org-0")),
    ] {
        let theirs = run(&app, &stranger, MY_INVITATIONS, json!({})).await;
        assert_eq!(
            theirs["data"]["viewer"]["invitations"],
            json!([]),
            "{theirs}"
        );
        let body = run(&app, &stranger, ACCEPT, json!({ "id": id })).await;
        refused(&body, "NOT_FOUND", "acceptInvitation");
    }

    let body = run(&app, &invitee, ACCEPT, json!({ "id": id })).await;
    assert!(
        body["data"]["acceptInvitation"]["acceptedAt"].is_string(),
        "{body}"
    );
    let now_member = run(
        &app,
        &app.token("org-1-member", Some("org-0")),
        "{ viewer { organization { slug } permissions { projects settings } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        now_member["data"]["viewer"]["organization"]["slug"], "org-0",
        "{now_member}"
    );
    assert_eq!(
        now_member["data"]["viewer"]["permissions"],
        json!({ "projects": "READ", "settings": "NONE" })
    );
    assert_eq!(
        role_of(&directory(&app).await, "org-1-member@example.test"),
        "viewer"
    );

    // A member of two organizations now: their tokens name the one they act in.
    let invitee = app.token("org-1-member", Some("org-1"));
    let again = run(&app, &invitee, ACCEPT, json!({ "id": id })).await;
    refused(&again, "BAD_USER_INPUT", "acceptInvitation");
    assert!(
        again["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("already accepted")),
        "{again}"
    );
    let mine = run(&app, &invitee, MY_INVITATIONS, json!({})).await;
    assert_eq!(mine["data"]["viewer"]["invitations"], json!([]), "{mine}");
    assert_eq!(
        audit(&app, "org-0", &["invitation.create", "invitation.accept"]).await,
        vec![
            ("invitation.create".to_owned(), "success".to_owned()),
            ("invitation.accept".to_owned(), "success".to_owned()),
            ("invitation.accept".to_owned(), "error".to_owned()),
        ]
    );
}

/// Item 7: revoked and expired invitations, and those whose sender may no longer grant their
/// role, cannot be accepted; only owners invite owners; a key cannot accept.
#[tokio::test(flavor = "multi_thread")]
async fn closed_invitations_cannot_be_accepted() {
    let app = seeded().await;
    let owner = org_0(&app, "owner");
    let admin = org_0(&app, "admin");
    let org = directory(&app).await;
    let role = |name: &str| id_where(&org["roles"], "name", name);
    let invite = async |token: &str, email: &str, role: Value| {
        let body = run(
            &app,
            token,
            INVITE,
            json!({ "input": { "email": email, "roleId": role } }),
        )
        .await;
        body["data"]["createInvitation"]["id"].clone()
    };
    let revoked = invite(&owner, "org-2-viewer@example.test", role("viewer")).await;
    let expired = invite(&owner, "org-2-viewer@example.test", role("member")).await;
    let orphaned = invite(&admin, "org-2-viewer@example.test", role("admin")).await;
    assert!(revoked.is_string() && expired.is_string() && orphaned.is_string());

    let body = run(
        &app,
        &admin,
        INVITE,
        json!({ "input": { "email": "org-2-viewer@example.test", "roleId": role("owner") } }),
    )
    .await;
    refused(&body, "FORBIDDEN", "createInvitation");
    let body = run(
        &app,
        &owner,
        INVITE,
        json!({ "input": { "email": "org-2-viewer@example.test", "roleId": role("owner") } }),
    )
    .await;
    assert!(body.get("errors").is_none(), "owners invite owners: {body}");

    assert_eq!(
        run(&app, &owner, REVOKE, json!({ "id": revoked })).await["data"]["revokeInvitation"],
        true
    );
    assert_eq!(
        run(&app, &owner, REVOKE, json!({ "id": revoked })).await["data"]["revokeInvitation"],
        false
    );
    app.db
        .owner()
        .await
        .batch_execute(&format!(
            "update invitations set expires_at = now() - interval '1 minute' where id = '{}'",
            uuid_of(&expired)
        ))
        .await
        .expect("expire");
    // The admin who sent `orphaned` is demoted to member: it no longer grants admin.
    let admin_id = member_id(&org, "org-0-admin@example.test");
    let body = run(
        &app,
        &owner,
        SET_ROLE,
        json!({ "user": admin_id, "role": role("member") }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");

    let invitee = app.token("org-2-viewer", None);
    let mine = run(&app, &invitee, MY_INVITATIONS, json!({})).await;
    let listed: Vec<&Value> = mine["data"]["viewer"]["invitations"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| &i["id"])
        .collect();
    assert!(
        !listed.contains(&&revoked) && !listed.contains(&&expired),
        "{mine}"
    );
    for (id, why) in [
        (&revoked, "revoked"),
        (&expired, "expired"),
        (&orphaned, "no longer valid"),
    ] {
        let body = run(&app, &invitee, ACCEPT, json!({ "id": id })).await;
        refused(&body, "BAD_USER_INPUT", "acceptInvitation");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(why), "{why}: {body}");
    }
    assert_eq!(
        role_of(&directory(&app).await, "org-2-viewer@example.test"),
        "<none>"
    );
}

/// The uuid inside a global id (the tests' own knowledge of the id format).
fn uuid_of(id: &Value) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id.as_str().expect("id"))
        .expect("base64");
    let text = String::from_utf8(bytes).expect("utf-8");
    text.split_once(':').expect("Type:uuid").1.to_owned()
}

/// Item 7: someone who belongs to no organization can still see and accept their invitations
/// (and do nothing else); a team invitation makes them a guest of that team.
#[tokio::test(flavor = "multi_thread")]
async fn a_person_in_no_organization_sees_and_accepts_invitations() {
    let app = seeded().await;
    fixtures::user(&mut app.db.owner().await, "newcomer").await;
    let newcomer = app.token("newcomer", None);
    let mine = run(&app, &newcomer, MY_INVITATIONS, json!({})).await;
    assert_eq!(
        mine["data"]["viewer"],
        json!({ "user": { "email": "newcomer@example.test" }, "invitations": [] }),
        "{mine}"
    );
    let body = run(
        &app,
        &newcomer,
        "{ viewer { organization { slug } } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = run(
        &app,
        &newcomer,
        "mutation { createApiKey(name: \"k\") { secret } }",
        json!({}),
    )
    .await;
    refused(&body, "FORBIDDEN", "createApiKey");
    let body = run(
        &app,
        &newcomer,
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": directory(&app).await["teams"][0]["id"] }),
    )
    .await;
    assert!(
        body["data"].is_null() || body["data"]["node"].is_null(),
        "{body}"
    );

    let org = directory(&app).await;
    let team = id_where(&org["teams"], "name", "Team 0");
    let role = id_where(&org["roles"], "name", "member");
    let body = run(
        &app,
        &org_0(&app, "owner"),
        INVITE,
        json!({ "input": { "email": "NEWCOMER@example.test", "teamId": team, "roleId": role } }),
    )
    .await;
    let id = body["data"]["createInvitation"]["id"].clone();
    assert_eq!(
        body["data"]["createInvitation"]["team"]["name"], "Team 0",
        "{body}"
    );
    let mine = run(&app, &newcomer, MY_INVITATIONS, json!({})).await;
    assert_eq!(
        mine["data"]["viewer"]["invitations"][0]["team"]["name"], "Team 0",
        "{mine}"
    );
    let body = run(&app, &newcomer, ACCEPT, json!({ "id": id })).await;
    assert!(
        body["data"]["acceptInvitation"]["acceptedAt"].is_string(),
        "{body}"
    );

    let body = run(
        &app,
        &newcomer,
        "{ viewer { organization { slug teams { name } } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["data"]["viewer"]["organization"],
        json!({ "slug": "org-0", "teams": [{ "name": "Team 0" }] }),
        "a guest of its team now: {body}"
    );
}

/// Item 7: an API key cannot mint keys (a known gap) nor accept invitations; both refusals are
/// audited as denied.
#[tokio::test(flavor = "multi_thread")]
async fn api_keys_cannot_mint_keys_or_accept_invitations() {
    let app = seeded().await;
    let owner = org_0(&app, "owner");
    let create = "mutation($n: String!) { createApiKey(name: $n) { secret } }";
    let body = run(&app, &owner, create, json!({ "n": "ci" })).await;
    let key = body["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let body = run(&app, &key, create, json!({ "n": "minted by a key" })).await;
    refused(&body, "FORBIDDEN", "createApiKey");

    let body = run(
        &app,
        &app.token("org-1-owner", Some("org-1")),
        INVITE,
        json!({ "input": { "email": "org-0-owner@example.test" } }),
    )
    .await;
    let id = body["data"]["createInvitation"]["id"].clone();
    let mine = run(&app, &key, MY_INVITATIONS, json!({})).await;
    assert_eq!(mine["data"]["viewer"]["invitations"], json!([]), "{mine}");
    let body = run(&app, &key, ACCEPT, json!({ "id": id })).await;
    refused(&body, "FORBIDDEN", "acceptInvitation");

    let denied = |log: Vec<(String, String)>, action: &str| {
        log.contains(&(action.to_owned(), "denied".to_owned()))
    };
    assert!(denied(
        audit(&app, "org-0", &["api_key.create"]).await,
        "api_key.create"
    ));
    assert!(denied(
        audit(&app, "org-1", &["invitation.accept"]).await,
        "invitation.accept"
    ));
    assert_eq!(
        run(
            &app,
            &app.token("org-0-owner", Some("org-1")),
            "{ viewer { user { id } } }",
            json!({})
        )
        .await["errors"][0]["extensions"]["code"],
        "FORBIDDEN",
        "still not a member of org-1"
    );
}
