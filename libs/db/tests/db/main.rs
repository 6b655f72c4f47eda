//! Schema isolation on a real Postgres: each service's role can use only its own schema.

use std::time::Duration;

use sqlx::PgPool;

fn config_of(db: &testkit::TestDb, service: &str) -> db::DbConfig {
    let service_db = db::ServiceDb::lookup(service).expect("service");
    db::DbConfig {
        url: settings::Secret::new(db.service_url(service).expect("url")),
        schema: service_db.schema.to_string(),
        max_connections: 2,
        batch_max_connections: 2,
        acquire_timeout: Duration::from_secs(5),
    }
}

async fn pool_as(db: &testkit::TestDb, service: &str) -> PgPool {
    db::connect(&config_of(db, service)).expect("pool")
}

async fn batch_pool_as(db: &testkit::TestDb, service: &str) -> PgPool {
    db::connect_batches(&config_of(db, service)).expect("batch pool")
}

fn sql_state(err: sqlx::Error) -> String {
    err.as_database_error().and_then(|e| e.code()).map(|c| c.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn the_order_role_cannot_read_or_write_the_draft_schema() {
    let db = testkit::TestDb::create().await.expect("db");
    let draft = pool_as(&db, "draft").await;
    sqlx::query("CREATE TABLE drafts (id INT PRIMARY KEY)").execute(&draft).await.expect("draft creates in its schema");
    sqlx::query("INSERT INTO drafts VALUES (1)").execute(&draft).await.expect("insert");
    let located: String =
        sqlx::query_scalar("SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'drafts'")
            .fetch_one(&draft)
            .await
            .expect("lookup");
    assert_eq!(located, "draft", "unqualified names land in the service's own schema");

    let order = pool_as(&db, "order").await;
    let read = sqlx::query("SELECT * FROM draft.drafts").fetch_all(&order).await.unwrap_err();
    assert_eq!(sql_state(read), "42501", "insufficient_privilege");
    let write = sqlx::query("INSERT INTO draft.drafts VALUES (2)").execute(&order).await.unwrap_err();
    assert_eq!(sql_state(write), "42501");
    let create = sqlx::query("CREATE TABLE draft.sneaky (id INT)").execute(&order).await.unwrap_err();
    assert_eq!(sql_state(create), "42501");
}

#[tokio::test]
async fn no_service_can_create_tables_in_public() {
    let db = testkit::TestDb::create().await.expect("db");
    for service in db::SERVICES {
        let pool = pool_as(&db, service.service).await;
        let err = sqlx::query("CREATE TABLE public.shared_mess (id INT)").execute(&pool).await.unwrap_err();
        assert_eq!(sql_state(err), "42501", "{} created a table in public", service.service);
    }
}

#[tokio::test]
async fn migrations_run_in_the_services_schema_and_are_recorded_there() {
    let db = testkit::TestDb::create().await.expect("db");
    let ingest = pool_as(&db, "ingest").await;
    db::migrate(&ingest, &bus::MIGRATOR).await.expect("migrate");
    db::migrate(&ingest, &bus::MIGRATOR).await.expect("migrating twice is a no-op");
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT table_schema::text FROM information_schema.tables WHERE table_name IN ('outbox', 'inbox', '_sqlx_migrations')",
    )
    .fetch_all(&ingest)
    .await
    .expect("lookup");
    assert_eq!(schemas, vec!["ingest".to_string()]);
}

#[tokio::test]
async fn pool_connections_plan_each_execution_with_its_values() {
    // A generic plan cached while a table was empty outlives its growth (see `db::connect`).
    let db = testkit::TestDb::create().await.expect("db");
    let pool = pool_as(&db, "draft").await;
    for _ in 0..3 {
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&pool).await.expect("show");
        assert_eq!(mode, "force_custom_plan");
    }
    let search_path: String = sqlx::query_scalar("SHOW search_path").fetch_one(&pool).await.expect("show");
    assert_eq!(search_path, "draft", "both connection options are set");
}

#[tokio::test]
async fn a_batch_plans_once_and_still_probes_keys_after_the_table_grew() {
    let db = testkit::TestDb::create().await.expect("db");
    let pool = pool_as(&db, "draft").await;
    let batches = batch_pool_as(&db, "draft").await;
    sqlx::query("CREATE TABLE items (id INT PRIMARY KEY, name TEXT) WITH (autovacuum_enabled = false)")
        .execute(&pool)
        .await
        .expect("create");
    sqlx::query("ANALYZE items").execute(&pool).await.expect("analyze the empty table");
    let lookup = "SELECT count(*) FROM items WHERE id = ANY($1)";
    // Rows read in sequence, not scans: when concurrent tests' catalog changes reset this
    // backend's caches, the lookup is planned again as a bitmap scan, which Postgres also counts
    // in `seq_scan` (reading two rows).
    let scans = "SELECT seq_tup_read, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'items'";

    // Plan the lookup on every connection of the batch pool while the table is empty.
    let mut first = Vec::new();
    for _ in 0..2 {
        let mut tx = batches.begin().await.expect("begin");
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&mut *tx).await.expect("show");
        assert_eq!(mode, "force_generic_plan");
        let found: i64 = sqlx::query_scalar(lookup).bind(vec![1, 2]).fetch_one(&mut *tx).await.expect("lookup");
        assert_eq!(found, 0);
        first.push(tx);
    }
    for tx in first {
        tx.commit().await.expect("commit");
    }
    sqlx::query("INSERT INTO items SELECT g, 'item' FROM generate_series(1, 50000) g")
        .execute(&pool)
        .await
        .expect("grow");

    // No ANALYZE since: the cached plan is the one made on the empty table, and it uses the key.
    let mut tx = batches.begin().await.expect("begin");
    let found: i64 = sqlx::query_scalar(lookup).bind(vec![1, 2]).fetch_one(&mut *tx).await.expect("lookup");
    assert_eq!(found, 2);
    let (rows_scanned, index_scans): (i64, i64) = sqlx::query_as(scans).fetch_one(&mut *tx).await.expect("stats");
    assert!(index_scans > 0, "the lookup used the key");
    assert!(rows_scanned < 1000, "the lookup did not read the table ({rows_scanned} rows read in sequence)");
    tx.commit().await.expect("commit");

    // The service's other pool plans with the values.
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&pool).await.expect("show");
    assert_eq!(mode, "force_custom_plan");
}

#[tokio::test]
async fn a_connection_that_broke_while_idle_is_replaced_before_it_is_used() {
    let db = testkit::TestDb::create().await.expect("db");
    let proxy = testkit::TcpProxy::to_postgres().await;
    let config = db::DbConfig {
        url: settings::Secret::new(proxy.rewrite_url(&db.service_url("draft").expect("url"))),
        schema: "draft".to_string(),
        max_connections: 1,
        batch_max_connections: 1,
        acquire_timeout: Duration::from_secs(5),
    };
    let pool = db::connect(&config).expect("pool");
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await.expect("first use");
    assert_eq!(one, 1);
    tokio::time::sleep(Duration::from_millis(100)).await; // back in the pool

    // Postgres "restarts": the pooled connection is dead, new ones are accepted.
    proxy.cut();
    proxy.restore();
    tokio::time::sleep(db::TRUSTED_IDLE + Duration::from_millis(200)).await;

    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await.expect("tested, replaced, used");
    assert_eq!(one, 1);
    assert_eq!(pool.size(), 1, "the dead connection was closed, not kept beside the new one");
}

async fn backend_pid(conn: &mut sqlx::PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(conn).await.expect("pid")
}

/// `idle`, or `idle in transaction` for a backend that has a transaction open.
async fn backend_state(admin: &PgPool, pid: i32) -> String {
    sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
        .bind(pid)
        .fetch_one(admin)
        .await
        .expect("state")
}

#[tokio::test]
async fn a_batch_keeps_its_connection_after_a_commit_and_gives_it_back_after_a_failure() {
    let db = testkit::TestDb::create().await.expect("db");
    let pool = batch_pool_as(&db, "draft").await;
    let connections = db::BatchConnections::new(pool.clone());

    let mut connection = connections.take().await.expect("take");
    let mut tx = connection.begin().await.expect("begin");
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&mut *tx).await.expect("show");
    assert_eq!(mode, "force_generic_plan", "a batch's own settings");
    let first = backend_pid(&mut tx).await;
    tx.commit().await.expect("commit");
    connection.keep();
    assert_eq!((connections.kept(), pool.size(), pool.num_idle()), (1, 1, 0), "kept outside the pool");

    // The next batch runs on it, without going through the pool.
    let mut connection = connections.take().await.expect("take");
    assert_eq!(connections.kept(), 0);
    let mut tx = connection.begin().await.expect("begin");
    assert_eq!(backend_pid(&mut tx).await, first);
    // It fails: the connection goes back to the pool, its transaction rolled back, not kept.
    sqlx::query("SELECT 1 / 0").execute(&mut *tx).await.expect_err("division by zero");
    drop(tx);
    drop(connection);
    assert_eq!(connections.kept(), 0);
    testkit::eventually("the connection is back in the pool", Duration::from_secs(5), || async {
        pool.num_idle() == 1
    })
    .await;
    let mut conn = pool.acquire().await.expect("acquire");
    assert_eq!(backend_pid(&mut conn).await, first, "the same connection, usable");
    let admin = db.admin().await.expect("admin");
    assert_eq!(backend_state(&admin, first).await, "idle", "its transaction was rolled back");

    // A single-statement batch runs outside any transaction and keeps its connection too.
    drop(conn);
    testkit::eventually("back in the pool", Duration::from_secs(5), || async { pool.num_idle() == 1 }).await;
    let mut connection = connections.take().await.expect("take");
    let alone = backend_pid(connection.alone()).await;
    assert_eq!(backend_state(&admin, alone).await, "idle", "the statement committed on its own");
    connection.keep();
    assert_eq!((connections.kept(), alone), (1, first));
}

#[tokio::test]
async fn a_kept_connection_that_died_while_idle_is_not_used_for_the_next_batch() {
    let db = testkit::TestDb::create().await.expect("db");
    let pool = batch_pool_as(&db, "draft").await;
    let connections = db::BatchConnections::new(pool.clone());
    let mut connection = connections.take().await.expect("take");
    let mut tx = connection.begin().await.expect("begin");
    let dead = backend_pid(&mut tx).await;
    tx.commit().await.expect("commit");
    connection.keep();

    // Postgres ends that backend (a restart, an administrator) while the connection is kept.
    let admin = db.admin().await.expect("admin");
    sqlx::query("SELECT pg_terminate_backend($1)").bind(dead).execute(&admin).await.expect("terminate");
    tokio::time::sleep(db::TRUSTED_IDLE + Duration::from_millis(200)).await;

    let mut connection = connections.take().await.expect("take");
    let mut tx = connection.begin().await.expect("a tested connection, not the dead one");
    assert_ne!(backend_pid(&mut tx).await, dead);
    tx.commit().await.expect("commit");
    connection.keep();
    testkit::eventually("the dead connection is closed", Duration::from_secs(5), || async { pool.size() == 1 }).await;
}

#[tokio::test]
async fn kept_connections_left_idle_go_back_to_the_pool_even_when_a_fresher_one_is_taken() {
    let db = testkit::TestDb::create().await.expect("db");
    let pool = batch_pool_as(&db, "draft").await;
    let connections = db::BatchConnections::new(pool.clone());
    // Two batches ran side by side once; then only one at a time.
    let older = connections.take().await.expect("take");
    let newer = connections.take().await.expect("take");
    older.keep();
    tokio::time::sleep(db::TRUSTED_IDLE + Duration::from_millis(200)).await;
    newer.keep();
    assert_eq!(connections.kept(), 2);

    let connection = connections.take().await.expect("take the fresh one");
    assert_eq!(connections.kept(), 0, "the one idle too long went back to the pool");
    testkit::eventually("the idle one is in the pool", Duration::from_secs(5), || async { pool.num_idle() == 1 }).await;
    connection.keep();
}
