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
pub use lifecycle::{SpawnedService, TestEnv, check_lifecycle, check_sigterm};
pub use nats_server::NatsServer;
pub use proxy::TcpProxy;

pub mod fake_tiktok;
mod lifecycle;
mod nats_server;
mod proxy;

/// The superuser URL (`ORDERFLOW_ADMIN_DATABASE_URL`), as the bootstrap uses it.
pub fn admin_url() -> String {
    std::env::var("ORDERFLOW_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// A unique bus namespace (its own streams and subjects) for one test: `t<run tag><8 hex>`.
pub fn namespace() -> String {
    format!("t{}{}", run_tag(), &Uuid::new_v4().simple().to_string()[..8])
}

/// The first 8 hex digits of every test database and namespace name: `ORDERFLOW_TEST_RUN`, which
/// `deploy/local/test.sh` sets so that it can remove what its run created once the run ends
/// (tests leave their databases and streams behind); random when unset or malformed. Eight, not
/// four: two runs on one machine that drew the same tag would remove each other's databases.
fn run_tag() -> String {
    std::env::var("ORDERFLOW_TEST_RUN")
        .ok()
        .filter(|tag| tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .unwrap_or_else(|| Uuid::new_v4().simple().to_string()[..8].to_string())
}

/// Quiet test logs unless `ORDERFLOW_TEST_LOG` is set to a filter.
pub fn init_logs() {
    telemetry::init_for_tests();
}

/// A development token, signed with the development secret the services use in tests.
pub fn token(tenant_id: Option<Uuid>, role: Role) -> String {
    auth::JwtKeys::new(auth::DEV_JWT_SECRET.as_bytes()).mint("test-user", tenant_id, role, Duration::from_secs(3600))
}

static ROLES: OnceCell<()> = OnceCell::const_new();

async fn admin_pool(database: Option<&str>) -> anyhow::Result<PgPool> {
    let mut options: PgConnectOptions = admin_url().parse()?;
    if let Some(database) = database {
        options = options.database(database);
    }
    Ok(PgPoolOptions::new().max_connections(1).connect_with(options).await?)
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
                let passwords: Vec<_> = db::SERVICES.iter().map(|s| (*s, s.dev_password())).collect();
                db::bootstrap::ensure_roles(&admin, &passwords).await
            })
            .await?;
        let name = format!("oftest_{}{}", run_tag(), &Uuid::new_v4().simple().to_string()[..28]);
        admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await?;
        admin.close().await;
        let on_db = admin_pool(Some(&name)).await?;
        db::bootstrap::ensure_schemas(&on_db, &name).await?;
        on_db.close().await;
        Ok(Self { name })
    }

    /// The URL a service connects with: its own role, this database.
    pub fn service_url(&self, service: &str) -> anyhow::Result<String> {
        service_url_on(&admin_url().parse()?, service, &self.name)
    }

    /// A superuser pool on this database, for assertions across schemas.
    pub async fn admin(&self) -> anyhow::Result<PgPool> {
        admin_pool(Some(&self.name)).await
    }
}

/// Asserts that every column of `tables` (names, qualified or found by the pool's search path)
/// keeps autoanalyze's sample small: a statistics target of at most 10, where -1 is the default
/// (100), which makes autoanalyze sample ten times the rows of the whole table again.
pub async fn assert_small_statistics(pool: &PgPool, tables: &[&str]) {
    let loose: Vec<(String, String, i16)> = sqlx::query_as(
        "SELECT a.attrelid::regclass::text, a.attname::text, a.attstattarget::int2 FROM pg_attribute a
         WHERE a.attrelid = ANY(SELECT t::regclass FROM UNNEST($1::text[]) AS t)
           AND a.attnum > 0 AND NOT a.attisdropped AND (a.attstattarget < 0 OR a.attstattarget > 10)
         ORDER BY 1, 2",
    )
    .bind(tables)
    .fetch_all(pool)
    .await
    .expect("statistics targets");
    assert!(loose.is_empty(), "columns at a large statistics target (set them in a migration): {loose:?}");
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

/// An HTTP client for tests (plain HTTP to our own services and fakes).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().expect("http client")
}

/// The URL `service` connects to `database` with, on the server `admin` names.
fn service_url_on(admin: &PgConnectOptions, service: &str, database: &str) -> anyhow::Result<String> {
    let service = db::ServiceDb::lookup(service).ok_or_else(|| anyhow::anyhow!("unknown service {service}"))?;
    let (role, password, host, port) = (service.role, service.dev_password(), admin.get_host(), admin.get_port());
    Ok(match admin.get_socket() {
        // A Unix socket directory: the same server, reached without the TCP stack.
        Some(socket) => format!("postgres://{role}:{password}@{host}:{port}/{database}?host={}", socket.display()),
        None => format!("postgres://{role}:{password}@{host}:{port}/{database}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_url_keeps_the_admin_urls_server_and_socket() {
        let tcp: PgConnectOptions = "postgres://postgres:pw@10.0.0.5:6543/postgres".parse().expect("url");
        let url = service_url_on(&tcp, "draft", "oftest_x").expect("url");
        assert_eq!(url, "postgres://orderflow_draft:orderflow_draft_dev@10.0.0.5:6543/oftest_x");

        let socket: PgConnectOptions =
            "postgres://postgres:pw@localhost:5432/postgres?host=/run/pg".parse().expect("url");
        let url = service_url_on(&socket, "draft", "oftest_x").expect("url");
        let parsed: PgConnectOptions = url.parse().expect("the service URL parses");
        assert_eq!(parsed.get_socket().map(|p| p.display().to_string()).as_deref(), Some("/run/pg"));
        assert_eq!((parsed.get_username(), parsed.get_database()), ("orderflow_draft", Some("oftest_x")));
    }
}
