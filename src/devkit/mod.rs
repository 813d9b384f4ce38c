//! Scaffolding for development, demos, tests and benchmarks — never on `serve`'s path.
//!
//! Only [`crate::cli`] (for `demo`, `seed`, and a private cluster when no `DATABASE_URL` is
//! given), `tests/` and `bench/` use it; `tests/layers.rs` keeps every serving module from
//! importing it.
//!
//! - [`embedded`]: a private PostgreSQL cluster started from the system's binaries.
//! - [`fake`]: fake provider servers speaking DigitalOcean's, Linode's, Vercel's, GridPane's and
//!   Cloudflare's real shapes, and local probe targets.
//! - [`demo`]: `stackgate demo`'s `acme` organization, synced from the fakes.
//! - [`seed`]: `stackgate seed`'s deterministic benchmark and development data set.

pub mod demo;
pub mod embedded;
pub mod fake;
pub mod seed;
