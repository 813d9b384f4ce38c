//! W3C trace context (`traceparent`, `tracestate`) in and out: an incoming request continues
//! its caller's trace, an outgoing provider call carries ours. Nothing happens unless traces are
//! exported ([`super::exporting`]).

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` a child of the span an incoming request's `traceparent` names, if it names a
/// valid one.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !super::exporting() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Adds the current span's `traceparent` to an outgoing request's headers.
pub fn inject(headers: &mut http::HeaderMap) {
    if !super::exporting() {
        return;
    }
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}
