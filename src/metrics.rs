//! Prometheus metrics.
//!
//! The `metrics` crate records through one process-wide recorder, so it is installed once here;
//! everything else about the server is passed down explicitly.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder on first use and returns the handle that renders it. Every metric
/// carries `replica="<replica>"` (`STACKGATE_REPLICA_ID`), the first caller's: one recorder
/// serves the whole process.
pub fn install(replica: &str) -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .add_global_label("replica", replica)
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            start_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// How often histograms' recorded samples are folded into their buckets.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds histogram samples into their buckets every [`UPKEEP_EVERY`], on a thread of its own (the
/// recorder outlives any one runtime). A recorder built without its exporter keeps every sample
/// until upkeep runs (a render runs it too): without this thread a server nobody scrapes grew by
/// two samples per request, without bound.
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                handle.run_upkeep();
            }
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; samples are folded only when /metrics is read");
    }
}

/// The label of operations whose caller did not authenticate: they never create a series.
pub const UNAUTHENTICATED_LABEL: &str = "unauthenticated";
/// The label of operations named after the first [`MAX_OPERATION_LABELS`] names.
pub const OTHER_LABEL: &str = "other";
/// Distinct operation names kept as labels; later names fold into [`OTHER_LABEL`].
pub const MAX_OPERATION_LABELS: usize = 200;

/// The bounded set of operation labels: names of authenticated callers' operations, first come
/// first kept, up to [`MAX_OPERATION_LABELS`]; a caller can never grow `/metrics` beyond that.
#[derive(Default)]
pub struct OperationLabels {
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl OperationLabels {
    /// The label of an authenticated caller's operation `name`.
    pub fn label(&self, name: Option<&str>) -> String {
        let name = operation_label(name);
        let Ok(mut seen) = self.seen.lock() else {
            return OTHER_LABEL.to_owned();
        };
        if seen.contains(&name) {
            return name;
        }
        if seen.len() >= MAX_OPERATION_LABELS {
            return OTHER_LABEL.to_owned();
        }
        seen.insert(name.clone());
        name
    }

    /// The label of a document of the trusted documents manifest: its manifest name. The manifest
    /// bounds these, so they do not count against [`MAX_OPERATION_LABELS`].
    pub fn trusted(&self, manifest_name: &str) -> String {
        operation_label(Some(manifest_name))
    }

    /// Records one operation: a count by label and outcome (`ok` or an error code), and its
    /// latency.
    pub fn count(&self, label: &str, outcome: &'static str, elapsed: Duration) {
        let labels = [
            ("operation", label.to_owned()),
            ("status", outcome.to_owned()),
        ];
        metrics::counter!("stackgate_graphql_requests_total", &labels).increment(1);
        metrics::histogram!("stackgate_graphql_request_duration_seconds", "operation" => label.to_owned())
            .record(elapsed.as_secs_f64());
    }
}

/// A label-safe form of a client-chosen operation name (at most 64 of `[A-Za-z0-9_]`).
fn operation_label(name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => n
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect(),
        _ => "anonymous".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without upkeep every histogram sample stays in memory until `/metrics` is read.
    #[test]
    fn installing_the_recorder_starts_its_upkeep_thread() {
        install("test");
        // A new thread takes its name once it runs: look again for up to 5 s.
        let mut names = Vec::new();
        for _ in 0..100 {
            names = std::fs::read_dir("/proc/self/task")
                .expect("this process's threads")
                .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
                .map(|name| name.trim().to_owned())
                .collect();
            if names.iter().any(|name| name == "metrics-upkeep") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no metrics-upkeep thread among {names:?}");
    }

    #[test]
    fn labels_are_bounded() {
        let labels = OperationLabels::default();
        for i in 0..MAX_OPERATION_LABELS {
            assert_eq!(labels.label(Some(&format!("Op{i}"))), format!("Op{i}"));
        }
        assert_eq!(labels.label(Some("OneMore")), OTHER_LABEL);
        assert_eq!(labels.label(Some("Op3")), "Op3");
        assert_eq!(labels.label(Some("a-b!c")), OTHER_LABEL);
    }
}
