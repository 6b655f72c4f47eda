//! A span export that fails (the collector is unreachable) is logged, not dropped in silence.
//!
//! The exporter reads its endpoint from the environment, so the work runs in a child process (this
//! same test binary, started with the variables set) and this test reads the child's log.

const CHILD: &str = "ORDERFLOW_TELEMETRY_EXPORT_CHILD";

#[test]
fn a_failed_span_export_is_logged_as_an_error() {
    // Nothing listens there: bind a port, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let output = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "export_to_nowhere_and_stop", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .output()
        .expect("run the child");
    assert!(output.status.success(), "child failed: {}", String::from_utf8_lossy(&output.stderr));
    let log = String::from_utf8_lossy(&output.stdout);
    let failure = log
        .lines()
        .find(|line| line.contains("BatchSpanProcessor.ExportError"))
        .unwrap_or_else(|| panic!("no export error logged; the child's output was:\n{log}"));
    assert!(failure.contains("\"level\":\"ERROR\""), "logged as an error: {failure}");
}

/// The child's part (does nothing unless started by the test above): what a service does, one
/// span, then the shutdown flush, which exports to nowhere.
#[test]
fn export_to_nowhere_and_stop() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let guard = {
        let _runtime = runtime.enter();
        telemetry::init("export-test", telemetry::LogFormat::Json).expect("telemetry")
    };
    runtime.block_on(async {
        let span = tracing::info_span!("work");
        let _entered = span.enter();
        tracing::info!("inside a span");
    });
    guard.shutdown();
}
