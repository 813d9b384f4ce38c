//! `/graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws` and the legacy `graphql-ws`.
//!
//! The first message must be `connection_init` carrying the token
//! (`{"authorization": "Bearer ..."}`), at most 16 KiB, within 10 s; it goes through the same
//! authentication as HTTP. A refused token closes the socket with `4403 Forbidden` (or, on the
//! legacy protocol, a `connection_error`), before async-graphql sees anything; an accepted one is
//! replayed to it. Every operation on the socket then runs through the same
//! [`Pipeline`] as HTTP, which authenticates the connection's credentials again for each one;
//! a background [`crate::auth::Renewal`] ends subscriptions when the caller loses access (on an access event,
//! at the token's expiry, or at the latest every six viewer-cache periods).
//!
//! Budgets: connections waiting for `connection_init`, connections per principal, subscriptions
//! per connection ([`crate::security::sockets`]); messages at most the body limit; a ping every
//! 30 s, and a connection silent for 75 s is closed.
//!
//! The connection is ours from the handshake on ([`handshake`]): tungstenite reads it, and one
//! writer task ([`writer`]) writes every frame, so a live query's shared data goes to each
//! subscriber's socket without being copied into its message first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::graphql::pipeline::live;

use crate::app::AppState;
use crate::error::code;
use crate::graphql::mutations::ClientInfo;
use crate::graphql::pipeline::Pipeline;
use crate::security::sockets::PendingSlot;

use super::session::{self, Credentials};

mod handshake;
mod writer;

use writer::Outbox;

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the server pings an idle connection, and how long it waits for any sign of life
/// before closing it.
const PING_EVERY: Duration = Duration::from_secs(30);
const DEAD_AFTER: Duration = Duration::from_secs(75);

/// The most a socket reads at once. tungstenite zero-fills this much on every read attempt, and a
/// subscription's socket is polled for reading each time it sends an event: its 128 KiB default
/// made that zeroing 41% of the server's CPU when one event went to 1,000 subscribers (measured
/// with `cargo bench --bench events` and perf). Longer messages still arrive, over several reads.
const READ_BUFFER: usize = 4 * 1024;

/// Upgrades the connection and serves GraphQL operations on it. Only so many connections may
/// wait for `connection_init` at once; every message is at most the body limit.
pub async fn upgrade(
    State(app): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    upgrade: handshake::Upgrade,
) -> Response {
    let client = super::graphql::client_info(&extensions, &headers);
    let Some(pending) = app.sockets.pending() else {
        return super::response::request_error(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            "too many connections are waiting to initialise; retry after 1 s",
        );
    };
    let protocol = upgrade.protocol;
    upgrade.answer(move |connection| serve(app, protocol, client, connection, pending))
}

async fn serve(
    app: AppState,
    protocol: WebSocketProtocols,
    client: ClientInfo,
    connection: handshake::Connection,
    pending: PendingSlot,
) {
    let (duplex, outbox) = writer::split(connection);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(app.config.body_limit))
        .max_frame_size(Some(app.config.body_limit))
        // tungstenite hands each frame on at once, and holds at most this much while the writer
        // is behind (a client flooding pings and not reading gets its connection ended, not a
        // growing buffer).
        .write_buffer_size(0)
        .max_write_buffer_size(writer::CONTROL_BYTES);
    let socket = WebSocketStream::from_raw_socket(duplex, Role::Server, Some(config)).await;
    let legacy = protocol == WebSocketProtocols::SubscriptionsTransportWS;
    let (mut sink, mut stream) = socket.split();
    let first = match tokio::time::timeout(INIT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(_) => return,
        Err(_) => return close(&mut sink, 4408, "Connection initialisation timeout").await,
    };
    if first.len() > app.sockets.limits().init_message {
        return close(&mut sink, 1009, "connection_init too large").await;
    }
    let init: serde_json::Value = serde_json::from_str(first.as_str()).unwrap_or_default();
    if init["type"] != "connection_init" {
        return close(&mut sink, 4401, "Unauthorized").await;
    }
    let credentials = Credentials::of(&app, &init["payload"]);
    let session = match session::open(&app, credentials, client).await {
        Ok(session) => session,
        Err(e) if e.code() == code::RATE_LIMITED => {
            return refuse_with(&mut sink, legacy, 4429, e.message()).await;
        }
        Err(e) => return refuse(&mut sink, legacy, e.message()).await,
    };
    drop(pending);
    let replayed =
        futures_util::stream::once(async move { Ok(Message::Text(first)) }).chain(stream);
    let limit = app.config.security.response_limit;
    run(
        app.pipeline.clone(),
        protocol,
        session,
        (sink, outbox),
        replayed,
        limit,
    )
    .await;
}

/// Runs the protocol over the socket through the pipeline, pinging the client every
/// [`PING_EVERY`] and closing a connection silent for [`DEAD_AFTER`]. Protocol messages go out
/// through the `outbox` (see [`send_text`]); pings and close frames through tungstenite's `sink`.
async fn run<Si, St>(
    pipeline: Pipeline,
    protocol: WebSocketProtocols,
    session: async_graphql::Data,
    (sink, outbox): (Si, Outbox),
    stream: St,
    limit: usize,
) where
    Si: futures_util::Sink<Message> + Unpin,
    St: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Send
        + 'static,
{
    let heard = Arc::new(std::sync::Mutex::new(Instant::now()));
    let heard_in = heard.clone();
    let input = stream
        .take_while(|res| std::future::ready(res.is_ok()))
        .filter_map(move |msg| {
            if let Ok(mut at) = heard_in.lock() {
                *at = Instant::now();
            }
            std::future::ready(match msg {
                Ok(msg @ (Message::Text(_) | Message::Binary(_))) => Some(msg.into_data()),
                _ => None,
            })
        });
    let output = async_graphql::http::WebSocket::new(pipeline, input, protocol)
        .on_connection_init(move |_| async move { Ok(session) });
    futures_util::pin_mut!(output);
    let mut sink = sink;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let sent = tokio::select! {
            next = output.next() => match next {
                Some(WsMessage::Text(text)) => send_text(&outbox, text, limit).await,
                Some(WsMessage::Close(code, reason)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                    sink.send(Message::Close(Some(frame))).await.is_ok()
                }
                None => break,
            },
            _ = ping.tick() => {
                let silent = heard.lock().map(|at| at.elapsed()).unwrap_or_default();
                if silent > DEAD_AFTER {
                    close(&mut sink, 1001, "no answer to pings").await;
                    break;
                }
                sink.send(Message::Ping(Default::default())).await.is_ok()
            }
        };
        if !sent {
            break;
        }
    }
}

/// Sends one protocol message; false once the connection is gone. A live query's shared data
/// is written where its placeholder is, from its one buffer (no copy per subscriber). A message
/// over `limit` bytes (`STACKGATE_RESPONSE_LIMIT`) goes as a `QUERY_TOO_COMPLEX` error instead.
async fn send_text(outbox: &Outbox, text: String, limit: usize) -> bool {
    let parts = match live::hub::pieces(text) {
        Ok(pieces) if pieces.iter().map(bytes::Bytes::len).sum::<usize>() <= limit => {
            pieces.to_vec()
        }
        Ok(pieces) => {
            let joined: Vec<u8> = pieces.concat();
            let text = String::from_utf8(joined).unwrap_or_default();
            vec![capped(text, limit).into()]
        }
        Err(text) => vec![capped(text, limit).into()],
    };
    outbox.text(parts).await.is_ok()
}

/// `text` (a protocol message), or over `limit` bytes, the same message with its result replaced
/// by a `QUERY_TOO_COMPLEX` error.
fn capped(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let Ok(mut message) = serde_json::from_str::<serde_json::Value>(&text) else {
        return text;
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    message["payload"] = super::response::too_large(text.len(), limit, &request_id);
    message.to_string()
}

/// Refuses the connection the way each protocol expects (4403 Forbidden).
async fn refuse<S>(sink: &mut S, legacy: bool, message: &str)
where
    S: futures_util::Sink<Message> + Unpin,
{
    refuse_with(sink, legacy, 4403, message).await;
}

/// Refuses the connection with `code` (4403 for credentials, 4429 for too many connections).
async fn refuse_with<S>(sink: &mut S, legacy: bool, code: u16, message: &str)
where
    S: futures_util::Sink<Message> + Unpin,
{
    if legacy {
        let error =
            serde_json::json!({ "type": "connection_error", "payload": { "message": message } });
        let _ = sink
            .send(Message::Text(Utf8Bytes::from(error.to_string())))
            .await;
    }
    let reason = if code == 4429 {
        "Too many connections"
    } else {
        "Forbidden"
    };
    close(sink, code, reason).await;
}

async fn close<S>(sink: &mut S, code: u16, reason: &'static str)
where
    S: futures_util::Sink<Message> + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}
