//! A service binary for the shared-schema tests: the operator CLI over `tests/fixtures/shared_trgm`, a diesel
//! folder whose index uses `gin_trgm_ops` from `pg_trgm`, installed once in a shared schema.

use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator};

static MIGRATIONS: MigrationSet = embed_migrations!("fixtures/shared_trgm");

fn main() {
    let command = match MigrateCommand::try_parse_from_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => error.exit(),
    };
    std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code());
}
