//! Logs, traces and metrics for every service.
//!
//! - Logs: `tracing` with JSON lines (or human-readable with `ORDERFLOW_LOG_FORMAT=pretty`),
//!   filtered by `RUST_LOG`.
//! - Traces: when the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set,
//!   every span is an OpenTelemetry span, exported over OTLP, and trace context crosses process
//!   boundaries as W3C `traceparent` in gRPC metadata and NATS headers ([`propagation`]). Without
//!   an endpoint the OpenTelemetry layer is not installed: building spans nobody receives cost
//!   about a third of a service's CPU under load, and no trace context is generated.
//! - Metrics: a Prometheus registry per application ([`Metrics`]), served on `/metrics`.

mod metrics;
pub mod propagation;

pub use metrics::Metrics;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("install the global subscriber: {0}")]
    Install(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            other => Err(format!("expected json or pretty, got {other:?}")),
        }
    }
}

/// Flushes spans on shutdown; keep it alive for the life of the process.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl TelemetryGuard {
    /// Exports what is buffered. Called last in the shutdown order.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("telemetry: flushing spans failed: {err}");
        }
    }
}

const DEFAULT_FILTER: &str = "info,sqlx=warn,async_nats=warn,h2=warn,tower=warn,hyper=warn";

/// Installs the global subscriber for a service process, logging to standard output.
pub fn init(service_name: &'static str, format: LogFormat) -> Result<TelemetryGuard, Error> {
    init_with_writer(service_name, format, std::io::stdout)
}

/// As [`init`], with the log lines written to `writer` (the benchmark formats them into a sink,
/// so it pays what a service pays for its logs).
pub fn init_with_writer<W>(service_name: &'static str, format: LogFormat, writer: W) -> Result<TelemetryGuard, Error>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let provider = tracer_provider(service_name)?;
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let fmt_layer = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).with_writer(writer).boxed(),
    };
    let otel_layer = exporting().then(|| tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name)));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|err| Error::Install(err.to_string()))?;
    Ok(TelemetryGuard { provider })
}

/// Whether an OTLP endpoint is configured through the standard environment variables.
fn exporting() -> bool {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_ok_and(|v| !v.is_empty())
}

/// For tests: silent unless `ORDERFLOW_TEST_LOG` is set (then it is the filter); never fails when a
/// subscriber is already installed by another test in the same binary.
pub fn init_for_tests() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let provider = SdkTracerProvider::builder().build();
        let tracer = provider.tracer("tests");
        let filter = std::env::var("ORDERFLOW_TEST_LOG").ok().map(EnvFilter::new);
        let fmt_layer = filter.map(|filter| tracing_subscriber::fmt::layer().with_test_writer().with_filter(filter));
        let _ = tracing_subscriber::registry()
            .with(fmt_layer)
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .try_init();
    });
}

/// Spans leave the process only when an OTLP endpoint is configured.
fn tracer_provider(service_name: &'static str) -> Result<SdkTracerProvider, Error> {
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name).build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    if !exporting() {
        return Ok(builder.build());
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|err| Error::Exporter(err.to_string()))?;
    Ok(builder.with_batch_exporter(exporter).build())
}
