//! Trusted documents: automatic persisted queries (Apollo's protocol) over both transports, and
//! the manifest in `off`, `log` and `enforce` modes.

use serde_json::{Value, json};

use crate::adversarial::{BOTH, Transport, Ws};
use crate::fixtures;
use crate::harness::{TestApp, error_code};
use stackgate::config::Config;
use stackgate::graphql::pipeline::documents::sha256_hex;
use stackgate::security::settings::TrustMode;

const ORG_NAME: &str = "query OrgName { viewer { organization { name } } }";
/// A document outside every manifest of these tests.
const USER_NAME: &str = "{ viewer { user { name } } }";

/// `acme` with its owner `alice`, on a server adjusted by `adjust`; alice's token.
async fn acme(adjust: impl FnOnce(&mut Config)) -> (TestApp, String) {
    let app = TestApp::spawn_with(adjust).await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    let token = app.token("alice", None);
    (app, token)
}

/// Asserts `body` answers acme's name.
fn assert_acme(body: &Value) {
    assert_eq!(
        body["data"]["viewer"]["organization"]["name"], "Org acme",
        "{body}"
    );
}

/// `extensions` naming `text`'s hash.
fn persisted(text: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": sha256_hex(text) } })
}

/// Sends `query` (possibly empty: omitted) with `extensions` over `transport`.
async fn send(
    app: &TestApp,
    transport: Transport,
    token: &str,
    query: &str,
    extensions: Value,
) -> Value {
    let mut payload = json!({ "extensions": extensions, "variables": {} });
    if !query.is_empty() {
        payload["query"] = json!(query);
    }
    match transport {
        Transport::Http => {
            let response = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(token)
                .json(&payload)
                .send()
                .await
                .expect("sent");
            response.json().await.expect("JSON")
        }
        Transport::WebSocket => {
            let mut ws = Ws::open(app, token).await;
            ws.send(json!({ "id": "1", "type": "subscribe", "payload": payload }))
                .await;
            loop {
                let message = ws.message().await.expect("an answer");
                match message["type"].as_str() {
                    Some("next") => return message["payload"].clone(),
                    Some("error") => return json!({ "errors": message["payload"] }),
                    _ => {}
                }
            }
        }
    }
}

/// An unknown hash is `PERSISTED_QUERY_NOT_FOUND` with Apollo's message; sent again with its
/// text it runs and is registered; from then on the hash alone runs it — over both transports.
#[tokio::test]
async fn automatic_persisted_queries_register_on_a_miss_and_run_by_hash() {
    let (app, token) = acme(|_| {}).await;
    for transport in BOTH {
        let text = format!("{ORG_NAME} # {transport:?}");
        let miss = send(&app, transport, &token, "", persisted(&text)).await;
        assert_eq!(error_code(&miss), "PERSISTED_QUERY_NOT_FOUND", "{miss}");
        assert_eq!(miss["errors"][0]["message"], "PersistedQueryNotFound");
        let full = send(&app, transport, &token, &text, persisted(&text)).await;
        assert_acme(&full);
        let hit = send(&app, transport, &token, "", persisted(&text)).await;
        assert_acme(&hit);
        // A hash that is not the text's is refused, and registers nothing.
        let lie = send(
            &app,
            transport,
            &token,
            "{ __typename }",
            persisted("{ x }"),
        )
        .await;
        assert_eq!(error_code(&lie), "BAD_USER_INPUT", "{lie}");
        let after = send(&app, transport, &token, "", persisted("{ x }")).await;
        assert_eq!(error_code(&after), "PERSISTED_QUERY_NOT_FOUND", "{after}");
    }
}

/// A persisted mutation cannot be run by GET, where HTTP cannot see the text to refuse it.
#[tokio::test]
async fn a_persisted_mutation_is_refused_over_get() {
    let (app, token) = acme(|_| {}).await;
    let mutation = r#"mutation { createProject(input: {name: "Sneaky", slug: "sneaky"}) { id } }"#;
    // With its text, HTTP sees the mutation itself: 405.
    let extensions = persisted(mutation).to_string();
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", mutation), ("extensions", extensions.as_str())])
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 405);
    // Registered by POST (it runs once there), the hash alone over GET is refused.
    let posted = send(&app, Transport::Http, &token, mutation, persisted(mutation)).await;
    assert!(
        posted["data"]["createProject"]["id"].is_string(),
        "{posted}"
    );
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("extensions", extensions.as_str())])
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    let (_, count) = app
        .graphql(
            Some(&token),
            "{ viewer { organization { projects { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        count["data"]["viewer"]["organization"]["projects"]["totalCount"], 1,
        "the GET ran the mutation: {count}"
    );
}

/// `acme` on a server in `mode` whose manifest holds `OrgName` (a fresh directory of `.graphql`
/// files); alice's token, and the directory to remove at the end.
async fn with_manifest(mode: TrustMode) -> (TestApp, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("stackgate-manifest-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("OrgName.graphql"), ORG_NAME).expect("write");
    let path = dir.clone();
    let (app, token) = acme(move |config| {
        config.security.documents.mode = mode;
        config.security.documents.manifest = Some(path);
    })
    .await;
    (app, token, dir)
}

/// `enforce`: manifest documents run (by text or by hash alone, with no registration), anything
/// else is `PERSISTED_QUERY_NOT_IN_LIST` before it is parsed, over both transports; metrics label
/// manifest documents by their manifest name.
#[tokio::test]
async fn enforce_runs_only_the_manifest() {
    let (app, token, dir) = with_manifest(TrustMode::Enforce).await;
    for transport in BOTH {
        let by_text = send(&app, transport, &token, ORG_NAME, json!({})).await;
        assert_acme(&by_text);
        let by_hash = send(&app, transport, &token, "", persisted(ORG_NAME)).await;
        assert_acme(&by_hash);
        let other = send(&app, transport, &token, USER_NAME, json!({})).await;
        assert_eq!(error_code(&other), "PERSISTED_QUERY_NOT_IN_LIST", "{other}");
        assert!(other.get("data").is_none_or(Value::is_null), "{other}");
        // Not even a syntax error gets past: nothing outside the list is parsed.
        let garbage = send(&app, transport, &token, "{{{{", json!({})).await;
        assert_eq!(
            error_code(&garbage),
            "PERSISTED_QUERY_NOT_IN_LIST",
            "{garbage}"
        );
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"stackgate_graphql_requests_total{replica="test-replica",operation="OrgName",status="ok"}"#),
        "{metrics}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `log`: documents outside the manifest still run.
#[tokio::test]
async fn log_mode_runs_documents_outside_the_manifest() {
    let (app, token, dir) = with_manifest(TrustMode::Log).await;
    for transport in BOTH {
        let other = send(&app, transport, &token, USER_NAME, json!({})).await;
        assert!(other["errors"].is_null(), "{other}");
        assert!(other["data"]["viewer"]["user"].is_object(), "{other}");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// An API key created `trustedDocumentsOnly` runs only manifest documents even where the server
/// runs anything (`off`), over both transports; the user's own sign-in is not limited.
#[tokio::test]
async fn a_key_limited_to_the_manifest_runs_nothing_else() {
    let (app, token, dir) = with_manifest(TrustMode::Off).await;
    let (_, created) = app
        .graphql(
            Some(&token),
            r#"mutation { createApiKey(name: "dashboard", trustedDocumentsOnly: true) {
                secret apiKey { trustedDocumentsOnly } } }"#,
            json!({}),
        )
        .await;
    let created = &created["data"]["createApiKey"];
    assert_eq!(created["apiKey"]["trustedDocumentsOnly"], true, "{created}");
    let key = created["secret"].as_str().expect("secret");
    for transport in BOTH {
        let listed = send(&app, transport, key, "", persisted(ORG_NAME)).await;
        assert_acme(&listed);
        let other = send(&app, transport, key, USER_NAME, json!({})).await;
        assert_eq!(error_code(&other), "PERSISTED_QUERY_NOT_IN_LIST", "{other}");
        let own = send(&app, transport, &token, USER_NAME, json!({})).await;
        assert!(own["errors"].is_null(), "{own}");
    }
    std::fs::remove_dir_all(dir).ok();
}
