//! The one pool of a service, bound to its schema, and its migrations.

use std::time::Duration;

use settings::{Env, Secret};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

use crate::ServiceDb;

#[derive(Debug, Clone)]
pub struct DbConfig {
    pub url: Secret,
    pub schema: String,
    pub max_connections: u32,
    /// The pool of group-commit batches ([`connect_batches`]); each stage keeps at most one
    /// connection per batch running.
    pub batch_max_connections: u32,
    pub acquire_timeout: Duration,
}

impl DbConfig {
    /// `DATABASE_URL` (the service's own role), else the local development default for `service`.
    pub fn from_env(env: &Env, service: &ServiceDb) -> Result<Self, settings::Error> {
        let default_url = format!(
            "postgres://{}:{}@127.0.0.1:5432/{}",
            service.role,
            service.dev_password(),
            crate::bootstrap::DATABASE
        );
        Ok(Self {
            url: env.secret("DATABASE_URL", &default_url)?,
            schema: service.schema.to_string(),
            max_connections: env.get("ORDERFLOW_DB_MAX_CONNECTIONS", 16)?,
            batch_max_connections: env.get("ORDERFLOW_DB_BATCH_MAX_CONNECTIONS", 16)?,
            acquire_timeout: env.millis("ORDERFLOW_DB_ACQUIRE_TIMEOUT_MS", Duration::from_secs(5))?,
        })
    }
}

/// A pool whose every connection has `search_path` set to the service's schema, and
/// `plan_cache_mode = force_custom_plan`.
///
/// Statements are prepared once per connection (parsed once) but planned at every execution
/// with the values they get. Postgres keeps a generic plan until the table's statistics are
/// rewritten: one chosen while a table was small reads the whole table at every execution after
/// it has grown (the outbox poll did, as did the draft lookup by tenant and id, which walked a
/// tenant's every draft through an index that merely contains `id`), and one for `= ANY($1)` or
/// `UNNEST($1)` assumes ten keys whatever the batch holds. Group-commit batches plan once
/// instead ([`connect_batches`]).
///
/// The pool connects lazily so a service can start (and report not-ready) while Postgres is down.
///
/// A connection is tested (a round trip) before it is handed out only when it has been idle for
/// [`TRUSTED_IDLE`] or more (as HikariCP's "alive bypass window" does). sqlx's default tests every
/// one, and the hot paths take a connection per batch: the tests were one in seven of an
/// approval's round trips to Postgres. One that broke within that second (Postgres restarted)
/// fails its statement once and is then closed, since sqlx tests every connection as it comes
/// back.
pub fn connect(config: &DbConfig) -> Result<PgPool, sqlx::Error> {
    pool(config, config.max_connections, &[("plan_cache_mode", "force_custom_plan")])
}

/// The pool of a service's group-commit batches ([`crate::BatchConnections`]): its connections
/// plan each statement once, with sequential scans off.
///
/// A batch runs the same few statements thousands of times a second, each a lookup or write by
/// key; planning them at every execution (the other pool's way) cost a fifth of Postgres's time
/// on the approval path, foreign-key checks included, which Postgres plans like any statement.
/// Their generic plans are made with sequential scans off, so a plan made while a table was
/// small still probes its keys once the table has grown. Statements run on this pool must find
/// their rows through an index: the plan no longer sees the batch's values. The settings are
/// the connections' own (given at connect), so a batch's transaction is a plain `BEGIN`, and a
/// batch of one statement needs none.
pub fn connect_batches(config: &DbConfig) -> Result<PgPool, sqlx::Error> {
    pool(config, config.batch_max_connections, &[("plan_cache_mode", "force_generic_plan"), ("enable_seqscan", "off")])
}

fn pool(config: &DbConfig, max_connections: u32, settings: &[(&str, &str)]) -> Result<PgPool, sqlx::Error> {
    let mut options = vec![("search_path", config.schema.as_str())];
    options.extend_from_slice(settings);
    let options: PgConnectOptions = config
        .url
        .expose()
        .parse::<PgConnectOptions>()?
        .options(options)
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .min_connections(0)
        .acquire_timeout(config.acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= TRUSTED_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options))
}

/// How long an idle connection is trusted without a test; the hot paths reuse theirs within
/// milliseconds.
pub const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// Runs the service's own migrations (in its schema, recorded in its schema's `_sqlx_migrations`).
///
/// Shared libraries that keep tables in every schema (the bus's outbox and inbox) have migrator
/// versions below 1000 and services use timestamps, so both run against one history table;
/// `ignore_missing` lets each skip the other's rows.
pub async fn migrate(pool: &PgPool, migrator: &sqlx::migrate::Migrator) -> Result<(), sqlx::migrate::MigrateError> {
    let mut migrator = sqlx::migrate::Migrator {
        migrations: migrator.migrations.clone(),
        ignore_missing: true,
        locking: migrator.locking,
        no_tx: migrator.no_tx,
    };
    migrator.set_ignore_missing(true);
    migrator.run(pool).await
}
