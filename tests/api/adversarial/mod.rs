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

use serde_json::Value;

use crate::harness::TestApp;
pub use crate::harness::ws::Ws;

/// The two transports every operation can come by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    WebSocket,
}

pub const BOTH: [Transport; 2] = [Transport::Http, Transport::WebSocket];

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
