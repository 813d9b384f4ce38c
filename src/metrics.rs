//! Prometheus metrics.
//!
//! The `metrics` crate records through one process-wide recorder, so it is installed once here;
//! everything else about the server is passed down explicitly.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder on first use and returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// A bounded label for a client-chosen operation name.
pub fn operation_label(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => n
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect(),
        _ => "anonymous".to_owned(),
    }
}

/// Records one GraphQL request: a count by operation and status, and its latency.
pub fn record_request(operation: &str, status: StatusCode, elapsed: Duration) {
    let labels = [
        ("operation", operation.to_owned()),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("stackgate_graphql_requests_total", &labels).increment(1);
    metrics::histogram!("stackgate_graphql_request_duration_seconds", "operation" => operation.to_owned())
        .record(elapsed.as_secs_f64());
}
