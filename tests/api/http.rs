//! GraphQL over HTTP: transport errors, limits, the GraphiQL page, health and metrics.

use diesel_async::SimpleAsyncConnection;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::{REPLICA_ID, TestApp, TestDb, error_code};

async fn app_with_alice() -> (TestApp, String) {
    fixtures::with_alice(TestApp::spawn().await).await
}

/// POSTs `query` as `token`, accepting only `accept`.
async fn accepting(app: &TestApp, token: &str, accept: &str, query: &str) -> reqwest::Response {
    app.client
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header(ACCEPT, accept)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("sent")
}

async fn status_and_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn transport_errors_get_spec_statuses_and_json_bodies() {
    let (app, token) = app_with_alice().await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let cases = [
        (post("{not json", "application/json").await, 400),
        (
            post("{ viewer { user { name } } }", "text/plain").await,
            415,
        ),
        (post(r#"{"variables":{}}"#, "application/json").await, 400),
        (post(r#"{"query":42}"#, "application/json").await, 400),
        (
            post(
                r#"{"query":"{ viewer { user { name } } }","variables":[1]}"#,
                "application/json",
            )
            .await,
            400,
        ),
    ];
    for (response, expected) in cases {
        let (status, body) = status_and_body(response.expect("sent")).await;
        assert_eq!(status, expected, "{body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }

    let get = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&token)
        .header(ACCEPT, "application/json");
    let (status, body) = status_and_body(get.send().await.expect("sent")).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "BAD_USER_INPUT"),
        "GET without query"
    );

    let mutation = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&token)
        .query(&[("query", "mutation { x }")])
        .send()
        .await
        .expect("sent");
    assert_eq!(
        mutation
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap_or("")),
        Some("POST")
    );
    let (status, _) = status_and_body(mutation).await;
    assert_eq!(status, 405, "mutations are refused over GET");

    let wrong_accept = accepting(&app, &token, "text/csv", "{ viewer { user { name } } }").await;
    assert_eq!(wrong_accept.status().as_u16(), 406);
}

#[tokio::test(flavor = "multi_thread")]
async fn get_queries_and_graphql_errors_work() {
    let (app, token) = app_with_alice().await;
    let get = app
        .client
        .get(app.url("/graphql"))
        .bearer_auth(&token)
        .query(&[("query", "{ viewer { organization { slug } } }")]);
    let (status, body) = status_and_body(get.send().await.expect("sent")).await;
    assert_eq!(
        (status, &body["data"]["viewer"]["organization"]["slug"]),
        (200, &json!("acme"))
    );

    let (status, body) = app.graphql(Some(&token), "{ viewer { ", json!({})).await;
    assert_eq!(
        (status, error_code(&body)),
        (200, "BAD_USER_INPUT"),
        "a syntax error: {body}"
    );
    let (_, body) = app
        .graphql(Some(&token), "{ viewer { nope } }", json!({}))
        .await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "an unknown field: {body}"
    );
    let (_, body) = app
        .graphql(
            Some(&token),
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": 5.5 }),
        )
        .await;
    assert_eq!(
        error_code(&body),
        "BAD_USER_INPUT",
        "a variable of the wrong type: {body}"
    );

    let strict = accepting(
        &app,
        &token,
        "application/graphql-response+json",
        "{ viewer { nope } }",
    )
    .await;
    assert_eq!(
        strict.headers()[CONTENT_TYPE].to_str().unwrap_or(""),
        "application/graphql-response+json; charset=utf-8"
    );
    assert_eq!(
        strict.status().as_u16(),
        400,
        "request errors are 4xx with the newer media type"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413() {
    let app = TestApp::spawn_with(|c| c.body_limit = 4096).await;
    let query = format!("{{ viewer {{ user {{ name }} }} }} #{}", "x".repeat(8192));
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("sent");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 413, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_errors_are_masked_with_a_request_id() {
    let (app, token) = app_with_alice().await;
    let other = TestDb::migrated().await;
    let mut admin = other.owner().await;
    admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", app.db.name))
        .await
        .expect("drop");
    let response = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ viewer { user { name } } }" }))
        .send()
        .await
        .expect("sent");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"],
        json!(request_id)
    );
    let text = body.to_string();
    assert!(
        !text.contains("does not exist") && !text.contains(&app.db.name),
        "database text leaked: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn graphiql_page_is_served_to_browsers() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(app.url("/graphql"))
        .header(ACCEPT, "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let html = page.text().await.expect("html");
    assert!(
        html.contains("graphiql.min.js") && html.contains("/graphql/ws"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics() {
    let (app, token) = app_with_alice().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16(),
        200
    );
    let body =
        json!({ "query": "query Dash { viewer { user { name } } }", "operationName": "Dash" });
    app.client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("sent");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"stackgate_graphql_requests_total{replica="test-replica",operation="Dash",status="ok"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("stackgate_graphql_request_duration_seconds_bucket{replica=\"test-replica\",operation=\"Dash\""),
        "{metrics}"
    );

    // Every sample names the replica that exported it.
    let samples: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(!samples.is_empty());
    for sample in samples {
        assert!(
            sample.contains(&format!("replica=\"{REPLICA_ID}\"")),
            "{sample}"
        );
    }

    let unmigrated = TestDb::empty().await;
    let app = TestApp::spawn_with(|c| c.database_url = unmigrated.url()).await;
    let ready = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        ready.status().as_u16(),
        503,
        "an unmigrated database is not ready"
    );
}
