//! A second service binary for the fault tests: the operator CLI over `bench/migrations` (13 migrations, all
//! transactional), so a fan-out can be killed at any point and every schema must come out whole.

use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator};

static MIGRATIONS: MigrationSet = embed_migrations!("../bench/migrations");

fn main() {
    let command = match MigrateCommand::try_parse_from_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => error.exit(),
    };
    std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code());
}
