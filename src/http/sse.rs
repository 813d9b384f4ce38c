//! GraphQL over Server-Sent Events, in graphql-sse's "distinct connections" mode: a `POST` (or, for
//! queries, `GET`) of `/graphql` that accepts `text/event-stream` gets one stream per operation.
//! Each result is an `event: next` whose data is the JSON result; the stream ends with
//! `event: complete`. Subscriptions stream every event until the client disconnects or the caller
//! loses access; queries and mutations stream their one result.
//!
//! A stream is a long-lived caller, like a WebSocket connection: it opens a [`session`] (the
//! caller authenticated first — nothing runs for a refused one — a place in the caller's
//! connection budget, and the renewal that ends it when access goes), and every operation runs
//! through the same pipeline as the other transports. Every event is capped at the response limit,
//! and a comment line every 15 s keeps proxies from closing an idle stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Executor;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::response::request_error;
use super::session::{self, Credentials};
use crate::app::AppState;
use crate::error::code;
use crate::graphql::pipeline::{Caller, live};

/// How often an idle stream carries a comment line.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Runs `request` for `caller` as an event stream.
pub async fn respond(
    app: AppState,
    caller: Caller,
    request: async_graphql::Request,
    request_id: String,
) -> Response {
    let credentials = Credentials::from_caller(&app, &caller);
    let mut session = match session::open(&app, credentials, caller.client.clone()).await {
        Ok(session) => session,
        Err(e) => {
            let status = match e.code() {
                code::RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
                code::FORBIDDEN => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            return request_error(status, e.code(), e.message());
        }
    };
    // The caller as HTTP saw it (a GET may only read).
    session.insert(caller);
    let limit = app.config.security.response_limit;
    let results = app
        .pipeline
        .execute_stream(request, Some(Arc::new(session)))
        .map(move |response| {
            // A live query's shared data goes in where its placeholder is, before the size cap.
            let text =
                String::from_utf8(crate::graphql::json::response(&response)).unwrap_or_default();
            let expanded = live::hub::expand(text).into_bytes();
            let (body, _) = super::response::capped_json(expanded, &request_id, limit);
            Ok::<_, Infallible>(
                Event::default()
                    .event("next")
                    .data(String::from_utf8_lossy(&body)),
            )
        });
    let complete =
        futures_util::stream::once(async { Ok(Event::default().event("complete").data("")) });
    Sse::new(results.chain(complete))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}
