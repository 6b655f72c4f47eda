//! Prepares a Postgres cluster for orderflow: the service roles, the database, one schema each.
//! Idempotent; the quick start and the test command run it every time.

use anyhow::Context;
use db::bootstrap;
use sqlx::postgres::PgPoolOptions;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let env = settings::Env::from_process()?;
    let admin_url =
        env.secret("ORDERFLOW_ADMIN_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/postgres")?;
    let database: String = env.get("ORDERFLOW_DATABASE_NAME", bootstrap::DATABASE.to_string())?;

    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url.expose())
        .await
        .context("connect as the Postgres superuser (ORDERFLOW_ADMIN_DATABASE_URL)")?;
    let mut passwords = Vec::new();
    for service in db::SERVICES {
        let password = env.secret(&service.password_var(), &service.dev_password())?;
        passwords.push((*service, password.expose().to_string()));
    }
    bootstrap::ensure_roles(&admin, &passwords).await.context("create service roles")?;
    bootstrap::ensure_database(&admin, &database).await.context("create database")?;

    let mut on_db_url: sqlx::postgres::PgConnectOptions = admin_url.expose().parse()?;
    on_db_url = on_db_url.database(&database);
    let on_db = PgPoolOptions::new().max_connections(1).connect_with(on_db_url).await?;
    bootstrap::ensure_schemas(&on_db, &database).await.context("create service schemas")?;
    println!("bootstrap: database {database} has roles and schemas for {} services", db::SERVICES.len());
    Ok(())
}
