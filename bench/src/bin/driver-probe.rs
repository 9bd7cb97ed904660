//! A service's migration step on one driver, as a process: connect once with the driver, migrate every schema
//! listed in the file (one per line) to the newest version of the example service's set (`migrations/`), in order,
//! exit 0; on any error, a message on stderr and exit 1. `bench drivers` times it exec to exit: with one
//! up-to-date schema in the file it is an up-to-date boot, with 200 a no-op over 200 schemas.
//!
//! ```sh
//! cargo run --release -p bench --bin driver-probe -- --driver diesel --database-url URL --schemas-file F
//! ```

#[path = "../drive.rs"]
mod drive;

use anyhow::Context;
use clap::Parser;
use migrate_runtime::MigrationSet;

use drive::{Connection, Driver};

static SET: MigrationSet = migrate_runtime::embed_migrations!("../migrations");

#[derive(Debug, Parser)]
#[command(about = "Connect once with a driver and migrate every schema listed in a file")]
struct Args {
    #[arg(long, value_enum)]
    driver: Driver,
    #[arg(long)]
    database_url: String,
    /// One schema a line; blank lines are skipped.
    #[arg(long)]
    schemas_file: std::path::PathBuf,
}

fn main() {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not errors; a bad command line is exit 1 like any other failure.
            std::process::exit(if error.use_stderr() { 1 } else { 0 });
        }
    };
    if let Err(error) = run(&args) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let path = &args.schemas_file;
    let text = std::fs::read_to_string(path).with_context(|| format!("read the schemas file {}", path.display()))?;
    let schemas: Vec<String> = text.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect();
    anyhow::ensure!(!schemas.is_empty(), "the schemas file {} lists no schema", path.display());
    Connection::open(args.driver, &args.database_url)?.migrate_all(&SET, &schemas)
}
