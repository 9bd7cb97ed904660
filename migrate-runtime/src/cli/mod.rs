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
mod render;
mod schemas;

use std::io::{BufRead, IsTerminal, Write};

pub use args::{Command, Danger, Format, Limits, MigrateCommand, SchemaSelection};

use crate::fleet::default_jobs as migrate_runtime_default_jobs;
use crate::{
    status_of, write_revision, Database, Fleet, Migrator, Operation, Report as RunReport, Resolution, SchemaName,
    SchemaState, SchemaStatus, Standing, Target, Task,
};
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

    /// [`Cli::run`], writing what it would print on stdout to `out` (progress and errors still go to stderr).
    pub fn run_to(&self, command: &MigrateCommand, out: &mut dyn Write) -> i32 {
        if let Command::Revision { message, migrations_dir } = &command.command {
            return self.revision(message, migrations_dir.as_deref(), command.format, out);
        }
        let mut configs = Vec::with_capacity(command.database_url.len());
        for (i, url) in command.database_url.iter().enumerate() {
            match url.parse::<Database>() {
                Ok(config) => configs.push(config),
                // The URL may hold a password: never echo it.
                Err(e) => return fail(exit::USAGE, &format!("database URL #{}: {}", i + 1, render::chain(&e))),
            }
        }
        let labels: Vec<String> = configs.iter().map(ToString::to_string).collect();
        let mut tasks = Vec::new();
        for (database, config) in configs.iter().enumerate() {
            match self.select_schemas(command, config) {
                Ok(schemas) => tasks.extend(schemas.into_iter().map(|schema| Task { database, schema })),
                Err(e @ (SelectionError::Connect(_) | SelectionError::Database(_))) => {
                    return fail(exit::FAILURE, &format!("{}: {}", labels[database], render::chain(&e)))
                }
                Err(e) => return fail(exit::USAGE, &render::chain(&e)),
            }
        }
        let migrator = self.migrator_with(&command.limits);
        let fleet = Fleet::new(&migrator, configs)
            .jobs(command.jobs.map_or_else(migrate_runtime_default_jobs, usize::from))
            .keep_going(command.keep_going);
        let databases = (labels.len() > 1).then_some(labels.as_slice());
        let mut report = Report::new(command.format, tasks.len(), databases);
        let mut progress = Progress::new(tasks.len());

        let operation = match &command.command {
            Command::Upgrade { target, danger } => (self.target(target, true).map(Operation::Upgrade), danger, None),
            Command::Downgrade { target, danger } => {
                (self.target(target, false).map(Operation::Downgrade), danger, Some("downgrade"))
            }
            Command::Reset(danger) => (Ok(Operation::Reset), danger, Some("reset")),
            Command::Repair(danger) => (Ok(Operation::Repair), danger, Some("repair")),
            Command::Resolve { version, applied, .. } => {
                let resolution = if *applied { Resolution::Applied } else { Resolution::NotApplied };
                (Ok(Operation::Resolve { version: *version, resolution }), &NO_DANGER, None)
            }
            Command::History => {
                let not_started = fleet.for_each(
                    &tasks,
                    |c, s| migrator.history(c, s.as_str()),
                    |i, r| progress.tick(|| report.history(i, &tasks[i], r)),
                );
                progress.finish();
                report.print_histories(out);
                return report.finish(out, not_started);
            }
            Command::Current | Command::Status => {
                let pending = self.survey(
                    &fleet,
                    &tasks,
                    |i, standing| {
                        let status = match standing {
                            Standing::Current { version } => status_at(&migrator, &tasks[i].schema, version),
                            _ => status_of(tasks[i].schema.as_str(), migrator.set(), None),
                        };
                        progress.tick(|| report.status(i, &tasks[i], Ok(status)));
                    },
                    |standing| matches!(standing, Standing::Current { .. } | Standing::Uninitialized),
                );
                let subset: Vec<Task> = pending.iter().map(|&i| tasks[i].clone()).collect();
                let not_started = fleet.for_each(
                    &subset,
                    |c, s| migrator.status(c, s.as_str()),
                    |i, r| progress.tick(|| report.status(pending[i], &tasks[pending[i]], r)),
                );
                progress.finish();
                report.print_statuses(out, matches!(command.command, Command::Status));
                return report.finish(out, not_started);
            }
            // Handled at the top: it touches no database.
            Command::Revision { .. } => return exit::SUCCESS,
        };
        let (operation, danger, verb) = operation;
        let operation = match operation {
            Ok(operation) => operation,
            Err(code) => return code,
        };
        if let Some(verb) = verb {
            if let Err(code) = self.confirm(verb, &tasks, danger) {
                return code;
            }
        }
        let not_started = if danger.dry_run {
            fleet.for_each(
                &tasks,
                |c, s| migrator.dry_run(c, s.as_str(), operation),
                |i, r| progress.tick(|| report.preview(out, i, &tasks[i], r)),
            )
        } else {
            // Only an upgrade to head can trust the survey: every other target needs each schema's plan.
            let pending = if operation == Operation::Upgrade(Target::Head) {
                self.survey(
                    &fleet,
                    &tasks,
                    |i, standing| {
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
                    },
                    |standing| standing.is_current(),
                )
            } else {
                (0..tasks.len()).collect()
            };
            let subset: Vec<Task> = pending.iter().map(|&i| tasks[i].clone()).collect();
            fleet.for_each(
                &subset,
                |c, s| migrator.run(c, s.as_str(), operation),
                |i, r| progress.tick(|| report.change(out, pending[i], &tasks[pending[i]], r)),
            )
        };
        progress.finish();
        report.finish(out, not_started)
    }

    /// The service's migrator with the command line's limits and planner options on top.
    fn migrator_with(&self, limits: &Limits) -> Migrator<'s> {
        let mut migrator = self.migrator.clone();
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

    /// Survey each database's tasks in two round trips; `settled` standings are handed to `on_settled` and need
    /// no connection of their own; the rest are returned. A database whose survey fails keeps all its tasks, so
    /// the per-schema path reports the error.
    fn survey(
        &self,
        fleet: &Fleet<'_>,
        tasks: &[Task],
        mut on_settled: impl FnMut(usize, Standing),
        settled: impl Fn(Standing) -> bool,
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
                    tracing::warn!(error = %render::chain(&error), "survey failed; checking schemas one by one");
                    rest.extend(indices);
                }
            }
        }
        rest
    }

    /// A target as `head`, `base`, a version, `+N`/`-N`, or the name of one of the binary's migrations, checked
    /// against the direction before any schema is touched.
    fn target(&self, text: &str, upgrade: bool) -> Result<Target, i32> {
        match text.parse::<Target>() {
            Ok(target @ (Target::Base | Target::Relative(..=-1))) if upgrade => Err(fail(
                exit::USAGE,
                &format!("cannot upgrade to `{target}`: use head, a version or +N (downgrade goes down)"),
            )),
            Ok(target @ (Target::Head | Target::Relative(1..))) if !upgrade => Err(fail(
                exit::USAGE,
                &format!("cannot downgrade to `{target}`: use base, a version or -N (upgrade goes up)"),
            )),
            Ok(target) => Ok(target),
            Err(invalid) => match self.migrator.set().iter().find(|m| m.name == text) {
                Some(migration) => Ok(Target::Version(migration.version)),
                None => Err(fail(exit::USAGE, &format!("{invalid}, or the name of one of this binary's migrations"))),
            },
        }
    }

    fn select_schemas(&self, command: &MigrateCommand, database: &Database) -> Result<Vec<SchemaName>, SelectionError> {
        let existing = if needs_catalog(&command.schemas) {
            let mut client = database.connect().map_err(SelectionError::Connect)?;
            Existing::load(&mut client, self.migrator.history_table_name())?
        } else {
            Existing::default()
        };
        select(&command.schemas, &existing)
    }

    /// Ask for a typed confirmation for each protected schema, or refuse when there is no terminal to ask on.
    fn confirm(&self, verb: &str, tasks: &[Task], danger: &Danger) -> Result<(), i32> {
        if danger.dry_run || danger.yes {
            return Ok(());
        }
        let mut protected: Vec<&SchemaName> =
            tasks.iter().map(|t| &t.schema).filter(|s| self.protected.iter().any(|p| p == s.as_str())).collect();
        protected.dedup();
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
            if stdin.lock().read_line(&mut answer).is_err() || answer.trim_end_matches(['\n', '\r']) != schema.as_str()
            {
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
                if written.is_err() {
                    exit::FAILURE
                } else {
                    exit::SUCCESS
                }
            }
            Err(e) => fail(exit::FAILURE, &render::chain(&e)),
        }
    }
}

/// `resolve` neither dry-runs nor asks.
const NO_DANGER: Danger = Danger { dry_run: false, yes: false };

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

/// Print an error to stderr and return its exit code.
fn fail(code: i32, message: &str) -> i32 {
    eprintln!("error: {message}");
    code
}
