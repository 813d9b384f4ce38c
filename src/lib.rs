//! stackgate: a multi-tenant GraphQL gateway for an infrastructure control plane.
//!
//! A request enters through [`router`], is authenticated by [`auth`], executed by the schema in
//! [`graphql`], whose resolvers read and write through [`db`] inside per-tenant transactions.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod devkit;
pub mod error;
pub mod events;
pub mod graphql;
pub mod health;
pub mod http;
pub mod metrics;
pub mod net;
pub mod router;
pub mod security;
pub mod server;
pub mod sync;
pub mod telemetry;
