//! Spans leave a real service binary over OTLP, under the service's name, continuing the caller's
//! trace (W3C `traceparent` in the gRPC metadata). The collector is a stand-in speaking OTLP/gRPC.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use testkit::{SpawnedService, TestEnv};

/// What an OTLP collector received.
#[derive(Clone, Default)]
struct Collector {
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.exports.lock().expect("exports").push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// A received span, with the service name of the resource it came under.
#[derive(Debug)]
struct Received {
    service: Option<String>,
    name: String,
    trace_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    path: Option<String>,
}

impl Collector {
    async fn start() -> (Self, std::net::SocketAddr) {
        let collector = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tonic::transport::Server::builder().add_service(TraceServiceServer::new(collector.clone()));
        tokio::spawn(server.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));
        (collector, addr)
    }

    fn spans(&self) -> Vec<Received> {
        let text = |value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match value {
            Some(v) => match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            },
            None => None,
        };
        let exports = self.exports.lock().expect("exports");
        let mut spans = Vec::new();
        for export in exports.iter() {
            for resource_spans in &export.resource_spans {
                let service = resource_spans.resource.as_ref().and_then(|resource| {
                    resource.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| text(&kv.value))
                });
                for scope in &resource_spans.scope_spans {
                    for span in &scope.spans {
                        spans.push(Received {
                            service: service.clone(),
                            name: span.name.clone(),
                            trace_id: span.trace_id.clone(),
                            parent_span_id: span.parent_span_id.clone(),
                            path: span.attributes.iter().find(|kv| kv.key == "path").and_then(|kv| text(&kv.value)),
                        });
                    }
                }
            }
        }
        spans
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_served_call_is_exported_over_otlp_under_the_service_name_in_the_callers_trace() {
    let (collector, collector_addr) = Collector::start().await;
    let env = TestEnv::new().await;
    let service = SpawnedService::start(
        env!("CARGO_BIN_EXE_inventory"),
        "inventory",
        &env,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector_addr}")),
            // Export within a tenth of a second rather than the default five.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            // The level filter applies to spans too: the tests' default (`error`) would drop them.
            ("RUST_LOG", "info".into()),
        ],
    )
    .await;

    // The caller's trace: a fresh trace id and the caller's span id, as W3C traceparent.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", service.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest { service: String::new() });
    request
        .metadata_mut()
        .insert("traceparent", format!("00-{trace_id}-{caller_span}-01").parse().expect("metadata value"));
    health.check(request).await.expect("health check answers");

    let ours = || collector.spans().into_iter().filter(|span| hex(&span.trace_id) == trace_id).collect::<Vec<_>>();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while ours().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span of trace {trace_id} reached the collector in 15 s; it received: {:?}",
            collector.spans()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = ours();
    let served = spans.iter().find(|span| span.name == "grpc").unwrap_or_else(|| panic!("a grpc span: {spans:?}"));
    assert_eq!(served.service.as_deref(), Some("inventory"), "exported under the service's name");
    assert_eq!(hex(&served.parent_span_id), caller_span, "a child of the caller's span");
    assert_eq!(served.path.as_deref(), Some("/grpc.health.v1.Health/Check"));

    let status = service.terminate().await;
    assert!(status.success(), "the service still stops cleanly while exporting: {status}");
}
