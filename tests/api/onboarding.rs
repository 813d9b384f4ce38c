//! Onboarding (issue 14): an unknown subject becomes a user on first use, creates an
//! organization it owns, and invites a second new user who joins it; provisioning refusals, the
//! per-user bound on created organizations, and concurrent first requests.

use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{TestApp, error_code};

const ME: &str = "{ viewer { user { id email name } organizations { slug } \
    memberships { organization { slug } role } invitations { id } } }";
const CREATE_ORG: &str = "mutation($input: CreateOrganizationInput!) { \
    createOrganization(input: $input) { id name slug } }";
const INVITE: &str =
    "mutation($input: CreateInvitationInput!) { createInvitation(input: $input) { id } }";
const ACCEPT: &str = "mutation($id: ID!) { acceptInvitation(id: $id) { acceptedAt } }";
const ACTIVE: &str = "{ viewer { organization { id slug members { user { email } role } } \
    permissions { settings } } }";

/// A token of a subject the server may not know yet, with the profile claims it is created from.
fn newcomer(app: &TestApp, sub: &str, email: &str, org: Option<&str>) -> String {
    app.jwt
        .mint_profile(sub, org, Some((email, "New Person")), 3600)
        .expect("mint")
}

async fn run(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.graphql(Some(token), query, variables).await.1
}

fn slugs(list: &Value) -> Vec<String> {
    let items = list.as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|o| o["slug"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_user_creates_an_organization_and_a_second_joins_it_by_invitation() {
    let app = fixtures::seeded().await;
    let ann = newcomer(&app, "idp|ann", "Ann@example.invalid", None);

    // First use: the user exists, reaches nothing, and may not act in any organization.
    let me = run(&app, &ann, ME, json!({})).await;
    assert_eq!(
        me["data"]["viewer"]["user"]["email"], "Ann@example.invalid",
        "{me}"
    );
    assert_eq!(me["data"]["viewer"]["user"]["name"], "New Person");
    assert_eq!(me["data"]["viewer"]["organizations"], json!([]));
    assert_eq!(me["data"]["viewer"]["memberships"], json!([]));
    let ann_id = me["data"]["viewer"]["user"]["id"].clone();
    let body = run(&app, &ann, ACTIVE, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let body = run(
        &app,
        &ann,
        "mutation { createTeam(name: \"T\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Bad input and a taken slug are refused before anything is created.
    for (input, code) in [
        (
            json!({ "name": "Shop", "slug": "Not A Slug" }),
            "BAD_USER_INPUT",
        ),
        (json!({ "name": " ", "slug": "ann-shop" }), "BAD_USER_INPUT"),
        (
            json!({ "name": "x".repeat(201), "slug": "ann-shop" }),
            "BAD_USER_INPUT",
        ),
        (json!({ "name": "Shop", "slug": "org-1" }), "CONFLICT"),
    ] {
        let body = run(&app, &ann, CREATE_ORG, json!({ "input": input })).await;
        assert_eq!(error_code(&body), code, "{input}: {body}");
    }
    let created = run(
        &app,
        &ann,
        CREATE_ORG,
        json!({ "input": { "name": " Ann's Shop ", "slug": "ann-shop" } }),
    )
    .await;
    let org = created["data"]["createOrganization"].clone();
    assert_eq!(org["name"], "Ann's Shop", "{created}");
    assert_eq!(org["slug"], "ann-shop");

    // Ann owns it, and it is her only organization: her token without `org` acts in it.
    let active = run(&app, &ann, ACTIVE, json!({})).await;
    assert_eq!(
        active["data"]["viewer"]["organization"]["id"], org["id"],
        "{active}"
    );
    assert_eq!(active["data"]["viewer"]["permissions"]["settings"], "FULL");
    assert_eq!(
        active["data"]["viewer"]["organization"]["members"],
        json!([{ "user": { "email": "Ann@example.invalid" }, "role": "owner" }])
    );
    let me = run(&app, &ann, ME, json!({})).await;
    assert_eq!(
        me["data"]["viewer"]["memberships"],
        json!([{ "organization": { "slug": "ann-shop" }, "role": "owner" }]),
        "{me}"
    );
    assert_eq!(
        app.audit(&ann, &["organization.create"]).await,
        vec![("organization.create".to_owned(), "success".to_owned())]
    );

    // Ann invites Bob, who has never signed in; Bob signs in, sees and accepts it.
    let invited = run(
        &app,
        &ann,
        INVITE,
        json!({ "input": { "email": "bob@example.invalid" } }),
    )
    .await;
    let invitation = invited["data"]["createInvitation"]["id"].clone();
    assert!(invitation.is_string(), "{invited}");
    let bob = newcomer(&app, "idp|bob", "bob@example.invalid", None);
    let me = run(&app, &bob, ME, json!({})).await;
    assert_eq!(
        me["data"]["viewer"]["invitations"],
        json!([{ "id": invitation }]),
        "{me}"
    );
    let accepted = run(&app, &bob, ACCEPT, json!({ "id": invitation })).await;
    assert!(
        accepted["data"]["acceptInvitation"]["acceptedAt"].is_string(),
        "{accepted}"
    );

    // Both see the organization and each other, and nothing of any other organization.
    let seen = run(&app, &bob, ACTIVE, json!({})).await;
    assert_eq!(
        seen["data"]["viewer"]["organization"]["slug"], "ann-shop",
        "{seen}"
    );
    assert_eq!(seen["data"]["viewer"]["permissions"]["settings"], "NONE");
    let mut members: Vec<String> = seen["data"]["viewer"]["organization"]["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| format!("{} {}", m["user"]["email"], m["role"]))
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            "\"Ann@example.invalid\" \"owner\"",
            "\"bob@example.invalid\" \"member\""
        ]
    );
    for token in [&ann, &bob] {
        let me = run(&app, token, ME, json!({})).await;
        assert_eq!(slugs(&me["data"]["viewer"]["organizations"]), ["ann-shop"]);
        let other = run(&app, token, "{ viewer { organization { id } } }", json!({})).await;
        assert_eq!(other["data"]["viewer"]["organization"]["id"], org["id"]);
    }
    let org_1 = fixtures::find_org(&mut app.db.owner().await, "org-1").await;
    let foreign = TestApp::global_id("Organization", org_1.id);
    let body = run(
        &app,
        &ann,
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": foreign }),
    )
    .await;
    assert_eq!(body["data"]["node"], Value::Null, "{body}");
    let pinned = newcomer(&app, "idp|bob", "bob@example.invalid", Some("org-1"));
    let body = run(&app, &pinned, ACTIVE, json!({})).await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");

    // Org-1's people do not see Ann's organization or its people.
    let owner_1 = app.token("org-1-owner", Some("org-1"));
    let body = run(
        &app,
        &owner_1,
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": org["id"] }),
    )
    .await;
    assert_eq!(body["data"]["node"], Value::Null, "{body}");
    let body = run(
        &app,
        &owner_1,
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": ann_id }),
    )
    .await;
    assert_eq!(body["data"]["node"], Value::Null, "{body}");

    // An API key acts only in its organization: it creates none.
    let key = run(
        &app,
        &ann,
        "mutation { createApiKey(name: \"ci\") { secret } }",
        json!({}),
    )
    .await;
    let secret = key["data"]["createApiKey"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let body = run(
        &app,
        &secret,
        CREATE_ORG,
        json!({ "input": { "name": "Keyed", "slug": "keyed" } }),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_subjects_are_refused_when_provisioning_is_off_or_their_email_is_taken() {
    let app = TestApp::spawn_with(|c| c.security.onboarding.auto_provision_users = false).await;
    let token = newcomer(&app, "idp|carol", "carol@example.invalid", None);
    let body = run(&app, &token, ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown user")
    );

    let app = fixtures::seeded().await;
    let owner = app.token("org-1-owner", Some("org-1"));
    let before = run(&app, &owner, ME, json!({})).await;
    let email = before["data"]["viewer"]["user"]["email"]
        .as_str()
        .expect("email")
        .to_owned();
    // Another subject claiming an existing user's e-mail (in any case) is refused: it neither
    // becomes that user nor gets a second account with that e-mail.
    for claimed in [email.clone(), email.to_uppercase()] {
        let thief = newcomer(&app, "idp|thief", &claimed, None);
        let body = run(&app, &thief, ME, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{claimed}: {body}");
        let pinned = newcomer(&app, "idp|thief", &claimed, Some("org-1"));
        let body = run(&app, &pinned, ACTIVE, json!({})).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{claimed}: {body}");
    }
    // No e-mail, or claims over their bounds: refused too.
    let bare = app.token("idp|bare", None);
    let body = run(&app, &bare, ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let long = app
        .jwt
        .mint_profile(
            "idp|long",
            None,
            Some(("l@example.invalid", &"n".repeat(201))),
            3600,
        )
        .expect("mint");
    let body = run(&app, &long, ME, json!({})).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    let after = run(&app, &owner, ME, json!({})).await;
    assert_eq!(after, before, "the existing user is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_first_requests_create_one_user() {
    let app = fixtures::seeded().await;
    let token = newcomer(&app, "idp|dave", "dave@example.invalid", None);
    let requests = (0..8).map(|_| run(&app, &token, ME, json!({})));
    let bodies = futures_util::future::join_all(requests).await;
    let ids: std::collections::BTreeSet<String> = bodies
        .iter()
        .map(|b| {
            b["data"]["viewer"]["user"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{b}"))
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{bodies:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_creates_a_bounded_number_of_organizations() {
    let app = TestApp::spawn_with(|c| c.security.onboarding.max_organizations_per_user = 2).await;
    let token = newcomer(&app, "idp|erin", "erin@example.invalid", None);
    for slug in ["erin-1", "erin-2"] {
        let body = run(
            &app,
            &token,
            CREATE_ORG,
            json!({ "input": { "name": slug, "slug": slug } }),
        )
        .await;
        assert_eq!(body["data"]["createOrganization"]["slug"], slug, "{body}");
    }
    // With two organizations, the caller picks one to act in (any will do to create more).
    let body = run(&app, &token, ACTIVE, json!({})).await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let pinned = newcomer(&app, "idp|erin", "erin@example.invalid", Some("erin-2"));
    let body = run(
        &app,
        &pinned,
        CREATE_ORG,
        json!({ "input": { "name": "three", "slug": "erin-3" } }),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let me = run(&app, &pinned, ME, json!({})).await;
    assert_eq!(
        slugs(&me["data"]["viewer"]["organizations"]),
        ["erin-1", "erin-2"]
    );
    let body = run(&app, &pinned, ACTIVE, json!({})).await;
    assert_eq!(
        body["data"]["viewer"]["organization"]["slug"], "erin-2",
        "{body}"
    );
}
