//! One connection through each of the runtime's drivers, and the migration of a list of schemas on it, one after
//! the other. Shared by `driver-probe` (timed as a process by `bench drivers`) and `bench drivers`' in-process
//! figures, so both time the same code.

use anyhow::Context;
use migrate_runtime::{MigrationSet, Migrator, Operation, Target};

/// The drivers `Migrator` can migrate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    /// `postgres` (sync): `Migrator::migrate`.
    Postgres,
    /// `tokio-postgres` (feature `tokio`): `Migrator::migrate_async`.
    TokioPostgres,
    /// sqlx 0.9 (feature `sqlx`): one connection of a one-connection pool, `Migrator::run_sqlx_connection`.
    Sqlx,
    /// sqlx 0.9, `Migrator::migrate_sqlx(&pool, ..)` for every schema: a service's call, one pool acquire each.
    SqlxPool,
    /// diesel 2.4 (feature `diesel`): `Migrator::migrate_diesel`.
    Diesel,
    /// diesel-async 0.10 (feature `diesel-async`): `Migrator::migrate_diesel_async`.
    DieselAsync,
}

impl Driver {
    /// The name `--driver` takes.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Postgres => "postgres",
            Driver::TokioPostgres => "tokio-postgres",
            Driver::Sqlx => "sqlx",
            Driver::SqlxPool => "sqlx-pool",
            Driver::Diesel => "diesel",
            Driver::DieselAsync => "diesel-async",
        }
    }
}

/// An open connection of one driver, with the runtime the async ones run on.
pub enum Connection {
    Postgres(postgres::Client),
    TokioPostgres(tokio::runtime::Runtime, tokio_postgres::Client),
    /// `None` only while dropping: the connection goes back to its pool inside the runtime (see `Drop`).
    Sqlx(tokio::runtime::Runtime, Option<sqlx::pool::PoolConnection<sqlx::Postgres>>),
    SqlxPool(tokio::runtime::Runtime, sqlx::PgPool),
    Diesel(diesel::PgConnection),
    DieselAsync(tokio::runtime::Runtime, diesel_async::AsyncPgConnection),
}

/// A current-thread runtime for every async driver alike: a one-shot migration needs no worker threads.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("start a tokio runtime")
}

impl Connection {
    /// Connect once with `driver`, as a service on that driver connects at boot.
    pub fn open(driver: Driver, database_url: &str) -> anyhow::Result<Connection> {
        let connect = || format!("connect with {}", driver.name());
        Ok(match driver {
            Driver::Postgres => {
                Connection::Postgres(postgres::Client::connect(database_url, postgres::NoTls).with_context(connect)?)
            }
            Driver::TokioPostgres => {
                let runtime = runtime()?;
                let client = runtime.block_on(async {
                    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls).await?;
                    // The connection's I/O runs beside the queries on the same thread.
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            eprintln!("tokio-postgres connection: {error}");
                        }
                    });
                    Ok::<_, tokio_postgres::Error>(client)
                });
                Connection::TokioPostgres(runtime, client.with_context(connect)?)
            }
            Driver::Sqlx | Driver::SqlxPool => {
                let runtime = runtime()?;
                let pool = runtime
                    .block_on(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(database_url))
                    .with_context(connect)?;
                if driver == Driver::SqlxPool {
                    Connection::SqlxPool(runtime, pool)
                } else {
                    let connection = runtime.block_on(pool.acquire()).context("take the pool's connection")?;
                    Connection::Sqlx(runtime, Some(connection))
                }
            }
            Driver::Diesel => {
                use diesel::Connection as _;
                Connection::Diesel(diesel::PgConnection::establish(database_url).with_context(connect)?)
            }
            Driver::DieselAsync => {
                use diesel_async::AsyncConnection as _;
                let runtime = runtime()?;
                let connection =
                    runtime.block_on(diesel_async::AsyncPgConnection::establish(database_url)).with_context(connect)?;
                Connection::DieselAsync(runtime, connection)
            }
        })
    }

    /// Migrate every schema of `schemas` to the newest version of `set`, in order, stopping at the first error.
    pub fn migrate_all(&mut self, set: &MigrationSet, schemas: &[String]) -> anyhow::Result<()> {
        let migrator = Migrator::new(set);
        for schema in schemas {
            self.migrate(&migrator, schema).with_context(|| format!("migrate schema {schema:?}"))?;
        }
        Ok(())
    }

    fn migrate(&mut self, migrator: &Migrator<'_>, schema: &str) -> anyhow::Result<()> {
        let head = Operation::Upgrade(Target::Head);
        Ok(match self {
            Connection::Postgres(client) => migrator.migrate(client, schema).map(drop),
            Connection::TokioPostgres(runtime, client) => {
                runtime.block_on(migrator.migrate_async(client, schema)).map(drop)
            }
            Connection::Sqlx(runtime, connection) => {
                let connection = connection.as_mut().context("the sqlx connection is closed")?;
                runtime.block_on(migrator.run_sqlx_connection(connection, schema, head)).map(drop)
            }
            Connection::SqlxPool(runtime, pool) => runtime.block_on(migrator.migrate_sqlx(pool, schema)).map(drop),
            Connection::Diesel(connection) => migrator.migrate_diesel(connection, schema).map(drop),
            Connection::DieselAsync(runtime, connection) => {
                runtime.block_on(migrator.migrate_diesel_async(connection, schema)).map(drop)
            }
        }?)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // sqlx hands a dropped connection back to its pool on a task of the runtime: outside one it panics.
        if let Connection::Sqlx(runtime, connection) = self {
            let _context = runtime.enter();
            drop(connection.take());
        }
    }
}
