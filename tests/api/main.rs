//! stackgate's integration tests, all against a real PostgreSQL.
//!
//! - `harness`: the test cluster, a database per test, servers on a free port (`TestApp`);
//!   `harness::ws`, the one WebSocket client (both subprotocols); `harness::wait`, bounded
//!   waits on a state; `harness::serve`, the built binary as a replica a test may SIGKILL.
//!   Tests never synchronise with a fixed sleep.
//! - `fixtures`: builders for the rows a test needs (the seed, orgs, members, teams, grants,
//!   docks, resources, links, health rows), so that test bodies hold no SQL of their own.
//! - One module per area; `adversarial` holds what a hostile caller tries.

mod access;
mod actions;
mod adversarial;
mod auth;
mod browser;
mod cache;
mod cli;
mod cluster;
mod demo;
mod docks;
mod documents;
mod failover;
mod fixtures;
mod graph;
mod harness;
mod health;
mod http;
mod interleaving;
mod isolation;
mod live;
mod management;
mod migrations;
mod mutations;
mod nats;
mod notifications;
mod onboarding;
mod operations;
mod otel;
mod outbox;
mod providers;
mod rbac;
mod replicas;
mod rls;
mod schema_docs;
mod seed;
mod sse;
mod subscriptions;
mod sync;
mod tags;
mod viewer;
mod websocket;
