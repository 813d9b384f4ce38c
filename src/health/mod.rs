//! Health monitoring (`docs/health.md`): probes, hysteresis, the leased probe scheduler, and the
//! [`crate::events::HealthEvent`]s it publishes.
//!
//! - [`probe`]: what a resource row says to check, and checking it within a timeout.
//! - [`hysteresis`]: a confirmed state changes only after N consecutive agreeing probes.
//! - [`monitor`]: claims due probes across organizations with leases, probes with bounded
//!   concurrency, and records each result in one transaction in the resource's organization.
//! - [`settings`]: `STACKGATE_HEALTH_*` and their flags.

pub mod address;
pub mod hysteresis;
pub mod monitor;
pub mod probe;
pub mod settings;

pub use monitor::{Monitor, MonitorConfig, MonitorHandle};
pub use probe::ProbeConfig;
