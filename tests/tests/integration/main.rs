//! The integration tests, one binary: the runtime, the CLI and the macro against the real server.
//!
//! Shared helpers live in this crate's library (`src/lib.rs`); what needs this binary's own build (the path of the
//! `fleet-probe` binary) lives here.

// `migrate_runtime::Error` is large on purpose (see its crate): threads return it once.
#![allow(clippy::result_large_err)]

mod adopt;
mod app_schema;
mod autogenerate;
mod citus;
mod compile_fail;
mod crash_resume;
mod drivers;
mod faults;
mod hostile;
mod layouts;
mod lock_timeouts;
mod migrate;
mod pooled_fleet;
mod privileges;
mod rebuild;
mod server_restart;
mod shared_search_path;
mod structure;
mod template;
mod tls;

/// A table, then a no-transaction migration of two concurrent index builds whose second fails at line 3, column 48
/// (`WITH nonsense`): the first build is kept when it runs outside any transaction.
pub fn failing_concurrent_indexes() -> migrate_runtime::MigrationSet {
    integration_tests::set(vec![
        integration_tests::migration(1, "t", "CREATE TABLE t (id int);", None),
        integration_tests::migration(
            2,
            "idx",
            "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nCREATE INDEX CONCURRENTLY t_bad ON t (id) WITH nonsense;\n",
            None,
        ),
    ])
}

/// `fleet-probe ARGS` (the second service binary, over `bench/migrations`) against the test server.
pub fn probe(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fleet-probe"));
    command.args(args).env("DATABASE_URL", integration_tests::database_url()).env_remove("DEFAULT_SCHEMA_NAME");
    command
}
