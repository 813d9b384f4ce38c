//! stackgate: a multi-tenant GraphQL gateway for an infrastructure control plane.
//!
//! A request enters through [`router`], is authenticated by [`auth`], executed by the schema in
//! [`graphql`], whose resolvers read and write through [`db`] inside per-tenant transactions.
//! Writers publish live events through [`events`]. Scaffolding (fake providers, demo, seed, a
//! private PostgreSQL) lives in [`devkit`], which only [`cli`], tests and benchmarks use.
//!
//! Modules form layers, lowest first; a module imports only its own layer or lower ones, and no
//! two files import each other, directly or round a circle (`tests/layers.rs` checks both):
//! `allocator`, `crypto`, `telemetry`, `metrics` → `db` → `error` → `events` → `auth`,
//! `security`, `net` → `sync`, `health` → `graphql` → `config` → `app` → `http` → `router`,
//! `server` → `devkit` → `cli`.

pub mod allocator;
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
pub mod notify;
pub mod router;
pub mod security;
pub mod server;
pub mod sync;
pub mod telemetry;
