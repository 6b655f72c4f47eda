//! W3C trace context across processes: into and out of gRPC metadata and NATS headers.
//!
//! Callers pass closures over their own header type, so this crate stays free of tonic and NATS.

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct FnInjector<'a>(&'a mut dyn FnMut(&str, String));

impl Injector for FnInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        (self.0)(key, value)
    }
}

struct PairsExtractor<'a>(&'a [(String, String)]);

impl Extractor for PairsExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Writes the current span's context (`traceparent`, `tracestate`) through `set`.
pub fn inject_current(set: &mut dyn FnMut(&str, String)) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut FnInjector(set))
    });
}

/// The current span's context as header pairs (what the event envelope stores).
pub fn current_headers() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    inject_current(&mut |key, value| pairs.push((key.to_string(), value)));
    pairs
}

/// Makes `span` a child of the remote context found in `headers`, if any.
pub fn set_parent(span: &tracing::Span, headers: &[(String, String)]) {
    if headers.is_empty() {
        return;
    }
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&PairsExtractor(headers)));
    let _ = span.set_parent(context);
}

/// The `traceparent` of the current span, for log correlation.
pub fn current_traceparent() -> Option<String> {
    current_headers().into_iter().find(|(k, _)| k == "traceparent").map(|(_, v)| v)
}
