//! Logging and tracing.
//!
//! * Logs: JSON lines (ELK-friendly: `timestamp`, `level`, `target`, `message`, the event's
//!   fields flattened, the current span and the span list with `request_id`) when stderr is
//!   not a terminal or `[log] format = "json"`, pretty otherwise. The level comes from
//!   `[log] level` / `SYMBI_LOG_LEVEL` (any `tracing` filter, e.g. `info,symbi_api=debug`).
//! * Traces: when `[log] otlp_endpoint` is set, every span (HTTP request → runtime →
//!   policy → action → sandbox) is exported with OTLP over HTTP/protobuf to
//!   `<endpoint>/v1/traces` (Jaeger, Tempo and the OpenTelemetry Collector accept it on
//!   port 4318). Service name `symbi` (override with `OTEL_SERVICE_NAME`).
//!
//! Secrets never reach a log line: the API logs key ids, never tokens.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use std::io::IsTerminal;
use std::sync::OnceLock;
use symbi_config::sections::log::{LogFormat, LogSection};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

static PROVIDER: OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> = OnceLock::new();

fn otlp_provider(endpoint: &str) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, String> {
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .map_err(|e| e.to_string())?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "symbi".into());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(log: &LogSection, default_level: &str) {
    let level = if log.level.is_empty() {
        default_level
    } else {
        log.level.as_str()
    };
    let mut filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // The embedded vector store logs every WAL it opens at info; keep it to errors unless
    // the operator's filter names it.
    if !level.contains("qdrant") {
        filter = filter.add_directive("qdrant_edge=error".parse().expect("static directive"));
    }
    let json = match log.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let fmt_json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .with_writer(std::io::stderr)
    });
    let fmt_pretty = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let mut otel_error = None;
    let otel = log
        .otlp_endpoint
        .as_deref()
        .and_then(|ep| match otlp_provider(ep) {
            Ok(p) => {
                let tracer = p.tracer("symbi");
                let _ = PROVIDER.set(p);
                Some(tracing_opentelemetry::layer().with_tracer(tracer))
            }
            Err(e) => {
                otel_error = Some(e);
                None
            }
        });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_json)
        .with(fmt_pretty)
        .with(otel)
        .try_init();
    if let Some(e) = otel_error {
        tracing::error!(error = %e, "OTLP trace export is not available; traces are not exported");
    } else if let Some(ep) = &log.otlp_endpoint {
        tracing::info!(endpoint = %ep, "exporting traces with OTLP/HTTP");
    }
}

/// Flushes and stops the trace exporter (call before the process exits).
pub fn shutdown() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.shutdown() {
            eprintln!("symbi: flushing traces failed: {e}");
        }
    }
}
