//! Docks over GraphQL: a key checked against the (fake) provider, stored encrypted, never shown;
//! a sync started on demand; deletion.

use serde_json::{Value, json};
use stackgate::devkit::fake::{FakeKind, FakeProvider, Script};

use crate::fixtures;
use crate::harness::error_code;

const KEY: &str = "do-good-token-1234";

#[tokio::test(flavor = "multi_thread")]
async fn a_dock_is_checked_created_synced_and_deleted() {
    let app = fixtures::seeded().await;
    let owner = app.token("org-0-owner", Some("org-0"));
    let (url, _fake) = FakeProvider::start(FakeKind::DigitalOcean, Script::new(KEY).servers(7))
        .await
        .expect("fake");
    let create = "mutation($key: String!, $url: String) { createDock(input: { name: \"Prod DO\", provider: \"digitalocean\", apiKey: $key, endpoint: $url, syncIntervalSeconds: 600 }) { id name provider apiKeyHint syncIntervalSeconds } }";

    let (_, body) = app
        .graphql(
            Some(&owner),
            create,
            json!({ "key": "wrong-token-9999", "url": url }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert!(
        !body.to_string().contains("wrong-token-9999"),
        "the key is never echoed: {body}"
    );

    let (_, body) = app
        .graphql(Some(&owner), create, json!({ "key": KEY, "url": url }))
        .await;
    let dock = body["data"]["createDock"].clone();
    assert_eq!(dock["apiKeyHint"], "1234", "{body}");
    assert!(!body.to_string().contains(KEY));
    let (_, dup) = app
        .graphql(Some(&owner), create, json!({ "key": KEY, "url": url }))
        .await;
    assert_eq!(error_code(&dup), "CONFLICT", "{dup}");

    let (_, body) = app
        .graphql(
            Some(&owner),
            "mutation($id: ID!) { syncDock(id: $id) { id status trigger } }",
            json!({ "id": dock["id"] }),
        )
        .await;
    let run = body["data"]["syncDock"].clone();
    assert!(run["id"].is_string(), "{body}");
    let finished = app.finished_run(&owner, &run["id"]).await;
    assert_eq!(finished["status"], "SUCCESS", "{finished}");
    assert_eq!(finished["created"], 7, "{finished}");
    let (_, body) = app.graphql(Some(&owner), "query($id: ID!) { node(id: $id) { ... on Dock { lastSyncStatus resources { totalCount } } } }", json!({ "id": dock["id"] })).await;
    assert_eq!(
        body["data"]["node"],
        json!({ "lastSyncStatus": "SUCCESS", "resources": { "totalCount": 7 } }),
        "{body}"
    );

    let update = "mutation($id: ID!, $key: String!) { updateDockCredentials(id: $id, apiKey: $key) { apiKeyHint } }";
    let (_, body) = app
        .graphql(
            Some(&owner),
            update,
            json!({ "id": dock["id"], "key": "bad-new-token-0000" }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "a refused key is not stored: {body}"
    );

    let viewer = app.token("org-0-viewer", Some("org-0"));
    let (_, body) = app
        .graphql(
            Some(&viewer),
            "mutation($id: ID!) { deleteDock(id: $id) }",
            json!({ "id": dock["id"] }),
        )
        .await;
    assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
    let (_, body) = app
        .graphql(
            Some(&owner),
            "mutation($id: ID!) { deleteDock(id: $id) }",
            json!({ "id": dock["id"] }),
        )
        .await;
    assert_eq!(body["data"]["deleteDock"], dock["id"], "{body}");
    let (_, body) = app
        .graphql(
            Some(&owner),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": dock["id"] }),
        )
        .await;
    assert_eq!(body["data"]["node"], Value::Null, "a deleted dock vanishes");
}
