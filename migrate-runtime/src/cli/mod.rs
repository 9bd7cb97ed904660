//! The operator CLI: `reset`, `revision`, `upgrade`, `downgrade`, `current`, `history`, `status`, over one
//! schema or many, as a clap subcommand a service mounts so that it operates on the service's embedded set.
//!
//! ```no_run
//! use clap::Parser;
//! use migrate_runtime::cli::{Cli, MigrateCommand};
//! use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
//!
//! static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
//!
//! #[derive(Parser)]
//! enum App {
//!     /// Serve HTTP.
//!     Serve,
//!     /// Manage the database schemas.
//!     Migrate(MigrateCommand),
//! }
//!
//! match App::parse() {
//!     App::Serve => { /* ... */ }
//!     App::Migrate(command) => std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command)),
//! }
//! ```
//!
//! Exit codes are in [`exit`].

mod args;
pub mod exit;
mod fanout;
mod render;
mod schemas;

use std::io::{BufRead, IsTerminal, Write};

pub use args::{Command, Danger, Format, MigrateCommand, SchemaSelection};

use crate::{write_revision, Migrator, Operation, SchemaName, Target};
use fanout::FanOut;
use render::{Progress, Report};
use schemas::{needs_catalog, select, Existing, SelectionError};

/// Environment variable holding the comma-separated protected schemas (default: `prod`).
pub const PROTECTED_SCHEMAS_ENV: &str = "MIGRATE_PROTECTED_SCHEMAS";

/// The CLI bound to a service's migrator.
#[derive(Debug, Clone)]
pub struct Cli<'s> {
    migrator: Migrator<'s>,
    protected: Vec<String>,
}

impl<'s> Cli<'s> {
    /// A CLI over `migrator`. Protected schemas come from `MIGRATE_PROTECTED_SCHEMAS`, else `prod`.
    pub fn new(migrator: Migrator<'s>) -> Cli<'s> {
        let protected = match std::env::var(PROTECTED_SCHEMAS_ENV) {
            Ok(list) => list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            Err(_) => vec!["prod".to_owned()],
        };
        Cli { migrator, protected }
    }

    /// Replace the protected schemas: `reset` and `downgrade` on them ask for a typed confirmation on a terminal
    /// and refuse without `--yes` elsewhere.
    ///
    /// ```
    /// # use migrate_runtime::{cli::Cli, MigrationSet, Migrator};
    /// # static SET: MigrationSet = MigrationSet::from_static(&[], "");
    /// let cli = Cli::new(Migrator::new(&SET)).protected_schemas(["prod", "prod-eu"]);
    /// ```
    pub fn protected_schemas<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Cli<'s> {
        self.protected = names.into_iter().map(Into::into).collect();
        self
    }

    /// Run `command`, printing to stdout and stderr; returns the process exit code (see [`exit`]).
    pub fn run(&self, command: &MigrateCommand) -> i32 {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let code = self.run_to(command, &mut out);
        let _ = out.flush();
        code
    }

    fn run_to(&self, command: &MigrateCommand, out: &mut dyn Write) -> i32 {
        if let Command::Revision { message, migrations_dir } = &command.command {
            return self.revision(message, migrations_dir.as_deref(), command.format, out);
        }
        let config: postgres::Config = match command.database_url.parse() {
            Ok(config) => config,
            // The URL may hold a password: never echo it.
            Err(e) => return fail(exit::USAGE, &format!("the database URL is not a valid connection string: {e}")),
        };
        let schemas = match self.select_schemas(command, &config) {
            Ok(schemas) => schemas,
            Err(SelectionError::Database(e)) => return fail(exit::FAILURE, &render::chain(&SelectionError::Database(e))),
            Err(e) => return fail(exit::USAGE, &render::chain(&e)),
        };
        let fan = FanOut {
            config: &config,
            jobs: command.jobs.map_or_else(fanout::default_jobs, usize::from),
            keep_going: command.keep_going,
        };
        let operation = match &command.command {
            Command::Upgrade { target, danger } => match self.target(target) {
                Ok(target) => Some((Operation::Upgrade(target), danger.dry_run, None)),
                Err(code) => return code,
            },
            Command::Downgrade { target, danger } => match self.target(target) {
                Ok(target) => Some((Operation::Downgrade(target), danger.dry_run, Some(("downgrade", danger)))),
                Err(code) => return code,
            },
            Command::Reset(danger) => Some((Operation::Reset, danger.dry_run, Some(("reset", danger)))),
            _ => None,
        };
        if let Some((operation, dry_run, danger)) = operation {
            if let Some((verb, danger)) = danger {
                if let Err(code) = self.confirm(verb, &schemas, danger) {
                    return code;
                }
            }
            let mut report = Report::new(command.format, schemas.len());
            let mut progress = Progress::new(schemas.len());
            let skipped = if dry_run {
                fan.run(&schemas, |c, s| self.migrator.dry_run(c, s.as_str(), operation), |i, s, r| {
                    progress.tick(|| report.preview(out, i, s, r))
                })
            } else {
                fan.run(&schemas, |c, s| self.migrator.run(c, s.as_str(), operation), |i, s, r| {
                    progress.tick(|| report.change(out, i, s, r))
                })
            };
            progress.finish();
            return report.finish(out, skipped);
        }
        let mut report = Report::new(command.format, schemas.len());
        let mut progress = Progress::new(schemas.len());
        let skipped = match &command.command {
            Command::History => fan.run(&schemas, |c, s| self.migrator.history(c, s.as_str()), |i, s, r| {
                progress.tick(|| report.history(i, s, r))
            }),
            Command::Current | Command::Status => fan.run(&schemas, |c, s| self.migrator.status(c, s.as_str()), |i, s, r| {
                progress.tick(|| report.status(i, s, r))
            }),
            _ => 0,
        };
        progress.finish();
        match &command.command {
            Command::History => report.print_histories(out),
            Command::Current => report.print_statuses(out, false),
            _ => report.print_statuses(out, true),
        }
        report.finish(out, skipped)
    }

    /// A target as `head`, `base`, a version, `+N`/`-N`, or the name of one of the binary's migrations.
    fn target(&self, text: &str) -> Result<Target, i32> {
        match text.parse::<Target>() {
            Ok(target) => Ok(target),
            Err(invalid) => match self.migrator.set().iter().find(|m| m.name == text) {
                Some(migration) => Ok(Target::Version(migration.version)),
                None => Err(fail(exit::USAGE, &format!("{invalid}, or the name of one of this binary's migrations"))),
            },
        }
    }

    fn select_schemas(&self, command: &MigrateCommand, config: &postgres::Config) -> Result<Vec<SchemaName>, SelectionError> {
        let existing = if needs_catalog(&command.schemas) {
            let mut client = config.connect(postgres::NoTls).map_err(SelectionError::Database)?;
            Existing::load(&mut client, self.migrator.history_table_name())?
        } else {
            Existing::default()
        };
        select(&command.schemas, &existing)
    }

    /// Ask for a typed confirmation for each protected schema, or refuse when there is no terminal to ask on.
    fn confirm(&self, verb: &str, schemas: &[SchemaName], danger: &Danger) -> Result<(), i32> {
        if danger.dry_run || danger.yes {
            return Ok(());
        }
        let protected: Vec<&SchemaName> = schemas.iter().filter(|s| self.protected.iter().any(|p| p == s.as_str())).collect();
        if protected.is_empty() {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            let names: Vec<String> = protected.iter().map(|s| format!("{:?}", s.as_str())).collect();
            return Err(fail(
                exit::REFUSED,
                &format!(
                    "refusing to {verb} protected schema {} without confirmation: pass --yes (or --auto-confirm) when \
                     not running on a terminal; nothing was changed",
                    names.join(", ")
                ),
            ));
        }
        let stdin = std::io::stdin();
        for schema in protected {
            eprint!("schema {:?} is protected. Type its name to {verb} it: ", schema.as_str());
            let mut answer = String::new();
            if stdin.lock().read_line(&mut answer).is_err() || answer.trim_end_matches(['\n', '\r']) != schema.as_str() {
                return Err(fail(exit::REFUSED, "confirmation did not match; nothing was changed"));
            }
        }
        Ok(())
    }

    fn revision(&self, message: &str, folder: Option<&std::path::Path>, format: Format, out: &mut dyn Write) -> i32 {
        let Some(folder) = folder.or_else(|| self.migrator.set().source_folder()) else {
            return fail(exit::FAILURE, "this migration set was not built from a folder: pass --migrations-dir");
        };
        match write_revision(folder, message) {
            Ok(revision) => {
                let written = match format {
                    Format::Json => writeln!(
                        out,
                        "{}",
                        serde_json::json!({ "version": revision.version, "up": revision.up, "down": revision.down })
                    ),
                    Format::Table => writeln!(
                        out,
                        "created {}\ncreated {}\nrebuild the service to embed them",
                        revision.up.display(),
                        revision.down.display()
                    ),
                };
                if written.is_err() { exit::FAILURE } else { exit::SUCCESS }
            }
            Err(e) => fail(exit::FAILURE, &render::chain(&e)),
        }
    }
}

/// Print an error to stderr and return its exit code.
fn fail(code: i32, message: &str) -> i32 {
    eprintln!("error: {message}");
    code
}
