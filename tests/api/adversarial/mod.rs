//! The adversarial suite: what a hostile caller tries, each a test that fails if the hole
//! reopens. One module per concern; rows A–K of the hardening review are named in each test's
//! doc comment. Every test runs over both transports where the concern applies.

mod budgets;
mod outbound;
mod pipeline;
mod privilege;
mod rbac;
mod scope;
mod tokens;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::TestApp;
use crate::websocket::{Socket, connect_to};

/// The two transports every operation can come by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    WebSocket,
}

pub const BOTH: [Transport; 2] = [Transport::Http, Transport::WebSocket];

/// An open `graphql-transport-ws` connection, acknowledged.
pub struct Ws {
    pub socket: Socket,
    next_id: u32,
}

impl Ws {
    /// Connects and sends `connection_init` with `token`; panics unless it is acknowledged.
    pub async fn open(app: &TestApp, token: &str) -> Self {
        let mut ws = Self::connect(app).await;
        ws.send(json!({ "type": "connection_init",
                        "payload": { "authorization": format!("Bearer {token}") } }))
            .await;
        let ack = ws.message().await.expect("an answer to connection_init");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    /// Connects without initialising.
    pub async fn connect(app: &TestApp) -> Self {
        Self {
            socket: connect_to(&app.url("/graphql/ws"), "graphql-transport-ws").await,
            next_id: 0,
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("sent");
    }

    /// The next JSON message (pings skipped); `None` once the socket closes.
    pub async fn message(&mut self) -> Option<Value> {
        loop {
            let message =
                tokio::time::timeout(std::time::Duration::from_secs(15), self.socket.next())
                    .await
                    .expect("a message in time")?;
            match message.ok()? {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("json");
                    if value["type"] != "ping" && value["type"] != "pong" {
                        return Some(value);
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// Starts an operation; returns its id.
    pub async fn subscribe(&mut self, query: &str, variables: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(json!({ "id": id, "type": "subscribe",
                          "payload": { "query": query, "variables": variables } }))
            .await;
        id
    }

    /// Runs one operation and returns its (first) result payload.
    pub async fn run(&mut self, query: &str, variables: Value) -> Value {
        let id = self.subscribe(query, variables).await;
        loop {
            let message = self.message().await.expect("a result");
            if message["id"] == id.as_str() && message["type"] == "next" {
                return message["payload"].clone();
            }
        }
    }
}

/// Runs one operation over `transport` (a fresh socket for WebSocket) and returns the result.
pub async fn ask(
    app: &TestApp,
    transport: Transport,
    token: &str,
    query: &str,
    variables: Value,
) -> Value {
    match transport {
        Transport::Http => app.graphql(Some(token), query, variables).await.1,
        Transport::WebSocket => Ws::open(app, token).await.run(query, variables).await,
    }
}
