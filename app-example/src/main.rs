//! A small service that migrates its schema at boot and then serves HTTP, with the operator CLI mounted as
//! `app-example migrate ...`.
//!
//! Environment: `DATABASE_URL` (default: the local server), `DEFAULT_SCHEMA_NAME` (default `dev`), `PORT`
//! (default 8080), `APP_DATABASE_URL` (the service's own queries, for example through PgBouncer or as a role with
//! fewer rights; default `DATABASE_URL`), `VERIFY_SCHEMA_AT_BOOT` (`1`: after migrating, compare the schema's
//! structure with what its migrations build and log each difference on stderr; the service starts either way),
//! `MIGRATE_HISTORY_TABLE` and `MIGRATE_EXTRA_SEARCH_PATH` (the history table's name and the shared schemas in the
//! migrations' `search_path`, read at boot exactly as `migrate` reads them).
//! If migrating fails, or the application's connection does not resolve
//! names in the schema, the error goes to stderr and the process exits with status 1 before serving anything.

mod http;

use anyhow::Context;
use clap::Parser;
use migrate_cli::{Cli, MigrateCommand};
use migrate_ops::{verify_schemas, Outcome};
use migrate_runtime::{check_schema, embed_migrations, Database, MigrationSet, Migrator, SchemaName};

/// The service's migrations, compiled in; `build.rs` makes adding a file rebuild the binary.
pub static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The example service.
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
    // No arguments means serve, so the service starts the same way under any process manager.
    let command = if std::env::args_os().len() <= 1 { AppCommand::Serve } else { AppCommand::parse() };
    match command {
        AppCommand::Serve => {
            if let Err(error) = serve() {
                eprintln!("error: {error:#}");
                std::process::exit(1);
            }
        }
        AppCommand::Migrate(command) => std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code()),
    }
}

fn serve() -> anyhow::Result<()> {
    let database_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let schema_name = std::env::var("DEFAULT_SCHEMA_NAME").unwrap_or_else(|_| "dev".to_owned());
    let schema = SchemaName::new(&schema_name)?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().with_context(|| format!("PORT {port:?} is not a port number"))?,
        Err(_) => 8080,
    };

    // libpq-style sslmode (disable, prefer, require, verify-ca, verify-full) and sslrootcert are understood.
    let database: Database = database_url.parse().context("DATABASE_URL")?;
    let migrating = database.clone().default_application_name("app-example migrate");
    let mut client = migrating.connect().with_context(|| format!("could not connect to {database}"))?;
    // Replicas booting together wait for each other; the boot log says who they wait for.
    // MIGRATE_HISTORY_TABLE and MIGRATE_EXTRA_SEARCH_PATH, read as the CLI reads them: boot and operators agree.
    let migrator = Migrator::new(&MIGRATIONS).with_env()?.on_wait(|waiting| eprintln!("{waiting}"));
    let report = migrator.migrate(&mut client, schema.as_str())?;
    eprintln!(
        "schema {:?} at version {} ({} migration(s) applied)",
        report.schema,
        report.version_after.map_or("none".to_owned(), |v| v.to_string()),
        report.steps.len()
    );
    if verify_at_boot() {
        verify(&mut client, &migrator, &schema);
    }
    drop(client);

    // The application's own connection, with no search_path startup option: a pooler in transaction mode would
    // refuse it or drop it. Every handler sets search_path for its own transaction instead (see http.rs).
    let app_database: Database = match std::env::var("APP_DATABASE_URL") {
        Ok(url) => url.parse().context("APP_DATABASE_URL")?,
        Err(_) => database,
    };
    let mut app_client = app_database
        .connect()
        .with_context(|| format!("could not open the application connection to {app_database}"))?;
    // Never answer from another schema: one round trip proves the queries will resolve in this one.
    check_schema(&mut app_client, &schema).context("refusing to serve")?;
    http::serve(port, schema, app_client)
}

/// `VERIFY_SCHEMA_AT_BOOT` is `1` (or `true`, `yes`, `on`).
fn verify_at_boot() -> bool {
    std::env::var("VERIFY_SCHEMA_AT_BOOT")
        .is_ok_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// Compare the schema with what its applied migrations build and log each difference on stderr. Never refuses to
/// start: a hand-made index or a missing one is for an operator to look at (`migrate verify`, `migrate diff`),
/// not a reason to take the service down; a failure to verify is logged too.
fn verify(client: &mut postgres::Client, migrator: &Migrator<'_>, schema: &SchemaName) {
    let verified = verify_schemas(client, migrator, std::slice::from_ref(schema));
    let verifications = match verified {
        Ok(verifications) => verifications,
        Err(error) => {
            let error = anyhow::Error::new(error);
            return eprintln!("verify: could not verify schema {:?}, starting anyway: {error:#}", schema.as_str());
        }
    };
    match verifications.as_slice() {
        [verification] => match &verification.outcome {
            Outcome::Differs(differences) => {
                eprintln!(
                    "verify: schema {:?} differs from what its migrations build ({} difference(s)); starting anyway:",
                    schema.as_str(),
                    differences.len()
                );
                for difference in differences {
                    eprintln!("verify:   {difference}");
                }
            }
            outcome => eprintln!("verify: schema {:?}: {}", schema.as_str(), outcome.label()),
        },
        _ => eprintln!("verify: schema {:?}: no result", schema.as_str()),
    }
}
