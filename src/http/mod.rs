//! HTTP endpoints, one module each; `crate::router` wires them to paths.

pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod response;
pub mod session;
pub mod sse;
pub mod ws;
