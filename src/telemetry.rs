//! Logging: `RUST_LOG` filters (default `info`), output to stderr.

use tracing_subscriber::EnvFilter;

/// Installs the process's log subscriber once.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
