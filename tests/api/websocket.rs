//! GraphQL over WebSocket: both subprotocols, authenticated in `connection_init`.

use serde_json::{Value, json};

use crate::fixtures;
use crate::harness::TestApp;
use crate::harness::ws::{LEGACY_WS, TRANSPORT_WS, Ws, bearer};

async fn app_with_alice() -> (TestApp, String) {
    fixtures::with_alice(TestApp::spawn().await).await
}

const QUERY: &str = "{ viewer { organization { slug } } }";

fn slug(result: &Value) -> &Value {
    &result["payload"]["data"]["viewer"]["organization"]["slug"]
}

#[tokio::test(flavor = "multi_thread")]
async fn graphql_transport_ws_runs_operations_for_the_authenticated_viewer() {
    let (app, token) = app_with_alice().await;
    let mut ws = Ws::open(&app, &token).await;
    ws.subscribe(QUERY, json!({})).await;
    let result = ws.message().await.expect("next");
    assert_eq!(result["type"], "next");
    assert_eq!(slug(&result), "acme");
    assert_eq!(ws.message().await.expect("complete")["type"], "complete");
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_graphql_ws_runs_operations_too() {
    let (app, token) = app_with_alice().await;
    let mut ws = Ws::connect_to(&app.ws_url(), LEGACY_WS).await;
    ws.acknowledged(json!({ "Authorization": format!("Bearer {token}") }))
        .await;
    ws.subscribe(QUERY, json!({})).await;
    let result = ws.message().await.expect("data");
    assert_eq!(result["type"], "data");
    assert_eq!(slug(&result), "acme");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_longer_than_the_read_buffer_arrive_whole() {
    let (app, token) = app_with_alice().await;
    let mut ws = Ws::open(&app, &token).await;
    // 64 KiB of comment: sixteen times the server's 4 KiB read buffer.
    let query = format!("#{}\n{QUERY}", "x".repeat(64 * 1024));
    ws.subscribe(&query, json!({})).await;
    let result = ws.message().await.expect("next");
    assert_eq!(slug(&result), "acme", "{result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_in_connection_init_is_refused() {
    let (app, _) = app_with_alice().await;
    for init in [json!({}), bearer("forged")] {
        let mut ws = Ws::connect_to(&app.ws_url(), TRANSPORT_WS).await;
        ws.send(json!({ "type": "connection_init", "payload": init }))
            .await;
        assert_eq!(
            ws.close_code().await,
            Some(4403),
            "a refused connection_init closes with 4403 Forbidden"
        );
    }
}
