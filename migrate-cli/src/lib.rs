//! The operator CLI: `reset`, `revision`, `upgrade`, `downgrade`, `current`, `history`, `status`, `repair`,
//! `resolve`, `verify`, over one schema or many, and `diff` of two schemas, as a clap subcommand a service mounts
//! so that it operates on the service's embedded set.
//!
//! ```no_run
//! use clap::Parser;
//! use migrate_cli::{Cli, MigrateCommand};
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
//!     App::Migrate(command) => std::process::exit(Cli::new(Migrator::new(&MIGRATIONS)).run(&command).code()),
//! }
//! ```
//!
//! A command goes through three steps: clap parses it ([`MigrateCommand`]), `Cli::resolve` checks and resolves every
//! flag once (databases, schemas, target, confirmation), and the request is executed, one schema at a time on a
//! pool of connections, each result rendered as it arrives. Exit codes are chosen in [`exit`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![allow(clippy::result_large_err)]

mod advice;
mod args;
mod error;
pub mod exit;
mod interrupt;
mod render;
mod schemas;
mod verb;

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

pub use advice::{advice, refusal_advice};
pub use args::{
    AllowMissing, Change, Command, Common, Connection, Danger, DiffArgs, DowngradeArgs, Format, FromTool, Limits,
    MigrateCommand, Names, Output, Planner, ResolveArgs, RevisionArgs, SchemaSelection, StatusArgs, UpgradeArgs,
    Workers, DEFAULT_DATABASE_URL,
};
pub use error::{CliError, MissingSchema};
pub use exit::ExitCode;
pub use schemas::SelectionError;
pub use verb::Verb;

use advice::chain;
use migrate_core::Direction;
use migrate_ops::{
    autogenerate, check_folder_matches, default_jobs, diff_schemas, generate, read_structures, status_of,
    write_revision, write_revision_text, Desired, Error, Fleet, GenerateError, Generated, Inspect, LastFailure,
    Qualifier, Rename, RevisionText, Rollout, SchemaState, SchemaStatus, Source, Standing, Stop, StructureError, Task,
    Template, TemplateError,
};
use migrate_runtime::{
    validate_identifier, Database, Migrator, Operation, Report as RunReport, Resolution, SchemaName, Target,
};
use render::json::{DiffDocument, ErrorDocument, RevisionDocument};
use render::{Mode, Progress, Report};
use schemas::{glob_match, needs_catalog, select, Existing};

/// Environment variable holding the protected schemas, comma-separated names or globs (`prod,tenant-*`);
/// `prod` when it is not set, none when it is set empty.
pub const PROTECTED_SCHEMAS_ENV: &str = "MIGRATE_PROTECTED_SCHEMAS";

/// The CLI bound to a service's migrator.
#[derive(Debug, Clone)]
pub struct Cli<'s> {
    migrator: Migrator<'s>,
    protected: Vec<String>,
    /// `protected` is the default (`prod`): neither the variable nor the service set it.
    default_protection: bool,
}

/// A command with every flag checked and resolved: what to do, to which schemas, on which databases.
struct Request<'c> {
    databases: Vec<Database>,
    /// How each database is named in output (`host:port/database`), never with its password.
    labels: Vec<String>,
    tasks: Vec<Task>,
    action: Action,
    command: &'c MigrateCommand,
    common: &'c Common,
    /// Said on stderr before the work starts (schemas included by `--all-schemas` without a service marker).
    notes: Vec<String>,
    /// Each database's schemas, when they were listed (a change lists them, to check the protected patterns).
    existing: Vec<Option<Vec<String>>>,
    /// The database URL is the built-in default: neither `--database-url` nor `DATABASE_URL` was given.
    default_database: bool,
}

/// What a resolved command does.
enum Action {
    /// Change schemas: apply, revert, reset, repair, resolve; or only show the plan. `create`: schemas that do not
    /// exist may be created (reset, `upgrade --create`).
    Change { operation: Operation, dry_run: bool, create: bool },
    /// `history`.
    History,
    /// `current` (`full: false`) or `status`; `only_problems`: list only the schemas that need a look.
    Status { full: bool, only_problems: bool },
    /// `verify`: each schema's structure against what its applied migrations build.
    Verify,
}

impl<'s> Cli<'s> {
    /// A CLI over `migrator`. Protected schemas come from `MIGRATE_PROTECTED_SCHEMAS` (names or globs), else
    /// `prod`.
    pub fn new(migrator: Migrator<'s>) -> Cli<'s> {
        let (protected, default_protection) = match std::env::var(PROTECTED_SCHEMAS_ENV) {
            Ok(list) => (list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(), false),
            Err(_) => (vec!["prod".to_owned()], true),
        };
        Cli { migrator, protected, default_protection }
    }

    /// Replace the protected schemas (names or globs: `prod`, `tenant-*`): every command that would change one of
    /// them (upgrade, downgrade, reset, repair, resolve) asks for its name on a terminal, and refuses without
    /// `--yes` elsewhere. Dry runs never ask.
    ///
    /// ```
    /// # use migrate_cli::Cli;
    /// # use migrate_runtime::{MigrationSet, Migrator};
    /// # static SET: MigrationSet = MigrationSet::from_static(&[], "");
    /// let cli = Cli::new(Migrator::new(&SET)).protected_schemas(["prod", "prod-*"]);
    /// ```
    pub fn protected_schemas<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Cli<'s> {
        self.protected = names.into_iter().map(Into::into).collect();
        self.default_protection = false;
        self
    }

    /// Run `command`, printing to stdout and stderr; returns the exit code (see [`exit`]): `.code()` for
    /// `std::process::exit`, or return it from `main` as a `std::process::ExitCode`.
    pub fn run(&self, command: &MigrateCommand) -> ExitCode {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let code = self.run_to(command, &mut out);
        let _ = out.flush();
        code
    }

    /// [`Cli::run`], writing what it would print on stdout to `out` (progress and errors still go to stderr).
    pub fn run_to(&self, command: &MigrateCommand, out: &mut dyn Write) -> ExitCode {
        match self.try_run(command, out) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {}", chain(&error));
                // Scripts get one document whatever happened.
                if command.format() == Format::Json {
                    let _ = writeln!(out, "{}", render::json::print(&ErrorDocument::of(&error)));
                }
                exit::code_of_cli(&error)
            }
        }
    }

    /// Resolve, then execute; the exit code sums up the schemas' outcomes.
    fn try_run(&self, command: &MigrateCommand, out: &mut dyn Write) -> Result<ExitCode, CliError> {
        // The command's own migrator, its names checked before any database is touched; everything below uses it.
        let cli = Cli { migrator: self.migrator_with(command)?, ..self.clone() };
        if let Command::Diff(args) = &command.command {
            return cli.diff(args, out);
        }
        let Command::Revision(revision) = &command.command else {
            let request = cli.resolve(command)?;
            for note in &request.notes {
                eprintln!("note: {note}");
            }
            cli.confirm(&request)?;
            for note in cli.run_notes(&request) {
                eprintln!("note: {note}");
            }
            cli.create_from_template(&request)?;
            return Ok(cli.execute(&request, out));
        };
        cli.revision(revision, out)
    }

    /// Check and resolve every flag once: database URLs, the schema selection, the target; and, for a command
    /// that does not create schemas, refuse when a selected schema does not exist, before touching any.
    fn resolve<'c>(&self, command: &'c MigrateCommand) -> Result<Request<'c>, CliError> {
        let (action, common) = self.action(command)?;
        let databases = common
            .connection
            .urls()
            .iter()
            .enumerate()
            .map(|(i, url)| parse_database(url, i + 1))
            .collect::<Result<Vec<Database>, CliError>>()?;
        let labels: Vec<String> = databases.iter().map(ToString::to_string).collect();
        let must_exist = match action {
            Action::Change { operation, create, .. } => (!create).then_some(Verb::Change(operation)),
            // A typo would otherwise read as `not migrated`, a pass, or as an empty schema.
            Action::Verify => Some(Verb::Verify),
            Action::Status { .. } => Some(Verb::Status),
            Action::History => Some(Verb::History),
        };
        let (mut tasks, mut notes, mut missing, mut existing) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (index, database) in databases.iter().enumerate() {
            let label = (databases.len() > 1).then(|| labels[index].as_str());
            let list = must_exist.is_some() || matches!(action, Action::Change { dry_run: false, .. });
            let selected = self.select(database, &labels[index], label, &common.schemas, must_exist.is_some(), list)?;
            existing.push(selected.existing);
            notes.extend(selected.note);
            missing.extend(selected.missing);
            tasks.extend(selected.schemas.into_iter().map(|schema| Task { database: index, schema }));
        }
        if let (Some(verb), false) = (must_exist, missing.is_empty()) {
            return Err(CliError::MissingSchemas { verb, missing });
        }
        if let Command::Upgrade(args) = &command.command {
            // A named canary must be selected: checked before any schema is touched.
            let selected: Vec<SchemaName> = tasks.iter().map(|task| task.schema.clone()).collect();
            args.rollout.rollout().waves(&selected, &[])?;
        }
        let default_database = common.connection.database_url.is_empty();
        Ok(Request { databases, labels, tasks, action, command, common, notes, existing, default_database })
    }

    /// What the command does, with its target checked, and its common options.
    fn action<'c>(&self, command: &'c MigrateCommand) -> Result<(Action, &'c Common), CliError> {
        let change =
            |operation, change: &Change, create| Action::Change { operation, dry_run: change.danger.dry_run, create };
        Ok(match &command.command {
            Command::Upgrade(args) => (
                change(Operation::Upgrade(self.target(&args.target, Direction::Up)?), &args.change, args.create),
                &args.change.common,
            ),
            Command::Downgrade(args) => (
                change(Operation::Downgrade(self.target(&args.target, Direction::Down)?), &args.change, false),
                &args.change.common,
            ),
            Command::Reset(args) => (change(Operation::Reset, args, true), &args.common),
            Command::Repair(args) => (change(Operation::Repair, args, false), &args.common),
            Command::Resolve(args) => {
                let resolution = if args.applied { Resolution::Applied } else { Resolution::NotApplied };
                let operation = Operation::Resolve { version: args.version, resolution };
                (change(operation, &args.change, false), &args.change.common)
            }
            Command::Baseline(args) => {
                let version = self.baseline_version(&args.version)?;
                (change(Operation::Baseline { version }, &args.change, false), &args.change.common)
            }
            Command::Adopt(args) => {
                (change(Operation::Adopt(args.from.into()), &args.change, false), &args.change.common)
            }
            Command::History(common) => (Action::History, common),
            Command::Current(args) => (Action::Status { full: false, only_problems: args.only_problems }, &args.common),
            Command::Status(args) => (Action::Status { full: true, only_problems: args.only_problems }, &args.common),
            // `try_run` handles it: it touches no database.
            Command::Revision(_) => unreachable!("revision is handled before resolving"),
            Command::Diff(_) => unreachable!("diff is handled before resolving"),
            Command::Verify(common) => (Action::Verify, common),
        })
    }

    /// The selection on one database: its schemas, the note for `--all-schemas` when some history tables name no
    /// service, and (when `check_missing`) the selected schemas that do not exist. The database's schemas are
    /// listed only when the selection or the check needs them.
    fn select(
        &self,
        database: &Database,
        label: &str,
        shown_label: Option<&str>,
        selection: &SchemaSelection,
        check_missing: bool,
        list: bool,
    ) -> Result<Selected, CliError> {
        let listed = needs_catalog(selection) || check_missing || list;
        let existing = if listed {
            let listing_failed = |source| CliError::ListSchemas { database: label.to_owned(), source };
            let mut client = database.connect().map_err(|e| listing_failed(SelectionError::Connect(e)))?;
            Existing::load(&mut client, self.migrator.history_table_name(), self.migrator.service())
                .map_err(listing_failed)?
        } else {
            Existing::default()
        };
        let schemas = select(selection, &existing).map_err(CliError::Selection)?;
        let note = (selection.all_schemas && !existing.unmarked.is_empty())
            .then(|| unmarked_note(label, self.migrator.service(), &existing.unmarked));
        let missing = match check_missing {
            true => schemas
                .iter()
                .filter(|s| !existing.has(s.as_str()))
                .map(|s| MissingSchema {
                    database: shown_label.map(str::to_owned),
                    schema: s.to_string(),
                    nearest: existing.nearest(s.as_str()),
                })
                .collect(),
            false => Vec::new(),
        };
        Ok(Selected { schemas, note, missing, existing: listed.then_some(existing.all) })
    }

    /// A target as `head`, `base`, a version, `+N`/`-N`, or the name of one of the binary's migrations, checked
    /// against the direction before any schema is touched.
    fn target(&self, text: &str, direction: Direction) -> Result<Target, CliError> {
        let target = match text.parse::<Target>() {
            Ok(target) => target,
            Err(invalid) => match self.named(text) {
                Ok(version) => Target::Version(version),
                Err(nearest) => return Err(CliError::BadTarget { invalid, nearest }),
            },
        };
        target.towards(direction).map_err(CliError::WrongDirection)
    }

    /// `baseline --version`: a version, or the name of one of the binary's migrations (as `--target` takes).
    fn baseline_version(&self, text: &str) -> Result<i64, CliError> {
        match text.parse::<Target>() {
            Ok(Target::Version(version)) => Ok(version),
            _ => self.named(text).map_err(|nearest| CliError::BadVersion { text: text.to_owned(), nearest }),
        }
    }

    /// The version of the binary's migration named `name`, or the names nearest to it.
    fn named(&self, name: &str) -> Result<i64, Vec<String>> {
        match self.migrator.set().iter().find(|m| m.name == name) {
            Some(migration) => Ok(migration.version),
            None => {
                let names: Vec<&str> = self.migrator.set().iter().map(|m| m.name.as_ref()).collect();
                Err(schemas::nearest(name, &names))
            }
        }
    }

    /// What a changing run says on stderr as it starts, once confirmed: the database it works on (and that it is
    /// the built-in default, when no URL was given); a protected pattern that matches no schema, so protects
    /// nothing; and a schema `prod` it changes that the configured list, which replaced the default, leaves
    /// unprotected.
    fn run_notes(&self, request: &Request<'_>) -> Vec<String> {
        let Action::Change { operation, dry_run: false, .. } = request.action else { return Vec::new() };
        let mut notes = Vec::new();
        let verb = Verb::Change(operation).words();
        let default = if request.default_database {
            " (neither --database-url nor DATABASE_URL is set: the built-in default)"
        } else {
            ""
        };
        notes.push(format!("{verb} on {}{default}", request.labels.join(", ")));
        // The default (`prod`) protecting nothing in a database without prod is no news; a list someone set is.
        let configured = if self.default_protection { &[][..] } else { &self.protected[..] };
        for (label, existing) in request.labels.iter().zip(&request.existing) {
            let Some(existing) = existing else { continue };
            for pattern in configured {
                if !existing.iter().any(|schema| glob_match(pattern, schema)) {
                    notes.push(format!(
                        "protected pattern {pattern:?} ({PROTECTED_SCHEMAS_ENV}) matches no schema on {label}: it \
                         protects nothing there"
                    ));
                }
            }
        }
        // A schema this run will create whose name differs only in case from one that exists (`Dev` beside
        // `dev`): say so first. Only case: new tenants one digit from old ones are the normal case, not a typo.
        for task in &request.tasks {
            let Some(existing) = &request.existing[task.database] else { continue };
            let name = task.schema.as_str();
            if !existing.iter().any(|s| s == name) {
                let nearest: Vec<String> = existing.iter().filter(|s| s.eq_ignore_ascii_case(name)).cloned().collect();
                if !nearest.is_empty() {
                    notes.push(format!(
                        "schema {name:?} does not exist: this run creates it{} (names are case-sensitive)",
                        error::did_you_mean(&nearest)
                    ));
                }
            }
        }
        let unprotected_prod =
            request.tasks.iter().any(|t| t.schema.as_str() == "prod" && !self.is_protected(&t.schema));
        if unprotected_prod {
            notes.push(format!(
                "schema \"prod\" is not protected: {PROTECTED_SCHEMAS_ENV} ({}) replaces the default, prod; add prod \
                 to the list to keep it protected",
                self.protected.join(",")
            ));
        }
        notes
    }

    /// What `operation` would do to `schema`, in a few words, from its dry run: `apply 2 migration(s) (version 6 ->
    /// 8)`; or why that could not be told.
    fn what_would_change(&self, database: &Database, schema: &SchemaName, operation: Operation) -> String {
        let preview = database.connect().map_err(|error| chain(&error)).and_then(|mut client| {
            self.migrator.dry_run(&mut client, schema.as_str(), operation).map_err(|e| chain(&e))
        });
        match preview {
            Ok(preview) => render::text::would_change(&preview, operation == Operation::Reset),
            Err(error) => format!("change it (what exactly could not be told: {error})"),
        }
    }

    /// Whether `schema` is protected: it matches one of the protected names or globs.
    fn is_protected(&self, schema: &SchemaName) -> bool {
        self.protected.iter().any(|pattern| glob_match(pattern, schema.as_str()))
    }

    /// The one confirmation rule, for every command present and future: an action that changes a protected
    /// schema, for real (not a dry run), needs its confirmation.
    fn needs_confirmation(&self, action: &Action, schema: &SchemaName) -> bool {
        matches!(action, Action::Change { dry_run: false, .. }) && self.is_protected(schema)
    }

    /// Ask for a typed confirmation for each protected schema the command would change, or refuse when there is no
    /// terminal to ask on; `--yes` confirms them all.
    fn confirm(&self, request: &Request<'_>) -> Result<(), CliError> {
        let Action::Change { operation, .. } = request.action else { return Ok(()) };
        if request.command.change().is_some_and(|change| change.danger.yes) {
            return Ok(());
        }
        let mut protected: Vec<&Task> = Vec::new();
        for task in &request.tasks {
            if self.needs_confirmation(&request.action, &task.schema) && !protected.iter().any(|t| t == &task) {
                protected.push(task);
            }
        }
        if protected.is_empty() {
            return Ok(());
        }
        let verb = Verb::Change(operation);
        if !std::io::stdin().is_terminal() {
            let schemas = protected.iter().map(|t| t.schema.to_string()).collect();
            return Err(CliError::NotConfirmed { verb, schemas });
        }
        let stdin = std::io::stdin();
        for task in protected {
            let schema = &task.schema;
            // What the confirmation is for: the plan, as the dry run would show it.
            let would = self.what_would_change(&request.databases[task.database], schema, operation);
            eprint!(
                "schema {:?} is protected; {} would {would}. Type its name to {} it: ",
                schema.as_str(),
                verb.words(),
                verb.words()
            );
            let mut answer = String::new();
            if stdin.lock().read_line(&mut answer).is_err() || answer.trim_end_matches(['\n', '\r']) != schema.as_str()
            {
                return Err(CliError::ConfirmationMismatch { schema: schema.to_string() });
            }
        }
        Ok(())
    }

    /// Work on every schema of the request and render each result as it arrives; returns the exit code.
    fn execute(&self, request: &Request<'_>, out: &mut dyn Write) -> ExitCode {
        // SIGINT and SIGTERM stop the run: queries in flight are canceled on the server, nothing new starts, and
        // the report says what was done and what was not started.
        let stop = interrupt::watch();
        let migrator = self.migrator.clone().interrupted_by(stop.flag());
        let (migrator, common) = (&migrator, request.common);
        let fleet = Fleet::new(migrator, request.databases.clone())
            .stop_with(stop.clone())
            .jobs(common.workers.jobs.map_or_else(default_jobs, usize::from))
            .keep_going(common.workers.keep_going);
        let tasks = &request.tasks;
        let databases = (request.labels.len() > 1).then_some(request.labels.as_slice());
        let mode = match request.action {
            Action::Change { dry_run: true, .. } => Mode::DryRun,
            Action::Change { dry_run: false, .. } => Mode::Change,
            Action::History | Action::Status { .. } | Action::Verify => Mode::Read,
        };
        let mut sinks = Sinks {
            report: Report::new(common.output.format, tasks.len(), databases, mode),
            progress: Progress::new(tasks.len()),
            out,
        };
        let rollout = match &request.command.command {
            Command::Upgrade(args) => (args.rollout.rollout(), args.rollout.wave_pause),
            _ => (Rollout::default(), None),
        };
        let work = Work { fleet: &fleet, migrator, tasks, stop: &stop, rollout };
        let not_started = match request.action {
            Action::History => work.history(&mut sinks),
            Action::Status { full, only_problems } => {
                sinks.report.only_problems(only_problems);
                work.status(full, &mut sinks)
            }
            Action::Verify => work.verify(&mut sinks),
            Action::Change { operation, dry_run: true, .. } => work.preview(operation, &mut sinks),
            Action::Change { operation, dry_run: false, .. } => work.change(operation, &mut sinks),
        };
        sinks.progress.finish();
        if stop.is_stopped() {
            sinks.report.interrupted();
        }
        interrupt::done();
        sinks.report.finish(sinks.out, not_started)
    }

    /// The service's migrator with the command line's names, limits and planner options on top; a name that cannot
    /// be used is refused here, before any database is touched.
    fn migrator_with(&self, command: &MigrateCommand) -> Result<Migrator<'s>, CliError> {
        // An operator watching the command sees who it waits for.
        let mut migrator = self.migrator.clone().on_wait(|waiting| eprintln!("{waiting}"));
        if let Some(names) = command.names() {
            if let Some(table) = names.history_table.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                validate_identifier(table, "history table").map_err(CliError::BadHistoryTable)?;
                migrator = migrator.history_table(table);
            }
            let extra = names
                .extra_search_path
                .iter()
                .map(|name| name.trim())
                .filter(|name| !name.is_empty())
                .map(SchemaName::new)
                .collect::<Result<Vec<SchemaName>, _>>()
                .map_err(CliError::BadSearchPath)?;
            if !extra.is_empty() {
                migrator = migrator.extra_search_path(extra);
            }
        }
        let (out_of_order, missing) = match &command.command {
            Command::Upgrade(args) => (args.planner.allow_out_of_order, args.planner.missing.allow_missing),
            Command::Downgrade(args) => (false, args.planner.allow_missing),
            _ => (false, false),
        };
        if out_of_order {
            migrator = migrator.allow_out_of_order(true);
        }
        if missing {
            migrator = migrator.allow_missing(true);
        }
        let Some(change) = command.change() else { return Ok(migrator) };
        let limits = &change.limits;
        if let Some(timeout) = limits.lock_timeout {
            // PostgreSQL's own meaning of 0: no limit.
            migrator = migrator.lock_timeout((!timeout.is_zero()).then_some(timeout));
        }
        if let Some(retries) = limits.lock_retries {
            migrator = migrator.lock_retries(retries);
        }
        if limits.statement_timeout.is_some() {
            migrator = migrator.statement_timeout(limits.statement_timeout);
        }
        if let Some(wait) = limits.lock_wait {
            migrator = migrator.lock_wait(wait);
        }
        Ok(migrator)
    }

    /// `diff A B [--sql]`: one snapshot of both schemas' catalogs; exit 5 when they differ.
    fn diff(&self, args: &DiffArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
        let name = |text: &str| SchemaName::new(text).map_err(|e| CliError::Selection(SelectionError::InvalidName(e)));
        let (a, b) = (name(&args.a)?, name(&args.b)?);
        let url = args.database_url.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let database = parse_database(&url, 1)?;
        let mut client = database
            .connect()
            .map_err(|source| CliError::Compare(Error::Connect { database: database.to_string(), source }))?;
        let history_table = self.migrator.history_table_name();
        let differences = match diff_schemas(&mut client, &a, &b, history_table) {
            Ok(differences) => differences,
            // Say which of the two is missing, with the nearest names, as every other command does.
            Err(StructureError::NoSuchSchema { .. }) => {
                return Err(self.missing_schemas(&mut client, &database, &[&a, &b], Verb::Diff));
            }
            Err(error) => return Err(CliError::Compare(error.into())),
        };
        let code = if differences.is_empty() { ExitCode::Success } else { ExitCode::Drift };
        let sql = match (args.sql, differences.is_empty()) {
            (false, _) => None,
            (true, true) => Some(render::text::same_structure_sql(&a, &b)),
            (true, false) => {
                let structures = read_structures(&mut client, &[a.clone(), b.clone()], history_table)
                    .map_err(|error| CliError::Compare(error.into()))?;
                let (Some(reference), Some(found)) = (structures.get(&a), structures.get(&b)) else {
                    return Err(self.missing_schemas(&mut client, &database, &[&a, &b], Verb::Diff));
                };
                Some(render::text::suggestion_sql(&b, &generate(found, reference)))
            }
        };
        match args.output.format {
            Format::Json => {
                let document = DiffDocument::of(&a, &b, &differences, sql.as_deref(), code);
                writeln!(out, "{}", render::json::print(&document))
            }
            Format::Table => match &sql {
                Some(sql) => write!(out, "{sql}"),
                None => write!(out, "{}", render::text::diff_text(&a, &b, &differences)),
            },
        }
        .map_err(CliError::Output)?;
        Ok(code)
    }

    /// `upgrade --create --template T`: build each selected schema that does not exist from the template (prepared
    /// once per database), each in one proven transaction; the run that follows finds them at head. Not in a dry
    /// run, which plans them as a replay.
    fn create_from_template(&self, request: &Request<'_>) -> Result<(), CliError> {
        let (Command::Upgrade(upgrade), Action::Change { dry_run: false, create: true, .. }) =
            (&request.command.command, &request.action)
        else {
            return Ok(());
        };
        let Some(template) = upgrade.template.as_deref() else { return Ok(()) };
        let template = SchemaName::new(template).map_err(|e| CliError::Selection(SelectionError::InvalidName(e)))?;
        for (index, database) in request.databases.iter().enumerate() {
            let mut client = database
                .connect()
                .map_err(|source| CliError::Compare(Error::Connect { database: database.to_string(), source }))?;
            let schemas: Vec<&SchemaName> = request
                .tasks
                .iter()
                .filter(|t| t.database == index && t.schema != template)
                .map(|t| &t.schema)
                .collect();
            // The schemas the run listed already, else those of the selection that exist: an unnamed statement, so
            // it works through a transaction pooler as the survey does.
            let existing: Vec<String> = match &request.existing[index] {
                Some(listed) => listed.clone(),
                None => {
                    let names: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
                    client
                        .query_typed(
                            "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname::text = ANY($1)",
                            &[(&names, postgres::types::Type::TEXT_ARRAY)],
                        )
                        .map_err(|source| {
                            CliError::Template(TemplateError::Structure(StructureError::Query {
                                schemas: vec![template.to_string()],
                                action: "list the schemas",
                                source,
                            }))
                        })?
                        .iter()
                        .map(|row| row.get(0))
                        .collect()
                }
            };
            let missing: Vec<&&SchemaName> =
                schemas.iter().filter(|s| !existing.iter().any(|e| e == s.as_str())).collect();
            if missing.is_empty() && upgrade.spares.is_none() {
                continue;
            }
            let prepared = Template::prepare(&mut client, &self.migrator, &template)?;
            for schema in missing {
                let created = prepared.claim(&mut client, &self.migrator, schema)?;
                let how = match &created.from {
                    Source::Spare(spare) => {
                        format!("spare {:?} of template {:?}, renamed", spare.as_str(), template.as_str())
                    }
                    Source::Built => format!("template {:?}", template.as_str()),
                };
                eprintln!(
                    "note: {}: created from {how} at version {} ({} table(s); structure and row counts equal to the \
                     template's)",
                    created.schema, created.version, created.tables
                );
            }
            if let Some(count) = upgrade.spares {
                let built = prepared.stock_spares(&mut client, &self.migrator, count)?;
                eprintln!(
                    "note: {}: built {built} spare(s) of template {:?} ({count} wanted)",
                    request.labels[index],
                    template.as_str()
                );
            }
        }
        Ok(())
    }

    /// The error for `schemas` of which some do not exist, naming those with the nearest existing names.
    fn missing_schemas(
        &self,
        client: &mut postgres::Client,
        database: &Database,
        schemas: &[&SchemaName],
        verb: Verb,
    ) -> CliError {
        let listing_failed = |source| CliError::ListSchemas { database: database.to_string(), source };
        let existing = match Existing::load(client, self.migrator.history_table_name(), self.migrator.service()) {
            Ok(existing) => existing,
            Err(source) => return listing_failed(source),
        };
        let missing = schemas
            .iter()
            .filter(|s| !existing.has(s.as_str()))
            .map(|s| MissingSchema { database: None, schema: s.to_string(), nearest: existing.nearest(s.as_str()) })
            .collect();
        CliError::MissingSchemas { verb, missing }
    }

    /// `revision`: a template to fill in, or with `--autogenerate` the generated and proven scripts.
    fn revision(&self, args: &RevisionArgs, out: &mut dyn Write) -> Result<ExitCode, CliError> {
        let folder = match args.migrations_dir.as_deref() {
            Some(folder) => folder.to_path_buf(),
            None => revision_folder(self.migrator.set().source_folder()).ok_or(CliError::NoSourceFolder)?,
        };
        // Print `/checkout/migrations/9_x.up.sql`, not `/checkout/app/../migrations/...`; a folder that cannot be
        // resolved is left as given, for `write_revision` to say why.
        let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_path_buf());
        let (revision, generated) = match args.autogenerate {
            false => (write_revision(&folder, &args.message)?, None),
            true => {
                let (generated, desired) = self.generate(args, &folder)?;
                let text = generated_text(&args.message, &desired, &generated);
                let revision = write_revision_text(&folder, &args.message, text.as_revision_text())?;
                (revision, Some(generated))
            }
        };
        match args.output.format {
            Format::Json => {
                let document = RevisionDocument::of(&revision, generated.as_ref());
                writeln!(out, "{}", render::json::print(&document))
            }
            Format::Table => write!(out, "{}", render::text::revision_text(&revision, generated.as_ref())),
        }
        .map_err(CliError::Output)?;
        Ok(ExitCode::Success)
    }

    /// Generate and prove the revision's scripts; on a failed proof, say on stderr what could not be expressed.
    fn generate(&self, args: &RevisionArgs, folder: &Path) -> Result<(Generated, String), CliError> {
        check_folder_matches(folder, self.migrator.set())?;
        let renames = args.rename.iter().map(|r| r.parse()).collect::<Result<Vec<Rename>, _>>()?;
        let file_sql;
        let desired = match (&args.from, &args.from_file) {
            (Some(schema), _) => Desired::Schema(
                SchemaName::new(schema).map_err(|e| CliError::Selection(SelectionError::InvalidName(e)))?,
            ),
            (None, Some(path)) => {
                file_sql = std::fs::read_to_string(path)
                    .map_err(|source| CliError::ReadDesiredFile { path: path.display().to_string(), source })?;
                Desired::File { file: path.display().to_string(), sql: &file_sql }
            }
            (None, None) => unreachable!("clap requires --from or --from-file with --autogenerate"),
        };
        let url = args.database_url.clone().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        let database = parse_database(&url, 1)?;
        let mut client = database
            .connect()
            .map_err(|source| CliError::Compare(Error::Connect { database: database.to_string(), source }))?;
        match autogenerate(&mut client, &self.migrator, &desired, &renames) {
            Ok(generated) => Ok((generated, desired.to_string())),
            Err(GenerateError::Structure(StructureError::NoSuchSchema { .. })) => {
                let Desired::Schema(schema) = &desired else { unreachable!("only a schema can be missing") };
                Err(self.missing_schemas(&mut client, &database, &[schema], Verb::Generate))
            }
            Err(error) => {
                if let GenerateError::NotProven { unproven, .. } = &error {
                    eprint!("{}", render::text::unproven_text(unproven));
                }
                Err(error.into())
            }
        }
    }
}

/// The files of a generated revision: a header that says where it came from, that it was proven, and that data
/// is not generated; then the statements with their review notes.
struct GeneratedText {
    up: String,
    down: String,
    no_transaction: bool,
}

impl GeneratedText {
    fn as_revision_text(&self) -> RevisionText<'_> {
        RevisionText { up: &self.up, down: &self.down, no_transaction: self.no_transaction }
    }
}

fn generated_text(message: &str, desired: &str, generated: &Generated) -> GeneratedText {
    let head = generated.head;
    let reviews = generated.up.reviews().count();
    let header = |direction: &str| {
        let mut header: String = message.lines().map(|line| format!("-- {line}\n")).collect();
        header.push_str(&format!(
            "-- Generated by `{} revision --autogenerate` from {desired}, to follow version {head}. Proven before it \
             was written: run after version {head} it builds exactly that structure, and the down file brings it \
             back ({direction} file).\n\
             -- Data is not generated: rows that migrations insert (seed rows) stay hand-written.\n",
            program_name()
        ));
        if reviews > 0 && direction == "up" {
            header.push_str(&format!(
                "-- {reviews} statement(s) below carry a REVIEW note: read them before this runs on a fleet.\n"
            ));
        }
        header.push('\n');
        header
    };
    GeneratedText {
        up: format!("{}{}", header("up"), generated.up.script(Qualifier::SearchPath)),
        down: format!("{}{}", header("down"), generated.down.script(Qualifier::SearchPath)),
        no_transaction: generated.up.no_transaction,
    }
}

/// Where results go as they arrive: the report that renders them, the progress bar, stdout.
struct Sinks<'o, 'd> {
    report: Report<'d>,
    progress: Progress,
    out: &'o mut dyn Write,
}

/// One command's work: its tasks over the fleet, with the command's migrator. Each returns how many tasks were not
/// started (after a failure, without `--keep-going`).
struct Work<'w, 's> {
    fleet: &'w Fleet<'w>,
    migrator: &'w Migrator<'s>,
    tasks: &'w [Task],
    stop: &'w Stop,
    /// The upgrade's canary and waves, and the pause between waves.
    rollout: (Rollout, Option<Duration>),
}

impl Work<'_, '_> {
    /// `history`: every schema's migrations, printed together at the end.
    fn history(&self, sinks: &mut Sinks<'_, '_>) -> usize {
        let (tasks, migrator) = (self.tasks, self.migrator);
        let not_started = self.fleet.for_each(
            tasks,
            |c, s| Ok(migrator.history(c, s.as_str())?),
            |i, r| sinks.progress.tick(|| sinks.report.history(i, &tasks[i], r)),
        );
        sinks.report.print_histories(sinks.out);
        not_started
    }

    /// `current` and `status`: schemas the survey finds at head or uninitialized need no connection of their own.
    fn status(&self, full: bool, sinks: &mut Sinks<'_, '_>) -> usize {
        let (tasks, migrator) = (self.tasks, self.migrator);
        let settled = |standing: Standing| matches!(standing, Standing::Current { .. } | Standing::Uninitialized);
        let pending = survey(self.fleet, tasks, settled, |i, standing| {
            let status = match standing {
                Standing::Current { version } => status_at(migrator, &tasks[i].schema, version),
                _ => status_of(tasks[i].schema.as_str(), migrator.set(), None),
            };
            sinks.progress.tick(|| sinks.report.status(i, &tasks[i], Ok(status)));
        });
        let subset: Vec<Task> = pending.iter().map(|&i| tasks[i].clone()).collect();
        let not_started = self.fleet.for_each(
            &subset,
            |c, s| Ok(migrator.status(c, s.as_str())?),
            |i, r| sinks.progress.tick(|| sinks.report.status(pending[i], &tasks[pending[i]], r)),
        );
        sinks.report.print_statuses(sinks.out, full);
        not_started
    }

    /// `verify`: one comparison per database for all of its schemas.
    fn verify(&self, sinks: &mut Sinks<'_, '_>) -> usize {
        let tasks = self.tasks;
        self.fleet.verify(tasks, |database, result| {
            let on_database = tasks.iter().enumerate().filter(|(_, t)| t.database == database);
            match result {
                Ok(verifications) => {
                    for (i, task) in on_database {
                        let found = verifications.iter().find(|v| v.schema == task.schema).cloned();
                        let result = found.ok_or_else(|| {
                            Error::Structure(StructureError::NoSuchSchema { schema: task.schema.to_string() })
                        });
                        sinks.progress.tick(|| sinks.report.verification(sinks.out, i, task, result));
                    }
                }
                Err(error) => {
                    for (i, task) in on_database {
                        sinks.progress.tick(|| sinks.report.verification_failed(sinks.out, i, task, &error));
                    }
                }
            }
        })
    }

    /// `--dry-run`: every schema's plan and SQL, changing nothing.
    fn preview(&self, operation: Operation, sinks: &mut Sinks<'_, '_>) -> usize {
        let (tasks, migrator) = (self.tasks, self.migrator);
        self.fleet.for_each(
            tasks,
            |c, s| Ok(migrator.dry_run(c, s.as_str(), operation)?),
            |i, r| sinks.progress.tick(|| sinks.report.preview(sinks.out, i, &tasks[i], r)),
        )
    }

    /// A change. Only an upgrade to head can trust the survey: every other target needs each schema's plan.
    fn change(&self, operation: Operation, sinks: &mut Sinks<'_, '_>) -> usize {
        let (tasks, migrator) = (self.tasks, self.migrator);
        let pending = if operation == Operation::Upgrade(Target::Head) {
            survey(self.fleet, tasks, Standing::is_current, |i, standing| {
                if let Standing::Current { version } = standing {
                    let unchanged = RunReport {
                        schema: tasks[i].schema.to_string(),
                        version_before: version,
                        version_after: version,
                        steps: Vec::new(),
                        fixes: Vec::new(),
                        by_others: Vec::new(),
                    };
                    sinks.progress.tick(|| sinks.report.change(sinks.out, i, &tasks[i], Ok(unchanged)));
                }
            })
        } else {
            (0..tasks.len()).collect()
        };
        let schemas: Vec<SchemaName> = tasks.iter().map(|task| task.schema.clone()).collect();
        // Named canaries were checked against the selection when the command was resolved.
        let waves = self.rollout.0.waves(&schemas, &pending).unwrap_or_default();
        let (count, mut not_started, mut stopped) = (waves.len(), 0, false);
        for (number, wave) in (1..).zip(&waves) {
            if stopped || self.stop.is_stopped() {
                not_started += wave.schemas.len();
                continue;
            }
            if count > 1 {
                let kind = if wave.canary { " (canary)" } else { "" };
                eprintln!("wave {number} of {count}{kind}: {} schema(s)", wave.schemas.len());
            }
            let subset: Vec<Task> = wave.schemas.iter().map(|&i| tasks[i].clone()).collect();
            let mut failed = false;
            not_started += self.fleet.for_each(
                &subset,
                |c, s| {
                    let result = migrator.run(c, s.as_str(), operation);
                    if let Err(error) = &result {
                        record_failure(c, s, migrator.history_table_name(), error);
                    }
                    Ok(result?)
                },
                |i, r| {
                    failed |= r.is_err();
                    let index = wave.schemas[i];
                    sinks.progress.tick(|| sinks.report.change(sinks.out, index, &tasks[index], r))
                },
            );
            let later: usize = waves[number..].iter().map(|wave| wave.schemas.len()).sum();
            if failed && later > 0 {
                stopped = true;
                eprintln!(
                    "stopped after wave {number} of {count}: a schema failed in it; {later} schema(s) of the later \
                     waves not started; run the same command again once it is fixed (schemas at head are skipped)"
                );
            } else if let (Some(pause), true) = (self.rollout.1, later > 0) {
                self.pause(pause);
            }
        }
        not_started
    }

    /// Wait `pause` between waves, or until the run is stopped.
    fn pause(&self, pause: Duration) {
        let until = std::time::Instant::now() + pause;
        while !self.stop.is_stopped() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100).min(until - std::time::Instant::now()));
        }
    }
}

/// One database's selected schemas (see `Cli::select`).
struct Selected {
    schemas: Vec<SchemaName>,
    note: Option<String>,
    missing: Vec<MissingSchema>,
    /// The database's schemas, when they were listed.
    existing: Option<Vec<String>>,
}

/// A `--database-url` (the `position`th, one-based), its connections named for the CLI. Its text is never echoed
/// in the error: it may hold a password.
fn parse_database(url: &str, position: usize) -> Result<Database, CliError> {
    url.parse::<Database>()
        .map(|database| database.default_application_name(&program_name()))
        .map_err(|source| CliError::BadDatabaseUrl { position, source })
}

/// Where `revision` writes without `--migrations-dir`: the folder of the same name in the current directory (the
/// checkout the operator works in, as Alembic reads the `alembic.ini` there), else the folder the binary was built
/// from.
fn revision_folder(built_from: Option<&Path>) -> Option<std::path::PathBuf> {
    let built_from = built_from?;
    let here = std::env::current_dir().ok().and_then(|cwd| Some(cwd.join(built_from.file_name()?)));
    Some(here.filter(|folder| folder.is_dir()).unwrap_or_else(|| built_from.to_path_buf()))
}

/// `{binary} migrate`: how the CLI's connections name themselves.
fn program_name() -> String {
    format!("{} migrate", migrate_runtime::binary_name())
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

/// Leave what went wrong in `schema`, for `status` ([`LastFailure`]): on a connection still open, after the
/// failed run rolled back. A record that cannot be written (no history table yet, a role that does not own it)
/// changes nothing of the run's outcome.
fn record_failure(
    client: &mut postgres::Client,
    schema: &SchemaName,
    history_table: &str,
    error: &migrate_runtime::Error,
) {
    let Some(failure) = LastFailure::of(error, std::time::SystemTime::now()) else { return };
    if client.is_closed() {
        return;
    }
    if let Err(error) = migrate_ops::record_failure(client, schema, history_table, &failure) {
        tracing::debug!(schema = %schema, error = %chain(&error), "the failed run was not recorded for status");
    }
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
        migrating_now: None,
        last_failure: None,
    }
}

/// The note for schemas `--all-schemas` included although their history table names no service.
fn unmarked_note(database: &str, service: &str, schemas: &[String]) -> String {
    let shown: Vec<String> = schemas.iter().take(5).map(|s| format!("{s:?}")).collect();
    let more =
        if schemas.len() > shown.len() { format!(" and {} more", schemas.len() - shown.len()) } else { String::new() };
    format!(
        "{database}: --all-schemas includes {} schema(s) whose history table names no service (created before \
         service names were recorded): {}{more}; to leave them to another service, record its name with COMMENT ON \
         COLUMN <schema>.<history table>.version IS 'migrate-service:<name>' (this service is {service:?})",
        schemas.len(),
        shown.join(", ")
    )
}
