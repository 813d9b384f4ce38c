//! `/graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws` and the legacy `graphql-ws`.
//!
//! The first message must be `connection_init` carrying the token
//! (`{"authorization": "Bearer ..."}`); it goes through the same [`crate::auth::authenticate`] as
//! HTTP. A refused token closes the socket with `4403 Forbidden` (or, on the legacy protocol, a
//! `connection_error`), before async-graphql sees anything; an accepted one is replayed to it.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use secrecy::{ExposeSecret, SecretString};

use crate::app::AppState;
use crate::auth::{Reauthenticate, Renewal, Viewer};
use crate::error::ApiError;
use crate::graphql::mutations::ClientInfo;

/// How often a connection's caller is authenticated again: six viewer-cache periods (30 s by
/// default), at least a second. A check per period per connection is cheap, but not free: at
/// 1,000 connections each cache period it raised the server's CPU per event delivery by about
/// half (bench/events).
fn renewal_period(auth_cache_seconds: u64) -> Duration {
    Duration::from_secs((auth_cache_seconds * 6).max(1))
}

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most a socket reads at once. tungstenite zero-fills this much on every read attempt, and a
/// subscription's socket is polled for reading each time it sends an event: its 128 KiB default
/// made that zeroing 41% of the server's CPU when one event went to 1,000 subscribers (measured
/// with `cargo bench --bench events` and perf). Longer messages still arrive, over several reads.
const READ_BUFFER: usize = 4 * 1024;

/// Upgrades the connection and serves GraphQL operations on it.
pub async fn upgrade(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = super::graphql::client_info(&extensions, &headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| serve(app, protocol, client, socket))
}

async fn serve(app: AppState, protocol: GraphQLProtocol, client: ClientInfo, socket: WebSocket) {
    let legacy = socket
        .protocol()
        .is_some_and(|p| p.as_bytes() == b"graphql-ws");
    let (mut sink, mut stream) = socket.split();
    let first = match tokio::time::timeout(INIT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(_) => return,
        Err(_) => return close(&mut sink, 4408, "Connection initialisation timeout").await,
    };
    let init: serde_json::Value = serde_json::from_str(first.as_str()).unwrap_or_default();
    if init["type"] != "connection_init" {
        return close(&mut sink, 4401, "Unauthorized").await;
    }
    let credentials = Credentials::of(&app, &init["payload"]);
    let viewer = match credentials.viewer().await {
        Ok(viewer) => viewer,
        Err(e) => return refuse(&mut sink, legacy, e.message()).await,
    };
    let every = renewal_period(app.config.auth_cache_seconds);
    let renewal = Renewal::start(viewer.clone(), every, Arc::new(credentials));
    let replayed =
        futures_util::stream::once(async move { Ok(Message::Text(first)) }).chain(stream);
    GraphQLWebSocket::new_with_pair(sink, replayed, app.ws_schema.clone(), protocol)
        .on_connection_init(move |_| async move {
            let mut data = Data::default();
            data.insert(viewer);
            data.insert(renewal);
            data.insert(client);
            Ok(data)
        })
        .serve()
        .await;
}

/// What a `connection_init` payload authenticates with, kept to authenticate again while the
/// connection lasts (see [`Renewal`]).
struct Credentials {
    app: AppState,
    authorization: Option<SecretString>,
    x_org: Option<String>,
}

impl Credentials {
    fn of(app: &AppState, payload: &serde_json::Value) -> Self {
        let find = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| {
                    payload
                        .get(*n)
                        .or_else(|| payload.get("headers").and_then(|h| h.get(*n)))
                })
                .and_then(|v| v.as_str())
        };
        Self {
            app: app.clone(),
            authorization: find(&["authorization", "Authorization"])
                .map(|a| SecretString::from(a.to_owned())),
            x_org: find(&["x-org", "X-Org"]).map(str::to_owned),
        }
    }
}

#[async_trait::async_trait]
impl Reauthenticate for Credentials {
    async fn viewer(&self) -> Result<Viewer, ApiError> {
        let authorization = self.authorization.as_ref().map(|a| a.expose_secret());
        self.app
            .authenticate(authorization, self.x_org.as_deref())
            .await
    }
}

/// Refuses the connection the way each protocol expects.
async fn refuse<S>(sink: &mut S, legacy: bool, message: &str)
where
    S: futures_util::Sink<Message> + Unpin,
{
    if legacy {
        let error =
            serde_json::json!({ "type": "connection_error", "payload": { "message": message } });
        let _ = sink.send(Message::Text(error.to_string().into())).await;
    }
    close(sink, 4403, "Forbidden").await;
}

async fn close<S>(sink: &mut S, code: u16, reason: &'static str)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}
