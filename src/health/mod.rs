//! Health monitoring (DESIGN §8): probes, hysteresis, the leased probe scheduler, and the
//! `HealthEvent`s it publishes.
//!
//! - [`probe`]: what a resource row says to check, and checking it within a timeout.
//! - [`hysteresis`]: a confirmed state changes only after N consecutive agreeing probes.
//! - [`monitor`]: claims due probes across organizations with leases, probes with bounded
//!   concurrency, and records each result in one transaction in the resource's organization.
//! - [`events`]: the `pg_notify` payload of a transition.
//! - [`settings`]: `STACKGATE_HEALTH_*` and their flags.

pub mod address;
pub mod events;
pub mod hysteresis;
pub mod monitor;
pub mod probe;
pub mod settings;

pub use monitor::{Monitor, MonitorConfig, MonitorHandle};
pub use probe::ProbeConfig;
