//! GraphQL over WebSocket: both subprotocols, authenticated in `connection_init`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::fixtures;
use crate::harness::TestApp;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn app_with_alice() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let mut conn = app.db.owner().await;
    let acme = fixtures::org(&mut conn, "acme").await;
    fixtures::member(&mut conn, &acme, "alice", "owner").await;
    let token = app.token("alice", None);
    (app, token)
}

async fn connect(app: &TestApp, protocol: &str) -> Socket {
    connect_to(&app.url("/graphql/ws"), protocol).await
}

/// A socket to `url` (`http://.../graphql/ws`) speaking `protocol`.
pub async fn connect_to(url: &str, protocol: &str) -> Socket {
    let url = url.replace("http://", "ws://");
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().expect("header"));
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connects");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

/// The next JSON text message, skipping keep-alives; `None` when the socket closes.
pub async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("in time")?;
        match message.ok()? {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("json");
                if value["type"] != "ka" && value["type"] != "ping" {
                    return Some(value);
                }
            }
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

const QUERY: &str = "{ viewer { organization { slug } } }";

#[tokio::test(flavor = "multi_thread")]
async fn graphql_transport_ws_runs_operations_for_the_authenticated_viewer() {
    let (app, token) = app_with_alice().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;
    assert_eq!(
        next(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": QUERY } }),
    )
    .await;
    let result = next(&mut socket).await.expect("next");
    assert_eq!(result["type"], "next");
    assert_eq!(
        result["payload"]["data"]["viewer"]["organization"]["slug"],
        "acme"
    );
    assert_eq!(
        next(&mut socket).await.expect("complete")["type"],
        "complete"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_graphql_ws_runs_operations_too() {
    let (app, token) = app_with_alice().await;
    let mut socket = connect(&app, "graphql-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(
        next(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    send(
        &mut socket,
        json!({ "id": "1", "type": "start", "payload": { "query": QUERY } }),
    )
    .await;
    let result = next(&mut socket).await.expect("data");
    assert_eq!(result["type"], "data");
    assert_eq!(
        result["payload"]["data"]["viewer"]["organization"]["slug"],
        "acme"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_longer_than_the_read_buffer_arrive_whole() {
    let (app, token) = app_with_alice().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;
    assert_eq!(
        next(&mut socket).await.expect("ack")["type"],
        "connection_ack"
    );
    // 64 KiB of comment: sixteen times the server's 4 KiB read buffer.
    let query = format!("#{}\n{QUERY}", "x".repeat(64 * 1024));
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    let result = next(&mut socket).await.expect("next");
    assert_eq!(
        result["payload"]["data"]["viewer"]["organization"]["slug"], "acme",
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_in_connection_init_is_refused() {
    let (app, _) = app_with_alice().await;
    for init in [json!({}), json!({ "authorization": "Bearer forged" })] {
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(
            &mut socket,
            json!({ "type": "connection_init", "payload": init }),
        )
        .await;
        let close = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
                .await
                .expect("in time")
            {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(Message::Text(text))) => {
                    assert!(!text.contains("connection_ack"), "{text}")
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            }
        };
        let code = close.map(|f| u16::from(f.code));
        assert_eq!(
            code,
            Some(4403),
            "a refused connection_init closes with 4403 Forbidden"
        );
    }
}
