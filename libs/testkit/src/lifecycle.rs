//! Running services in tests: in-process environments, real binaries, lifecycle checks.

use std::time::Duration;

use crate::{TestDb, http_client, namespace, nats_url};

/// Everything one in-process service needs in a test: its own database and bus namespace.
pub struct TestEnv {
    pub db: TestDb,
    pub namespace: String,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self { db: TestDb::create().await.expect("test database"), namespace: namespace() }
    }

    /// The shared settings for `service` in this environment (ports 0, fast timings).
    pub fn common(&self, service: &'static str) -> service_runtime::CommonConfig {
        let url = self.db.service_url(service).expect("known service");
        service_runtime::CommonConfig::for_tests(service, &url, &nats_url(), &self.namespace)
    }
}

/// Checks what every service must do: `/healthz`, `/readyz`, `/metrics`, `grpc.health.v1`, the
/// NATS micro status endpoint; then a graceful stop within the shutdown deadline.
pub async fn check_lifecycle(app: service_runtime::Application) {
    let http = http_client();
    let base = format!("http://{}", app.http_addr);
    let health = http.get(format!("{base}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = http.get(format!("{base}/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    let metrics = http.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("body");
    assert!(metrics.contains("outbox_published"), "{metrics}");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("grpc health")
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    let token = app.token();
    let running = tokio::spawn(app.run_until_stopped());
    token.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), running).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "service did not stop cleanly: {stopped:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A real service binary running against this test environment.
pub struct SpawnedService {
    pub child: std::process::Child,
    pub http_addr: std::net::SocketAddr,
    pub grpc_addr: std::net::SocketAddr,
}

impl SpawnedService {
    /// Starts `binary` (e.g. `env!("CARGO_BIN_EXE_ingest")`) with this environment's database and
    /// namespace on free ports, plus `extra` variables (fail points, secrets), and waits for it.
    ///
    /// A free port is found by binding port 0 and letting go of it, so a test running alongside
    /// can take it before the binary binds it: a binary that exits before it answers is started
    /// again on other ports (twice at most).
    pub async fn start(binary: &str, service: &str, env: &TestEnv, extra: &[(&str, String)]) -> Self {
        let mut exits = Vec::new();
        for _ in 0..3 {
            let mut spawned = Self::spawn(binary, service, env, extra);
            match spawned.answers_health().await {
                Ok(()) => return spawned,
                Err(status) => exits.push(status),
            }
        }
        panic!("{service} exited before answering /healthz, three times: {exits:?}");
    }

    fn spawn(binary: &str, service: &str, env: &TestEnv, extra: &[(&str, String)]) -> Self {
        let http_addr: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let grpc_addr: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut command = std::process::Command::new(binary);
        command
            .env("DATABASE_URL", env.db.service_url(service).expect("url"))
            .env("NATS_URL", nats_url())
            .env("ORDERFLOW_BUS_NAMESPACE", &env.namespace)
            .env("ORDERFLOW_HTTP_ADDR", http_addr.to_string())
            .env("ORDERFLOW_GRPC_ADDR", grpc_addr.to_string())
            .env("ORDERFLOW_LOG_FORMAT", "json")
            .env("RUST_LOG", std::env::var("ORDERFLOW_TEST_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(std::process::Stdio::null());
        for (key, value) in extra {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn service binary");
        Self { child, http_addr, grpc_addr }
    }

    /// Waits (30 s at most) until `/healthz` answers 200; `Err` with the exit status if the
    /// process ended first.
    async fn answers_health(&mut self) -> Result<(), std::process::ExitStatus> {
        let http = http_client();
        let url = format!("http://{}/healthz", self.http_addr);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if http.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(status);
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out after 30s waiting for {url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "service did not exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit by itself (e.g. at a fail point).
    pub async fn wait_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "service did not exit");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SpawnedService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real binary stops with status 0 on SIGTERM.
pub async fn check_sigterm(binary: &str, service: &str) {
    let env = TestEnv::new().await;
    let spawned = SpawnedService::start(binary, service, &env, &[]).await;
    let status = spawned.terminate().await;
    assert!(status.success(), "{service} exited with {status} on SIGTERM");
}
