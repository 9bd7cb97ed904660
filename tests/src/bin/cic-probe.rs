//! A third service binary for the crash tests: the operator CLI over `tests/fixtures/crash_cic` (a table, two
//! `CREATE INDEX CONCURRENTLY` in a no-transaction migration, a transactional one after them, and a no-transaction
//! migration with a statement a test can hold open), so a run can be killed in the middle of an index build.

use migrate_cli::{Cli, MigrateCommand};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator};

static MIGRATIONS: MigrationSet = embed_migrations!("fixtures/crash_cic");

fn main() {
    let command = match MigrateCommand::try_parse_from_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(error) => error.exit(),
    };
    std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code());
}
