//! What the benchmark runs as child processes, exec to exit, as an operator or a process manager would:
//!
//! - `bench migrate ...`: this project's CLI over the bench set, mounted in a service binary as `app-example
//!   migrate` mounts it over the example set;
//! - `bench citus-migrate ...`: the same CLI over the set the Citus tests use (`bench citus` runs it as a process);
//! - `bench refinery-upgrade SET SCHEMAS_FILE [--create]`: refinery 0.10's usual multi-schema loop as a small CLI
//!   (one connection; per schema `CREATE SCHEMA` when asked, `SET search_path`, `runner().run`);
//! - `bench refinery-serve`: a service like `app-example` on refinery: migrate `DEFAULT_SCHEMA_NAME` at boot, open
//!   the application's connection, serve `GET /health` on `PORT` (0: any, printed on stderr).

use anyhow::Context;
use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{MigrationSet, Migrator};

use crate::{Set, BENCH_SET, EXAMPLE_SET};

/// Run a child mode if `args` (without the program name) names one; `None` otherwise.
pub fn dispatch(args: &[String]) -> Option<i32> {
    let (mode, rest) = args.split_first()?;
    let result = match mode.as_str() {
        "migrate" => return Some(migrate(&BENCH_SET, rest)),
        "citus-migrate" => return Some(migrate(&crate::citus::CITUS_SET, rest)),
        "refinery-upgrade" => refinery_upgrade(rest),
        "refinery-serve" => refinery_serve(),
        _ => return None,
    };
    Some(match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("error: {error:#}");
            1
        }
    })
}

fn migrate(set: &'static MigrationSet, args: &[String]) -> i32 {
    match MigrateCommand::try_parse_from_args(args) {
        Ok(command) => Cli::new(Migrator::new(set)).run(&command).code(),
        Err(error) => {
            eprintln!("{error}");
            2
        }
    }
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| crate::DEFAULT_DATABASE_URL.to_owned())
}

/// A set as refinery takes it: `V{version}__{name}`, in one transaction each. Refinery cannot run a migration
/// outside a transaction, so the example set's one `CREATE INDEX CONCURRENTLY` is built plainly.
pub fn refinery_runner(set: Set) -> anyhow::Result<refinery::Runner> {
    let migrations: &MigrationSet = match set {
        Set::Bench => &BENCH_SET,
        Set::Example => &EXAMPLE_SET,
    };
    let migrations = migrations
        .iter()
        .map(|m| {
            let sql = m.up.sql.replace("-- migrate:no-transaction", "").replace("CONCURRENTLY ", "");
            refinery::Migration::unapplied(&format!("V{}__{}", m.version, m.name), &sql)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(refinery::Runner::new(&migrations))
}

fn refinery_upgrade(args: &[String]) -> anyhow::Result<()> {
    let [set, file, rest @ ..] = args else { anyhow::bail!("usage: refinery-upgrade SET SCHEMAS_FILE [--create]") };
    let create = rest.iter().any(|a| a == "--create");
    let runner = refinery_runner(set.parse()?)?;
    let schemas = std::fs::read_to_string(file).with_context(|| format!("read {file}"))?;
    let mut client = postgres::Client::connect(&database_url(), postgres::NoTls)?;
    for schema in schemas.lines().filter(|l| !l.is_empty()) {
        if create {
            client.batch_execute(&format!("CREATE SCHEMA \"{schema}\""))?;
        }
        client.batch_execute(&format!("SET search_path TO \"{schema}\""))?;
        runner.run(&mut client)?;
    }
    Ok(())
}

fn refinery_serve() -> anyhow::Result<()> {
    let schema = std::env::var("DEFAULT_SCHEMA_NAME").unwrap_or_else(|_| "dev".to_owned());
    let port: u16 = std::env::var("PORT").unwrap_or_else(|_| "8080".to_owned()).parse()?;
    let mut client = postgres::Client::connect(&database_url(), postgres::NoTls)?;
    client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""))?;
    refinery_runner(Set::Example)?.run(&mut client)?;
    drop(client);
    let mut app = postgres::Client::connect(&database_url(), postgres::NoTls)?;
    let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| anyhow::anyhow!("listen: {e}"))?;
    let bound = server.server_addr().to_ip().map_or(port, |a| a.port());
    eprintln!("listening on http://127.0.0.1:{bound}");
    for request in server.incoming_requests() {
        // The same work as app-example's /health: one transaction with search_path set, one query.
        let body = (|| -> anyhow::Result<String> {
            let mut tx = app.transaction()?;
            tx.batch_execute(&format!("SET LOCAL search_path TO \"{schema}\""))?;
            let row =
                tx.query_typed_one("SELECT current_schema(), (SELECT max(version) FROM refinery_schema_history)", &[])?;
            let version: Option<i32> = row.get(1);
            tx.commit()?;
            Ok(format!("{{\"status\":\"ok\",\"version\":{}}}", version.unwrap_or_default()))
        })();
        let response = match body {
            Ok(body) => tiny_http::Response::from_string(body),
            Err(e) => tiny_http::Response::from_string(format!("{e:#}")).with_status_code(500),
        };
        let _ = request.respond(response);
    }
    Ok(())
}
