//! Logs and traces.
//!
//! Logs: `RUST_LOG` filters (default `info`), output to stderr.
//!
//! Traces: exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set ([`export`]; `docs/observability.md`). Spans at
//! `info` and above go to the exporter, whatever `RUST_LOG` says; SQL statements get spans of
//! their own ([`sql`]) and `traceparent` is read from requests and written on provider calls
//! ([`propagation`]). Without either variable no exporter, layer or statement hook exists.

pub mod export;
pub mod propagation;
pub mod sql;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// True when this process exports traces: the only case in which spans carry OpenTelemetry
/// contexts, statements get spans and `traceparent` is propagated.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What [`init`] set up; [`Telemetry::shutdown`] flushes the spans not yet exported.
#[must_use = "shut it down at exit, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Installs the process's subscriber once: the log output, and the trace exporter when the
/// OTLP variables ask for one. Call it inside the Tokio runtime (the exporter sends from it).
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let (provider, failure) = match export::configured().then(export::provider) {
        None => (None, None),
        Some(Ok(provider)) => (Some(provider), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("stackgate"))
            .with_filter(LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if let Some(e) = failure {
        tracing::warn!("traces are not exported: {e:#}");
    }
    if installed && provider.is_some() {
        EXPORTING.store(true, Ordering::Relaxed);
        sql::install();
        tracing::info!("exporting traces over OTLP");
    }
    Telemetry { provider }
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter. It blocks until they are sent
    /// (or time out): call it from a blocking thread, with the runtime still running.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("traces: the last spans were not exported: {e}");
        }
    }
}
