//! The example service on axum and sqlx: it migrates its schema at boot with its own sqlx pool (no second driver,
//! no second connection string), serves HTTP, and mounts the operator CLI as `app-axum migrate ...`.
//!
//! Environment: `DATABASE_URL` (default: the local server), `DEFAULT_SCHEMA_NAME` (default `dev`), `PORT`
//! (default 8080; `0` lets the system choose and the boot log says which), `APP_DATABASE_URL` (the pool the
//! handlers use, for example through PgBouncer; default `DATABASE_URL`), `MIGRATE_HISTORY_TABLE` and
//! `MIGRATE_EXTRA_SEARCH_PATH` (read at boot exactly as `migrate` reads them). If migrating fails, or the
//! application's pool does not resolve names in the schema, the error goes to stderr and the process exits with
//! status 1 before serving anything.
//!
//! Routes: `GET /health` and `GET /products` in the configured schema; `GET /tenants/{tenant}/products` in the
//! tenant's schema, a tenant per request, through `begin_in_schema_sqlx`.

mod http;

use anyhow::Context;
use clap::Parser;
use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{check_schema_sqlx, embed_migrations, MigrationSet, Migrator, SchemaName};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The service's migrations, compiled in; `build.rs` makes adding a file rebuild the binary.
pub static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The example service on axum and sqlx.
#[derive(Debug, Parser)]
#[command(version, about)]
// Parsed once per process: the size of the `Migrate` variant does not matter.
#[allow(clippy::large_enum_variant)]
enum AppCommand {
    /// Migrate the configured schema, then serve HTTP (the default).
    Serve,
    /// Manage the database schemas with the migrations compiled into this binary.
    Migrate(MigrateCommand),
}

fn main() {
    let command = if std::env::args_os().len() <= 1 { AppCommand::Serve } else { AppCommand::parse() };
    match command {
        AppCommand::Serve => {
            let served = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("could not start the async runtime")
                .and_then(|runtime| runtime.block_on(serve()));
            if let Err(error) = served {
                eprintln!("error: {error:#}");
                std::process::exit(1);
            }
        }
        // The CLI is synchronous and opens its own connections: it runs outside the runtime.
        AppCommand::Migrate(command) => std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code()),
    }
}

async fn serve() -> anyhow::Result<()> {
    let database_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let schema = SchemaName::new(&std::env::var("DEFAULT_SCHEMA_NAME").unwrap_or_else(|_| "dev".to_owned()))?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().with_context(|| format!("PORT {port:?} is not a port number"))?,
        Err(_) => 8080,
    };

    // Migrate with a pool of the service's own driver; replicas booting together wait for each other, and the
    // boot log says who they wait for.
    let options = connect_options(&database_url, "DATABASE_URL")?.application_name("app-axum migrate");
    let pool = PgPoolOptions::new().max_connections(1).connect_with(options).await.context("could not connect")?;
    let migrator = Migrator::new(&MIGRATIONS).with_env()?.on_wait(|waiting| eprintln!("{waiting}"));
    let report = migrator.migrate_sqlx(&pool, schema.as_str()).await?;
    eprintln!(
        "schema {:?} at version {} ({} migration(s) applied)",
        report.schema,
        report.version_after.map_or("none".to_owned(), |v| v.to_string()),
        report.steps.len()
    );
    pool.close().await;

    let app_url = std::env::var("APP_DATABASE_URL").unwrap_or(database_url);
    let app_options = connect_options(&app_url, "APP_DATABASE_URL")?.application_name("app-axum");
    let app_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(app_options)
        .await
        .context("could not open the application pool")?;
    // Never answer from another schema: one round trip proves the handlers' transactions resolve in this one.
    let mut connection = app_pool.acquire().await.context("could not open the application pool")?;
    check_schema_sqlx(&mut connection, &schema).await.context("refusing to serve")?;
    drop(connection);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("could not listen on 127.0.0.1:{port}"))?;
    eprintln!("listening on http://127.0.0.1:{}", listener.local_addr()?.port());
    axum::serve(listener, http::router(app_pool, schema)).await.context("serving")
}

/// The pool's options from a `postgres://` URL. `extra_float_digits` is not sent at startup: a transaction pooler
/// (PgBouncer) refuses startup parameters it does not know, and PostgreSQL 12+ sends exact floats by default.
fn connect_options(url: &str, variable: &str) -> anyhow::Result<PgConnectOptions> {
    // sqlx reads any scheme as PostgreSQL's: a MySQL URL would be tried as a database name.
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("{variable} is not a postgres:// URL (postgres://user@host:port/database)");
    }
    let options: PgConnectOptions = url.parse().with_context(|| format!("{variable} is not a postgres:// URL"))?;
    Ok(options.extra_float_digits(None))
}
