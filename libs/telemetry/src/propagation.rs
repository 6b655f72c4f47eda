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

/// Links `span` to the remote context found in each set of headers: a span that handles several
/// messages at once has no single parent, but each message's trace still leads to it.
pub fn add_links<'a>(span: &tracing::Span, header_sets: impl IntoIterator<Item = &'a [(String, String)]>) {
    use opentelemetry::trace::TraceContextExt;
    for headers in header_sets {
        if headers.is_empty() {
            continue;
        }
        let context =
            opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&PairsExtractor(headers)));
        let linked = context.span().span_context().clone();
        if linked.is_valid() {
            span.add_link(linked);
        }
    }
}

/// The `traceparent` of the current span, for log correlation.
pub fn current_traceparent() -> Option<String> {
    current_headers().into_iter().find(|(k, _)| k == "traceparent").map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Keeps every finished span, to look at what would have been exported.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().expect("kept spans").extend(batch);
            Ok(())
        }
    }

    #[test]
    fn a_span_handling_several_messages_links_to_each_of_their_traces() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(kept.clone()).build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let (first, second) = ("0af7651916cd43dd8448eb211c80319c", "4bf92f3577b34da6a3ce929d0e0e4736");
        let traced = |trace: &str, span: &str| vec![("traceparent".to_string(), format!("00-{trace}-{span}-01"))];
        // A message without trace headers (no exporter where it was produced) adds no link.
        let messages = [traced(first, "b7ad6b7169203331"), Vec::new(), traced(second, "00f067aa0ba902b7")];

        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("consume", events = 3);
            add_links(&span, messages.iter().map(Vec::as_slice));
        });

        let spans = kept.0.lock().expect("kept spans");
        assert_eq!(spans.len(), 1, "the batch span was exported");
        let linked: Vec<String> = spans[0].links.links.iter().map(|l| l.span_context.trace_id().to_string()).collect();
        assert_eq!(linked, [first, second]);
        assert_ne!(spans[0].span_context.trace_id().to_string(), first, "links, not a parent");
    }
}
