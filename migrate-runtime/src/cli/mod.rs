//! The operator CLI: `reset`, `revision`, `upgrade`, `downgrade`, `current`, `history`, `status`, `repair`,
//! `resolve`, over one schema or many, as a clap subcommand a service mounts so that it operates on the service's
//! embedded set.
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
//! A command goes through three steps: clap parses it ([`args`]), [`Request::resolve`] checks and resolves every
//! flag once (databases, schemas, target, confirmation), and the request is executed, one schema at a time on a
//! pool of connections, each result rendered as it arrives. Exit codes are chosen in [`exit`].

mod args;
mod error;
pub mod exit;
mod render;
mod schemas;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

pub use args::{Command, Danger, Format, Limits, MigrateCommand, SchemaSelection};
pub use error::CliError;
pub use schemas::SelectionError;

use crate::database::Database;
use crate::fleet::{default_jobs, Fleet, Standing, Task};
use crate::inspect::{status_of, SchemaState, SchemaStatus};
use crate::migrator::Migrator;
use crate::plan::{Operation, Resolution};
use crate::report::Report as RunReport;
use crate::revision::write_revision;
use crate::schema::SchemaName;
use crate::target::Target;
use migrate_core::Direction;
use render::{chain, Progress, Report};
use schemas::{needs_catalog, select, Existing};

/// Environment variable holding the comma-separated protected schemas (default: `prod`).
pub const PROTECTED_SCHEMAS_ENV: &str = "MIGRATE_PROTECTED_SCHEMAS";

/// The CLI bound to a service's migrator.
#[derive(Debug, Clone)]
pub struct Cli<'s> {
    migrator: Migrator<'s>,
    protected: Vec<String>,
}

/// A command with every flag checked and resolved: what to do, to which schemas, on which databases.
struct Request<'c> {
    databases: Vec<Database>,
    /// How each database is named in output (`host:port/database`), never with its password.
    labels: Vec<String>,
    tasks: Vec<Task>,
    action: Action,
    command: &'c MigrateCommand,
}

/// What a resolved command does.
enum Action {
    /// Change schemas: apply, revert, reset, repair, resolve; or only show the plan.
    Change { operation: Operation, dry_run: bool },
    /// `history`.
    History,
    /// `current` (`full: false`) or `status`.
    Status { full: bool },
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

    /// Replace the protected schemas: `reset`, `downgrade` and `repair` on them ask for a typed confirmation on a
    /// terminal and refuse without `--yes` elsewhere.
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

    /// [`Cli::run`], writing what it would print on stdout to `out` (progress and errors still go to stderr).
    pub fn run_to(&self, command: &MigrateCommand, out: &mut dyn Write) -> i32 {
        match self.try_run(command, out) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {}", chain(&error));
                exit::code_of_cli(&error)
            }
        }
    }

    /// Resolve, then execute; the exit code sums up the schemas' outcomes.
    fn try_run(&self, command: &MigrateCommand, out: &mut dyn Write) -> Result<i32, CliError> {
        if let Command::Revision { message, migrations_dir } = &command.command {
            return self.revision(message, migrations_dir.as_deref(), command.format, out);
        }
        let request = self.resolve(command)?;
        if let Action::Change { dry_run: false, .. } = request.action {
            self.confirm(&request)?;
        }
        Ok(self.execute(&request, out))
    }

    /// Check and resolve every flag once: database URLs, the schema selection, the target.
    fn resolve<'c>(&self, command: &'c MigrateCommand) -> Result<Request<'c>, CliError> {
        let action = match &command.command {
            Command::Upgrade { target, danger } => Action::Change {
                operation: Operation::Upgrade(self.target(target, Direction::Up)?),
                dry_run: danger.dry_run,
            },
            Command::Downgrade { target, danger } => Action::Change {
                operation: Operation::Downgrade(self.target(target, Direction::Down)?),
                dry_run: danger.dry_run,
            },
            Command::Reset(danger) => Action::Change { operation: Operation::Reset, dry_run: danger.dry_run },
            Command::Repair(danger) => Action::Change { operation: Operation::Repair, dry_run: danger.dry_run },
            Command::Resolve { version, applied, .. } => {
                let resolution = if *applied { Resolution::Applied } else { Resolution::NotApplied };
                Action::Change { operation: Operation::Resolve { version: *version, resolution }, dry_run: false }
            }
            Command::History => Action::History,
            Command::Current => Action::Status { full: false },
            Command::Status => Action::Status { full: true },
            // `try_run` handles it: it touches no database.
            Command::Revision { .. } => unreachable!("revision is handled before resolving"),
        };
        let databases = command
            .database_url
            .iter()
            .enumerate()
            .map(|(i, url)| {
                url.parse::<Database>()
                    .map(|database| database.default_application_name(&program_name("migrate")))
                    .map_err(|source| CliError::BadDatabaseUrl { position: i + 1, source })
            })
            .collect::<Result<Vec<Database>, CliError>>()?;
        let labels: Vec<String> = databases.iter().map(ToString::to_string).collect();
        let mut tasks = Vec::new();
        for (index, database) in databases.iter().enumerate() {
            let schemas = self.select_schemas(&command.schemas, database, &labels[index])?;
            tasks.extend(schemas.into_iter().map(|schema| Task { database: index, schema }));
        }
        Ok(Request { databases, labels, tasks, action, command })
    }

    /// A target as `head`, `base`, a version, `+N`/`-N`, or the name of one of the binary's migrations, checked
    /// against the direction before any schema is touched.
    fn target(&self, text: &str, direction: Direction) -> Result<Target, CliError> {
        let target = match text.parse::<Target>() {
            Ok(target) => target,
            Err(invalid) => match self.migrator.set().iter().find(|m| m.name == text) {
                Some(migration) => Target::Version(migration.version),
                None => return Err(CliError::BadTarget { invalid }),
            },
        };
        if !target.goes(direction) {
            return Err(CliError::WrongDirection { target, direction });
        }
        Ok(target)
    }

    fn select_schemas(
        &self,
        selection: &SchemaSelection,
        database: &Database,
        label: &str,
    ) -> Result<Vec<SchemaName>, CliError> {
        let existing = if needs_catalog(selection) {
            let listing_failed = |source| CliError::ListSchemas { database: label.to_owned(), source };
            let mut client = database.connect().map_err(|e| listing_failed(SelectionError::Connect(e)))?;
            Existing::load(&mut client, self.migrator.history_table_name()).map_err(listing_failed)?
        } else {
            Existing::default()
        };
        select(selection, &existing).map_err(CliError::Selection)
    }

    /// Ask for a typed confirmation for each protected schema a destructive command would change, or refuse when
    /// there is no terminal to ask on.
    fn confirm(&self, request: &Request<'_>) -> Result<(), CliError> {
        let (verb, danger) = match &request.command.command {
            Command::Downgrade { danger, .. } => ("downgrade", danger),
            Command::Reset(danger) => ("reset", danger),
            Command::Repair(danger) => ("repair", danger),
            _ => return Ok(()),
        };
        if danger.yes {
            return Ok(());
        }
        let mut protected: Vec<&SchemaName> = request
            .tasks
            .iter()
            .map(|t| &t.schema)
            .filter(|s| self.protected.iter().any(|p| p == s.as_str()))
            .collect();
        protected.dedup();
        if protected.is_empty() {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            let schemas = protected.iter().map(|s| s.to_string()).collect();
            return Err(CliError::NotConfirmed { verb, schemas });
        }
        let stdin = std::io::stdin();
        for schema in protected {
            eprint!("schema {:?} is protected. Type its name to {verb} it: ", schema.as_str());
            let mut answer = String::new();
            if stdin.lock().read_line(&mut answer).is_err() || answer.trim_end_matches(['\n', '\r']) != schema.as_str()
            {
                return Err(CliError::ConfirmationMismatch { schema: schema.to_string() });
            }
        }
        Ok(())
    }

    /// Work on every schema of the request and render each result as it arrives; returns the exit code.
    fn execute(&self, request: &Request<'_>, out: &mut dyn Write) -> i32 {
        let command = request.command;
        let migrator = self.migrator_with(&command.limits);
        let fleet = Fleet::new(&migrator, request.databases.clone())
            .jobs(command.jobs.map_or_else(default_jobs, usize::from))
            .keep_going(command.keep_going);
        let tasks = &request.tasks;
        let databases = (request.labels.len() > 1).then_some(request.labels.as_slice());
        let mut report = Report::new(command.format, tasks.len(), databases);
        let mut progress = Progress::new(tasks.len());
        let not_started = match request.action {
            Action::History => {
                let not_started = fleet.for_each(
                    tasks,
                    |c, s| migrator.history(c, s.as_str()),
                    |i, r| progress.tick(|| report.history(i, &tasks[i], r)),
                );
                report.print_histories(out);
                not_started
            }
            Action::Status { full } => {
                // Schemas the survey finds at head or uninitialized need no connection of their own.
                let settled =
                    |standing: Standing| matches!(standing, Standing::Current { .. } | Standing::Uninitialized);
                let pending = survey(&fleet, tasks, settled, |i, standing| {
                    let status = match standing {
                        Standing::Current { version } => status_at(&migrator, &tasks[i].schema, version),
                        _ => status_of(tasks[i].schema.as_str(), migrator.set(), None),
                    };
                    progress.tick(|| report.status(i, &tasks[i], Ok(status)));
                });
                let subset: Vec<Task> = pending.iter().map(|&i| tasks[i].clone()).collect();
                let not_started = fleet.for_each(
                    &subset,
                    |c, s| migrator.status(c, s.as_str()),
                    |i, r| progress.tick(|| report.status(pending[i], &tasks[pending[i]], r)),
                );
                report.print_statuses(out, full);
                not_started
            }
            Action::Change { operation, dry_run: true } => fleet.for_each(
                tasks,
                |c, s| migrator.dry_run(c, s.as_str(), operation),
                |i, r| progress.tick(|| report.preview(out, i, &tasks[i], r)),
            ),
            Action::Change { operation, dry_run: false } => {
                // Only an upgrade to head can trust the survey: every other target needs each schema's plan.
                let pending = if operation == Operation::Upgrade(Target::Head) {
                    survey(&fleet, tasks, Standing::is_current, |i, standing| {
                        if let Standing::Current { version } = standing {
                            let unchanged = RunReport {
                                schema: tasks[i].schema.to_string(),
                                version_before: version,
                                version_after: version,
                                steps: Vec::new(),
                                fixes: Vec::new(),
                            };
                            progress.tick(|| report.change(out, i, &tasks[i], Ok(unchanged)));
                        }
                    })
                } else {
                    (0..tasks.len()).collect()
                };
                let subset: Vec<Task> = pending.iter().map(|&i| tasks[i].clone()).collect();
                fleet.for_each(
                    &subset,
                    |c, s| migrator.run(c, s.as_str(), operation),
                    |i, r| progress.tick(|| report.change(out, pending[i], &tasks[pending[i]], r)),
                )
            }
        };
        progress.finish();
        report.finish(out, not_started)
    }

    /// The service's migrator with the command line's limits and planner options on top.
    fn migrator_with(&self, limits: &Limits) -> Migrator<'s> {
        // An operator watching the command sees who it waits for.
        let mut migrator = self.migrator.clone().on_wait(|waiting| eprintln!("{waiting}"));
        if limits.lock_timeout.is_some() {
            migrator = migrator.lock_timeout(limits.lock_timeout);
        }
        if limits.statement_timeout.is_some() {
            migrator = migrator.statement_timeout(limits.statement_timeout);
        }
        if let Some(wait) = limits.lock_wait {
            migrator = migrator.lock_wait(wait);
        }
        if limits.allow_out_of_order {
            migrator = migrator.allow_out_of_order(true);
        }
        if limits.allow_missing {
            migrator = migrator.allow_missing(true);
        }
        migrator
    }

    fn revision(
        &self,
        message: &str,
        folder: Option<&Path>,
        format: Format,
        out: &mut dyn Write,
    ) -> Result<i32, CliError> {
        let folder = folder.or_else(|| self.migrator.set().source_folder()).ok_or(CliError::NoSourceFolder)?;
        let revision = write_revision(folder, message)?;
        match format {
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
        }
        .map_err(CliError::Output)?;
        Ok(exit::SUCCESS)
    }
}

/// `{binary} {what}`: how this process's connections name themselves.
fn program_name(what: &str) -> String {
    let program = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    format!("{} {what}", program.as_deref().unwrap_or("service"))
}

/// Survey each database's tasks in two round trips; `settled` standings are handed to `on_settled` and need no
/// connection of their own; the indices of the rest are returned. A database whose survey fails keeps all its
/// tasks, so the per-schema path reports the error.
fn survey(
    fleet: &Fleet<'_>,
    tasks: &[Task],
    settled: impl Fn(Standing) -> bool,
    mut on_settled: impl FnMut(usize, Standing),
) -> Vec<usize> {
    let mut rest = Vec::new();
    for database in 0..fleet.databases().len() {
        let indices: Vec<usize> = (0..tasks.len()).filter(|&i| tasks[i].database == database).collect();
        let schemas: Vec<SchemaName> = indices.iter().map(|&i| tasks[i].schema.clone()).collect();
        match fleet.survey(database, &schemas) {
            Ok(standings) => {
                for (&i, standing) in indices.iter().zip(standings) {
                    if settled(standing) {
                        on_settled(i, standing);
                    } else {
                        rest.push(i);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %chain(&error), "survey failed; checking schemas one by one");
                rest.extend(indices);
            }
        }
    }
    rest
}

/// A schema at the binary's head, as the survey found it.
fn status_at(migrator: &Migrator<'_>, schema: &SchemaName, version: Option<i64>) -> SchemaStatus {
    let current = version.map(|v| (v, migrator.set().get(v).map(|m| m.name.to_string()).unwrap_or_default()));
    SchemaStatus {
        schema: schema.to_string(),
        current,
        head: migrator.set().head(),
        pending: 0,
        state: SchemaState::AtHead,
        problem: None,
    }
}
