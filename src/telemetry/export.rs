//! The OTLP/HTTP trace exporter, configured by the standard `OTEL_*` variables as the
//! OpenTelemetry SDK reads them: `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended) or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is), `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`,
//! the default, or `http/json`), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` (batching). `OTEL_SDK_DISABLED=true` turns it off.
//!
//! Spans are sent through our own reqwest client on the Tokio runtime: the SDK's batch thread
//! hands each request to the runtime and waits for its answer.

use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// True when the environment asks for traces to be exported.
pub fn configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The tracer provider: a batch exporter to the configured endpoint, under this service's
/// resource.
pub fn provider() -> anyhow::Result<SdkTracerProvider> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("the trace exporter needs the Tokio runtime"))?;
    let client = reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?;
    let mut exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(Sender { client, runtime });
    let protocol_set = [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok());
    if !protocol_set {
        // The specification's default; the crate's own would be JSON.
        exporter = exporter.with_protocol(Protocol::HttpBinary);
    }
    let exporter = exporter
        .build()
        .map_err(|e| anyhow::anyhow!("the OTLP exporter: {e}"))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build())
}

/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, the service name `stackgate` unless they
/// name one.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let unnamed = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_none_or(|name| name.as_str().starts_with("unknown_service"));
    match unnamed {
        true => Resource::builder().with_service_name("stackgate").build(),
        false => detected,
    }
}

/// Sends the exporter's requests with reqwest, on the runtime the server runs on.
#[derive(Debug)]
struct Sender {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Sender {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(reqwest::Request::try_from(request)?).await?;
            let mut answer = Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}
