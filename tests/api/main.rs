//! stackgate's integration tests, all against a real PostgreSQL (see `harness`).

mod access;
mod adversarial;
mod auth;
mod browser;
mod cli;
mod demo;
mod docks;
mod fixtures;
mod graph;
mod harness;
mod health;
mod http;
mod isolation;
mod migrations;
mod mutations;
mod rbac;
mod rls;
mod schema_docs;
mod seed;
mod subscriptions;
mod sync;
mod viewer;
mod websocket;
