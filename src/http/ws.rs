//! `/graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws` and the legacy `graphql-ws`.
//!
//! The token comes in the `connection_init` payload (`{"authorization": "Bearer ..."}`) and goes
//! through the same [`crate::auth::authenticate`] as HTTP; a refused token closes the socket.

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::response::Response;

use crate::app::AppState;

/// Upgrades the connection and serves GraphQL operations on it.
pub async fn upgrade(State(app): State<AppState>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    upgrade.protocols(ALL_WEBSOCKET_PROTOCOLS).on_upgrade(move |socket| {
        let schema = app.schema.clone();
        GraphQLWebSocket::new(socket, schema, protocol)
            .on_connection_init(move |payload| connection_init(app, payload))
            .serve()
    })
}

async fn connection_init(app: AppState, payload: serde_json::Value) -> async_graphql::Result<Data> {
    let field = |name: &str| payload.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let nested = |name: &str| payload.get("headers").and_then(|h| h.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
    let authorization = field("authorization").or_else(|| field("Authorization")).or_else(|| nested("authorization")).or_else(|| nested("Authorization"));
    let x_org = field("x-org").or_else(|| nested("x-org")).or_else(|| nested("X-Org"));
    let viewer = crate::auth::authenticate(&app.pool, &app.jwt, authorization.as_deref(), x_org.as_deref())
        .await
        .map_err(async_graphql::Error::from)?;
    let mut data = Data::default();
    data.insert(viewer);
    Ok(data)
}

