//! The viewer query and global ids through `node` / `nodes`.

use serde_json::json;

use crate::fixtures;
use crate::harness::{TestApp, error_code};

#[tokio::test(flavor = "multi_thread")]
async fn viewer_shows_user_org_and_memberships() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    let globex = fixtures::org(&mut conn, "globex").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    fixtures::member(&mut conn, &globex, "alice", "viewer").await;
    let query = "{ viewer { user { id email name } organization { id name slug } organizations { slug } } }";
    let (status, body) = app
        .graphql(Some(&app.token("alice", Some("acme"))), query, json!({}))
        .await;
    assert_eq!(status, 200);
    let viewer = &body["data"]["viewer"];
    assert_eq!(viewer["user"]["email"], "alice@example.test", "{body}");
    assert_eq!(viewer["organization"]["slug"], "acme");
    assert_eq!(viewer["organization"]["name"], "Org acme");
    assert_eq!(
        viewer["organizations"],
        json!([{ "slug": "acme" }, { "slug": "globex" }])
    );
    let id = viewer["organization"]["id"].as_str().expect("id");
    assert!(!id.contains(&acme.id.to_string()), "ids are opaque");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_resolves_visible_ids_and_hides_the_rest() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    let globex = fixtures::org(&mut conn, "globex").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    fixtures::member(&mut conn, &acme, "carol", "viewer").await;
    fixtures::member(&mut conn, &globex, "gina", "owner").await;

    let gina = app.token("gina", None);
    let (_, theirs) = app
        .graphql(
            Some(&gina),
            "{ viewer { user { id } organization { id } } }",
            json!({}),
        )
        .await;
    let gina_id = theirs["data"]["viewer"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let globex_id = theirs["data"]["viewer"]["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let alice = app.token("alice", None);
    let (_, mine) = app
        .graphql(
            Some(&alice),
            "{ viewer { organization { id } } }",
            json!({}),
        )
        .await;
    let acme_id = mine["data"]["viewer"]["organization"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (_, carol) = app
        .graphql(
            Some(&app.token("carol", None)),
            "{ viewer { user { id } } }",
            json!({}),
        )
        .await;
    let carol_id = carol["data"]["viewer"]["user"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let query = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Organization { slug } ... on User { name } } }";
    let ids = json!([acme_id, globex_id, carol_id, gina_id]);
    let (_, body) = app
        .graphql(Some(&alice), query, json!({ "ids": ids }))
        .await;
    assert_eq!(
        body["data"]["nodes"],
        json!([
            { "__typename": "Organization", "id": acme_id, "slug": "acme" },
            null,
            { "__typename": "User", "id": carol_id, "name": "carol" },
            null
        ]),
        "another org and its members do not exist for alice: {body}"
    );

    let (_, body) = app
        .graphql(
            Some(&alice),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": globex_id }),
        )
        .await;
    assert_eq!(body["data"]["node"], json!(null));
    assert!(body.get("errors").is_none(), "no error, no hint: {body}");

    let (_, body) = app
        .graphql(Some(&alice), "{ node(id: \"garbage!\") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
}
