//! A service binary for the Citus tests: the operator CLI over `tests/fixtures/citus` (a set Citus accepts in a
//! distributed schema: tables with a foreign key, a no-transaction `CREATE INDEX CONCURRENTLY`, a named check, seed
//! rows and a view, each with its down file), run as a process by the tests that race replicas and fan out.

use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator};

static MIGRATIONS: MigrationSet = embed_migrations!("fixtures/citus");

fn main() {
    let command = match MigrateCommand::try_parse_from_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => error.exit(),
    };
    std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code());
}
