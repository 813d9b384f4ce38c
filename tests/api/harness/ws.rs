//! The one WebSocket client of the tests: GraphQL over `/graphql/ws` in either subprotocol,
//! `graphql-transport-ws` (the default) or the legacy `graphql-ws`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::TestApp;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

/// How long a message may take before the test fails.
const MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The `connection_init` payload that authenticates with `token`.
pub fn bearer(token: &str) -> Value {
    json!({ "authorization": format!("Bearer {token}") })
}

/// An open socket to `/graphql/ws`.
pub struct Ws {
    pub socket: Socket,
    legacy: bool,
    next_id: u32,
    /// Messages of other operations that arrived while [`Ws::run`] waited for its own; handed
    /// out first by [`Ws::message`], so a subscription's message is never lost to a query.
    skipped: std::collections::VecDeque<Value>,
}

impl Ws {
    /// Connects to `url` (`http://.../graphql/ws`) speaking `protocol`, without initialising.
    pub async fn connect_to(url: &str, protocol: &str) -> Self {
        let url = url.replace("http://", "ws://");
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().expect("header"));
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connects");
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
        Self {
            socket,
            legacy: protocol == LEGACY_WS,
            next_id: 0,
            skipped: std::collections::VecDeque::new(),
        }
    }

    /// Connects to `app` over `graphql-transport-ws`, without initialising.
    pub async fn connect(app: &TestApp) -> Self {
        Self::connect_to(&app.url("/graphql/ws"), TRANSPORT_WS).await
    }

    /// Connects to `url` over `graphql-transport-ws` and initialises with `token`; panics unless
    /// acknowledged.
    pub async fn open_at(url: &str, token: &str) -> Self {
        let mut ws = Self::connect_to(url, TRANSPORT_WS).await;
        ws.acknowledged(bearer(token)).await;
        ws
    }

    /// [`Ws::open_at`] `app`.
    pub async fn open(app: &TestApp, token: &str) -> Self {
        Self::open_at(&app.url("/graphql/ws"), token).await
    }

    /// One subscription on its own socket at `url` (any replica's `/graphql/ws`).
    pub async fn subscribed(url: &str, token: &str, query: &str, variables: Value) -> Self {
        let mut ws = Self::open_at(url, token).await;
        ws.subscribe(query, variables).await;
        ws
    }

    /// Sends `connection_init` with `payload`; the answer, `None` if the socket closed instead.
    pub async fn init(&mut self, payload: Value) -> Option<Value> {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        self.message().await
    }

    /// Sends `connection_init` with `payload`; panics unless acknowledged.
    pub async fn acknowledged(&mut self, payload: Value) {
        let ack = self
            .init(payload)
            .await
            .expect("an answer to connection_init");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("sent");
    }

    /// The next JSON message (keep-alives skipped); `None` once the socket closes.
    pub async fn message(&mut self) -> Option<Value> {
        if let Some(value) = self.skipped.pop_front() {
            return Some(value);
        }
        loop {
            match self.frame().await? {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    if !matches!(value["type"].as_str(), Some("ka" | "ping" | "pong")) {
                        return Some(value);
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Reads until the server closes the socket; its close code. Panics on an acknowledgement.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.frame().await {
                Some(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Some(Message::Text(text)) => assert!(!text.contains("connection_ack"), "{text}"),
                Some(_) => {}
                None => return None,
            }
        }
    }

    /// The next frame; `None` once the socket is gone.
    async fn frame(&mut self) -> Option<Message> {
        tokio::time::timeout(MESSAGE_TIMEOUT, self.socket.next())
            .await
            .expect("a message in time")?
            .ok()
    }

    /// Starts an operation (`subscribe`, or `start` in the legacy protocol); returns its id.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "id": id, "type": kind,
                          "payload": { "query": query, "variables": variables } }))
            .await;
        id
    }

    /// Runs one operation and returns its (first) result payload.
    pub async fn run(&mut self, query: &str, variables: Value) -> Value {
        let id = self.subscribe(query, variables).await;
        let mut others = Vec::new();
        loop {
            let message = self.message().await.expect("a result");
            if message["id"] == id.as_str() {
                if message["type"] == self.result_type() {
                    self.skipped.extend(others);
                    return message["payload"].clone();
                }
            } else {
                others.push(message);
            }
        }
    }

    /// Runs one query: its result must come next, then `complete`.
    pub async fn query(&mut self, query: &str, variables: Value) -> Value {
        let id = self.subscribe(query, variables).await;
        let message = self.message().await.expect("a result");
        assert_eq!(message["type"], self.result_type(), "{message}");
        assert_eq!(message["id"], id.as_str());
        let done = self.message().await.expect("complete");
        assert_eq!(done["type"], "complete", "{done}");
        message["payload"].clone()
    }

    /// The next message, which must be a result (`data` or `errors`): its payload.
    pub async fn result(&mut self) -> Value {
        let message = self.message().await.expect("a message");
        assert_eq!(message["type"], self.result_type(), "{message}");
        message["payload"].clone()
    }

    /// The next result's `field`, which must come without an error.
    pub async fn event(&mut self, field: &str) -> Value {
        let result = self.result().await;
        assert!(result.get("errors").is_none(), "{result}");
        result["data"][field].clone()
    }

    fn result_type(&self) -> &'static str {
        if self.legacy { "data" } else { "next" }
    }
}
