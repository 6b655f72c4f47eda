//! Creates, idempotently, what the services need in a Postgres cluster: one login role and one
//! schema per service, in the `orderflow` database. Roles are cluster-wide, so they are made once;
//! schemas are made in each database (the real one, and every per-test database).

use sqlx::{Executor, PgPool};

/// The database identity of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceDb {
    pub service: &'static str,
    pub role: &'static str,
    pub schema: &'static str,
}

impl ServiceDb {
    /// The password used when none is configured (development only; production must set it).
    pub fn dev_password(&self) -> String {
        format!("{}_dev", self.role)
    }

    /// The variable holding this service's database password for the bootstrap.
    pub fn password_var(&self) -> String {
        format!("ORDERFLOW_{}_DB_PASSWORD", self.service.to_ascii_uppercase())
    }

    pub fn lookup(service: &str) -> Option<ServiceDb> {
        SERVICES.iter().copied().find(|s| s.service == service)
    }
}

/// `order` is an SQL keyword, so the order service's schema is `orders`.
pub const SERVICES: &[ServiceDb] = &[
    ServiceDb { service: "ingest", role: "orderflow_ingest", schema: "ingest" },
    ServiceDb { service: "draft", role: "orderflow_draft", schema: "draft" },
    ServiceDb { service: "order", role: "orderflow_order", schema: "orders" },
    ServiceDb { service: "inventory", role: "orderflow_inventory", schema: "inventory" },
    ServiceDb { service: "shipping", role: "orderflow_shipping", schema: "shipping" },
    ServiceDb { service: "notifier", role: "orderflow_notifier", schema: "notifier" },
];

/// The database every service lives in, one schema each.
pub const DATABASE: &str = "orderflow";

fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Creates or updates each service's login role. Safe to run concurrently and repeatedly.
pub async fn ensure_roles(admin: &PgPool, passwords: &[(ServiceDb, String)]) -> Result<(), sqlx::Error> {
    // Serialise concurrent bootstraps (parallel test binaries) on a cluster-wide advisory lock.
    let mut conn = admin.acquire().await?;
    conn.execute("SELECT pg_advisory_lock(7418230501)").await?;
    let result = async {
        for (service, password) in passwords {
            let sql = format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {role_lit}) THEN
                     CREATE ROLE {role} LOGIN PASSWORD {password};
                   ELSE
                     ALTER ROLE {role} LOGIN PASSWORD {password};
                   END IF;
                   ALTER ROLE {role} SET search_path = {schema};
                 END $$",
                schema = service.schema,
                role = service.role,
                role_lit = quote_literal(service.role),
                password = quote_literal(password),
            );
            conn.execute(sql.as_str()).await?;
        }
        Ok::<(), sqlx::Error>(())
    }
    .await;
    conn.execute("SELECT pg_advisory_unlock(7418230501)").await?;
    result
}

/// Creates the database if it does not exist (admin connection to any other database).
pub async fn ensure_database(admin: &PgPool, name: &str) -> Result<(), sqlx::Error> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(admin)
        .await?;
    if !exists {
        match admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await {
            Ok(_) => {}
            // Another bootstrap won the race.
            Err(err) if crate::classify(&err) == crate::DbErrorKind::UniqueViolation => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// In the database `on_db` is connected to: one schema per service, owned by its role, and nothing
/// else usable by those roles (no CREATE on `public`, no access to each other's schemas).
pub async fn ensure_schemas(on_db: &PgPool, database: &str) -> Result<(), sqlx::Error> {
    // Advisory locks are per database: this serialises bootstraps of one database, and everything
    // here touches only that database's catalog (role-wide settings live in `ensure_roles`).
    let mut tx = on_db.begin().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7418230502)").await?;
    tx.execute(format!("REVOKE ALL ON DATABASE \"{database}\" FROM PUBLIC").as_str()).await?;
    tx.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC").await?;
    // Trigram indexes for free-text search (order codes, customer names); a trusted contrib
    // extension, created once per database by the superuser.
    tx.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public").await?;
    for service in SERVICES {
        let statements = [
            format!("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}", service.schema, service.role),
            format!("REVOKE ALL ON SCHEMA {} FROM PUBLIC", service.schema),
            format!("GRANT CONNECT, TEMPORARY ON DATABASE \"{database}\" TO {}", service.role),
        ];
        for sql in statements {
            tx.execute(sql.as_str()).await?;
        }
    }
    tx.commit().await
}
