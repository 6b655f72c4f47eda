//! The test harness every integration suite uses.
//!
//! Tests talk to the real Postgres and NATS that `deploy/local/test.sh` brings up. Each test gets
//! its own database (`oftest_<random>`, with the service schemas and grants the bootstrap makes)
//! and its own bus namespace (its own streams and subjects), so tests run in parallel and leave
//! nothing that breaks the next run; the test command drops old test databases before it starts.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};
use tokio::sync::OnceCell;
use uuid::Uuid;

pub use auth::Role;

/// The superuser URL (`ORDERFLOW_ADMIN_DATABASE_URL`), as the bootstrap uses it.
pub fn admin_url() -> String {
    std::env::var("ORDERFLOW_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// A unique bus namespace (its own streams and subjects) for one test.
pub fn namespace() -> String {
    format!("t{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// Quiet test logs unless `ORDERFLOW_TEST_LOG` is set to a filter.
pub fn init_logs() {
    telemetry::init_for_tests();
}

/// A development token, signed with the development secret the services use in tests.
pub fn token(tenant_id: Option<Uuid>, role: Role) -> String {
    auth::JwtKeys::new(auth::DEV_JWT_SECRET.as_bytes()).mint(
        "test-user",
        tenant_id,
        role,
        Duration::from_secs(3600),
    )
}

static ROLES: OnceCell<()> = OnceCell::const_new();

async fn admin_pool(database: Option<&str>) -> anyhow::Result<PgPool> {
    let mut options: PgConnectOptions = admin_url().parse()?;
    if let Some(database) = database {
        options = options.database(database);
    }
    Ok(PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// A fresh database with every service schema, owned by the service roles.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> anyhow::Result<Self> {
        init_logs();
        let admin = admin_pool(None).await?;
        ROLES
            .get_or_try_init(|| async {
                let passwords: Vec<_> = db::SERVICES
                    .iter()
                    .map(|s| (*s, s.dev_password()))
                    .collect();
                db::bootstrap::ensure_roles(&admin, &passwords).await
            })
            .await?;
        let name = format!("oftest_{}", Uuid::new_v4().simple());
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await?;
        admin.close().await;
        let on_db = admin_pool(Some(&name)).await?;
        db::bootstrap::ensure_schemas(&on_db, &name).await?;
        on_db.close().await;
        Ok(Self { name })
    }

    /// The URL a service connects with: its own role, this database.
    pub fn service_url(&self, service: &str) -> anyhow::Result<String> {
        let service = db::ServiceDb::lookup(service)
            .ok_or_else(|| anyhow::anyhow!("unknown service {service}"))?;
        let admin: PgConnectOptions = admin_url().parse()?;
        Ok(format!(
            "postgres://{}:{}@{}:{}/{}",
            service.role,
            service.dev_password(),
            admin.get_host(),
            admin.get_port(),
            self.name
        ))
    }

    /// A superuser pool on this database, for assertions across schemas.
    pub async fn admin(&self) -> anyhow::Result<PgPool> {
        admin_pool(Some(&self.name)).await
    }
}

/// Waits until `condition` holds, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A nats-server of the test's own, for outage tests: the shared server is never stopped.
pub struct NatsServer {
    pub port: u16,
    store: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl NatsServer {
    /// Starts a JetStream server on a free port with its own store directory.
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let store =
            std::env::temp_dir().join(format!("orderflow-nats-{}", Uuid::new_v4().simple()));
        let mut server = Self {
            port,
            store,
            child: None,
        };
        server.resume().await?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as an outage would); its store survives for [`NatsServer::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store, and waits until it accepts clients.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let child = std::process::Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("start nats-server (is it on PATH?): {e}"))?;
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        anyhow::bail!("nats-server did not start on port {}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// Everything one in-process service needs in a test: its own database and bus namespace.
pub struct TestEnv {
    pub db: TestDb,
    pub namespace: String,
}

impl TestEnv {
    pub async fn new() -> Self {
        Self {
            db: TestDb::create().await.expect("test database"),
            namespace: namespace(),
        }
    }

    /// The shared settings for `service` in this environment (ports 0, fast timings).
    pub fn common(&self, service: &'static str) -> service_runtime::CommonConfig {
        let url = self.db.service_url(service).expect("known service");
        service_runtime::CommonConfig::for_tests(service, &url, &nats_url(), &self.namespace)
    }
}

/// An HTTP client for tests (plain HTTP to our own services and fakes).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("http client")
}

/// Checks what every service must do: `/healthz`, `/readyz`, `/metrics`, `grpc.health.v1`, the
/// NATS micro status endpoint; then a graceful stop within the shutdown deadline.
pub async fn check_lifecycle(app: service_runtime::Application) {
    let http = http_client();
    let base = format!("http://{}", app.http_addr);
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(metrics.contains("outbox_published"), "{metrics}");

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("grpc health")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let token = app.token();
    let running = tokio::spawn(app.run_until_stopped());
    token.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(10), running).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "service did not stop cleanly: {stopped:?}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
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
    pub async fn start(
        binary: &str,
        service: &str,
        env: &TestEnv,
        extra: &[(&str, String)],
    ) -> Self {
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
            .env(
                "RUST_LOG",
                std::env::var("ORDERFLOW_TEST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(std::process::Stdio::null());
        for (key, value) in extra {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn service binary");
        let spawned = Self {
            child,
            http_addr,
            grpc_addr,
        };
        let http = http_client();
        let url = format!("http://{http_addr}/healthz");
        eventually(
            "the service binary answers /healthz",
            Duration::from_secs(30),
            || {
                let request = http.get(&url).send();
                async move { request.await.is_ok_and(|r| r.status() == 200) }
            },
        )
        .await;
        spawned
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "service did not exit after SIGTERM"
            );
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
            assert!(
                tokio::time::Instant::now() < deadline,
                "service did not exit"
            );
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
    assert!(
        status.success(),
        "{service} exited with {status} on SIGTERM"
    );
}

/// A TCP proxy in front of the shared Postgres that a test can cut, to simulate an outage
/// without stopping the server other tests use.
pub struct TcpProxy {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy to the Postgres of `ORDERFLOW_ADMIN_DATABASE_URL`.
    pub async fn to_postgres() -> Self {
        let admin: PgConnectOptions = admin_url().parse().expect("admin url");
        Self::to(format!("{}:{}", admin.get_host(), admin.get_port())).await
    }

    pub async fn to(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (cut_flag, open) = (cut.clone(), connections.clone());
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut_flag.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection reset
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                open.lock().expect("lock").push(task.abort_handle());
            }
        });
        Self {
            port,
            cut,
            connections,
            acceptor,
        }
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn rewrite_url(&self, url: &str) -> String {
        let admin: PgConnectOptions = admin_url().parse().expect("admin url");
        url.replace(
            &format!("{}:{}", admin.get_host(), admin.get_port()),
            &format!("127.0.0.1:{}", self.port),
        )
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for connection in self.connections.lock().expect("lock").drain(..) {
            connection.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut();
    }
}
