//! The command line, as clap derive types. A service mounts [`MigrateCommand`] as one of its subcommands.
//!
//! Each subcommand flattens only the option groups it uses, so `--help` of each lists exactly its options:
//! [`Common`] (connection, schemas, output, workers) on every command that talks to databases, [`Limits`] on the
//! commands that change schemas, [`Planner`] on upgrade and downgrade, [`Danger`] (dry run, confirmation) on every
//! change.

use std::path::PathBuf;
use std::time::Duration;

use migrate_ops::{Canary, Rollout};

use clap::{Args, Subcommand, ValueEnum};

/// The environment variables and exit codes, in `migrate --help` and in every command's `--help`.
macro_rules! ENVIRONMENT_AND_CODES {
    () => {
        "\
Environment:
  DATABASE_URL               the database (default postgres://postgres@127.0.0.1:5432/postgres)
  DEFAULT_SCHEMA_NAME        the schema when no schema option is given (default dev)
  MIGRATE_HISTORY_TABLE      the history table in each schema (--history-table; default schema_migrations)
  MIGRATE_EXTRA_SEARCH_PATH  shared schemas after each schema in its migrations' search_path
                             (--extra-search-path), for the service at boot and every command alike
  MIGRATE_TEMPLATE_SCHEMA    `upgrade --create` builds new schemas from this template kept at head (--template)
  MIGRATE_PROTECTED_SCHEMAS  comma-separated names or globs (`prod,tenant-*`) whose every change is confirmed
                             by typing the schema's name, or --yes off a terminal (default prod)

Exit codes:
  0  success
  1  could not run (database unreachable, file not readable or writable)
  2  usage error (bad flag, schema name or target; a pattern that matched nothing)
  3  refused before changing anything (protected schema without confirmation, missing schema, missing down
     file, dirty or out-of-order migration, nothing to resolve; `revision --autogenerate`: not proven,
     nothing to generate, or a folder other than the binary's)
  4  a migration failed (`revision --autogenerate`: the --from-file)
  5  drift found (edited applied file, versions this binary does not have; `verify`: a schema whose structure
     differs from what its migrations build, or that is ahead; `diff`: the two schemas differ)
  130 interrupted (SIGINT, SIGTERM): the queries in flight were canceled and rolled back, nothing new was
     started, and the report says what was done; a second signal quits at once"
    };
}

/// Operate on this binary's embedded migrations: `reset`, `revision`, `upgrade`, `downgrade`, `current`,
/// `history`, `status`, `repair`, `resolve`, `verify`, over one schema or many; `diff` two schemas.
#[derive(Debug, Clone, Args)]
#[command(after_help = AFTER_HELP)]
pub struct MigrateCommand {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Shown after the list of commands in `migrate --help`.
const AFTER_HELP: &str = concat!(
    "\
Schemas: --schema, --schemas, --schemas-file or --all-schemas; without them, $DEFAULT_SCHEMA_NAME, then `dev`.
A command that changes schemas never creates one that does not exist, unless given --create (`reset` creates by
definition); the library call at boot creates its configured schema.


",
    ENVIRONMENT_AND_CODES!()
);

/// Shown after each command's options: the same environment variables and exit codes.
const COMMAND_AFTER_HELP: &str = ENVIRONMENT_AND_CODES!();

/// The options of every command that talks to databases.
#[derive(Debug, Clone, Default, Args)]
pub struct Common {
    /// Which schemas.
    #[command(flatten, next_help_heading = "Schemas")]
    pub schemas: SchemaSelection,
    /// Which databases.
    #[command(flatten, next_help_heading = "Database")]
    pub connection: Connection,
    /// How to print.
    #[command(flatten, next_help_heading = "Output")]
    pub output: Output,
    /// How many schemas at once, and what to do after a failure.
    #[command(flatten, next_help_heading = "Many schemas")]
    pub workers: Workers,
    /// The history table and the migrations' search path.
    #[command(flatten, next_help_heading = "Migrations")]
    pub names: Names,
}

/// What every command, and the service at boot (`Migrator::with_env`), must agree on: which table holds the
/// history, and which shared schemas follow each schema in its migrations' `search_path`.
#[derive(Debug, Clone, Default, Args)]
pub struct Names {
    /// The history table in each schema (default: schema_migrations, or the service's own); give it another name
    /// when a project's migrations, or another tool, use a table called schema_migrations.
    #[arg(long, value_name = "NAME", env = "MIGRATE_HISTORY_TABLE")]
    pub history_table: Option<String>,
    /// Shared schemas after each schema in its migrations' `search_path` (`extensions,public`), where extensions
    /// were installed once: used to apply migrations and to build `verify`'s reference alike.
    #[arg(long, value_name = "SCHEMAS", env = "MIGRATE_EXTRA_SEARCH_PATH", value_delimiter = ',')]
    pub extra_search_path: Vec<String>,
}

/// The databases to work on.
#[derive(Debug, Clone, Default, Args)]
pub struct Connection {
    /// Connection string of the database (default: postgres://postgres@127.0.0.1:5432/postgres); repeat it to
    /// work on several databases or servers at once.
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Vec<String>,
}

/// The database used when neither `--database-url` nor `DATABASE_URL` is given.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Connection {
    /// The URLs to use: `--database-url`s (or `DATABASE_URL`), else [`DEFAULT_DATABASE_URL`].
    pub fn urls(&self) -> Vec<String> {
        if self.database_url.is_empty() {
            return vec![DEFAULT_DATABASE_URL.to_owned()];
        }
        self.database_url.clone()
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Output {
    /// Output for people (`table`) or scripts (`json`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// The pool of connections per database.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct Workers {
    /// Schemas worked on at once, each on its own connection (default: twice the cores, at most 16).
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Go on with the other schemas after one fails (default: stop starting new ones).
    #[arg(long)]
    pub keep_going: bool,
}

/// Safety limits of the commands that change schemas.
#[derive(Debug, Clone, Default, Args)]
pub struct Limits {
    /// `lock_timeout` for migration SQL on an existing schema (`5s`, `500ms`; default 2s; `0` waits without
    /// limit): a migration waiting this long on a busy table is rolled back and tried again instead of stalling the
    /// tenant's queries behind it. A schema the run creates runs without it.
    #[arg(long, value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,
    /// How many more times a migration that ran out of --lock-timeout is tried, after pauses of 1s, 2s, 4s ...
    /// (default 2); then that schema fails (exit 4), nothing of the migration applied.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub lock_retries: Option<u32>,
    /// `statement_timeout` for migration SQL (`10m`, `30s`).
    #[arg(long, value_parser = parse_duration)]
    pub statement_timeout: Option<Duration>,
    /// How long to wait for another process's migration lock on a schema before giving up (`30s`; default: 10m).
    #[arg(long, value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
}

/// What the planner accepts, on upgrade.
#[derive(Debug, Clone, Default, Args)]
pub struct Planner {
    /// Apply pending migrations numbered below the newest applied one instead of refusing.
    #[arg(long)]
    pub allow_out_of_order: bool,
    /// Applied versions this binary lacks.
    #[command(flatten)]
    pub missing: AllowMissing,
}

/// What the planner accepts on downgrade (which applies nothing, so out-of-order does not arise), and on upgrade.
#[derive(Debug, Clone, Default, Args)]
pub struct AllowMissing {
    /// Accept applied versions this binary does not have (a rolled-back deploy) instead of refusing.
    #[arg(long)]
    pub allow_missing: bool,
}

/// `250ms`, `5s`, `2m`, `1h`: a whole number and a unit.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid =
        || format!("invalid duration {text:?}: expected a whole number and a unit, such as 500ms, 5s, 2m or 1h");
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let millis = match unit {
        // A bare 0 needs no unit: PostgreSQL's "no limit".
        "" if number == 0 => 0,
        "ms" => number,
        "s" => number.saturating_mul(1_000),
        "m" | "min" => number.saturating_mul(60_000),
        "h" => number.saturating_mul(3_600_000),
        _ => return Err(invalid()),
    };
    Ok(Duration::from_millis(millis))
}

impl MigrateCommand {
    /// Parse the arguments that follow `migrate` (for calling the CLI from code).
    ///
    /// ```
    /// use migrate_cli::{Command, MigrateCommand};
    ///
    /// let command = MigrateCommand::try_parse_from_args(["status", "--schemas", "dev,prod"]).unwrap();
    /// assert!(matches!(command.command, Command::Status(_)));
    /// assert_eq!(command.common().unwrap().schemas.schemas.as_deref(), Some(&["dev".to_owned(), "prod".to_owned()][..]));
    /// ```
    pub fn try_parse_from_args<I, T>(args: I) -> Result<MigrateCommand, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{FromArgMatches, Parser};

        /// A stand-alone parser around the subcommand.
        #[derive(Parser)]
        #[command(name = "migrate")]
        struct Standalone {
            #[command(flatten)]
            command: MigrateCommand,
        }
        let args = std::iter::once(std::ffi::OsString::from("migrate")).chain(args.into_iter().map(Into::into));
        let matches = <Standalone as clap::CommandFactory>::command().try_get_matches_from(args)?;
        Ok(Standalone::from_arg_matches(&matches)?.command)
    }

    /// The connection, schema, output and worker options; `None` for `revision`, which touches no database.
    pub fn common(&self) -> Option<&Common> {
        match &self.command {
            Command::Reset(change) | Command::Repair(change) => Some(&change.common),
            Command::Upgrade(upgrade) => Some(&upgrade.change.common),
            Command::Downgrade(downgrade) => Some(&downgrade.change.common),
            Command::Resolve(resolve) => Some(&resolve.change.common),
            Command::Baseline(baseline) => Some(&baseline.change.common),
            Command::Adopt(adopt) => Some(&adopt.change.common),
            Command::Current(status) | Command::Status(status) => Some(&status.common),
            Command::History(common) => Some(common),
            Command::Revision(_) => None,
            Command::Verify(common) => Some(common),
            Command::Diff(_) => None,
        }
    }

    /// The history table and the migrations' search path, of every command that talks to a database.
    pub fn names(&self) -> Option<&Names> {
        match &self.command {
            Command::Diff(diff) => Some(&diff.names),
            Command::Revision(revision) => Some(&revision.names),
            _ => self.common().map(|common| &common.names),
        }
    }

    /// The output format.
    pub fn format(&self) -> Format {
        match &self.command {
            Command::Revision(revision) => revision.output.format,
            Command::Diff(diff) => diff.output.format,
            _ => self.common().map_or(Format::Table, |c| c.output.format),
        }
    }

    /// The options of a command that changes schemas; `None` for the others.
    pub fn change(&self) -> Option<&Change> {
        match &self.command {
            Command::Reset(change) | Command::Repair(change) => Some(change),
            Command::Upgrade(upgrade) => Some(&upgrade.change),
            Command::Downgrade(downgrade) => Some(&downgrade.change),
            Command::Resolve(resolve) => Some(&resolve.change),
            Command::Baseline(baseline) => Some(&baseline.change),
            Command::Adopt(adopt) => Some(&adopt.change),
            _ => None,
        }
    }
}

/// The subcommands. Each one's `--help` ends with the environment variables and exit codes.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Drop each schema with everything in it, recreate it and apply every migration.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Reset(Change),
    /// Write the next migration into the source folder: a template, or generated and proven (--autogenerate).
    ///
    /// In the folder's own layout (flat, sqlx up-only, refinery, diesel). With --autogenerate, the up and down
    /// scripts are the difference between what the binary's migrations build at head and --from SCHEMA (or
    /// --from-file), run in a rolled-back transaction before anything is written: up must build exactly the desired
    /// structure and down must bring it back, else nothing is written and what could not be expressed is listed.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Revision(RevisionArgs),
    /// Apply pending migrations.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Upgrade(UpgradeArgs),
    /// Revert applied migrations, newest first.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Downgrade(DowngradeArgs),
    /// After reviewing edited migration files: record the binary's checksums and names for the applied migrations.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Repair(Change),
    /// Settle a dirty no-transaction migration after fixing the schema by hand.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Resolve(ResolveArgs),
    /// Record every migration up to a version as applied without running it, for a schema built by another tool or
    /// by hand (from Alembic, for example).
    #[command(after_help = COMMAND_AFTER_HELP)]
    Baseline(BaselineArgs),
    /// Record as applied what sqlx, diesel or refinery recorded in its own history table in the schema (left in
    /// place).
    #[command(after_help = COMMAND_AFTER_HELP)]
    Adopt(AdoptArgs),
    /// Each schema's version and whether it is at head, behind, ahead of the binary, drifted or dirty.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Current(StatusArgs),
    /// Every migration, applied (when, how long, by whom) or pending, with checksum mismatches marked.
    #[command(after_help = COMMAND_AFTER_HELP)]
    History(Common),
    /// One row per schema: version, pending count, problems, and why its last run failed while that still stands.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Status(StatusArgs),
    /// Compare each schema's structure with what the binary's migrations build for its applied versions.
    ///
    /// Read-only. Compares tables, columns, constraints, indexes, views, sequences, types, functions, triggers,
    /// policies and their comments; not data, ownership or grants.
    ///
    /// One line per schema: `equal`; `differs`, with each difference below it (`missing` is what the schema lacks,
    /// `extra` what it has besides, `changed` gives the expected and found value of each changed attribute); `not
    /// migrated` (no history table, or an empty one: nothing applied, so nothing to compare; exit 0); `ahead`
    /// (versions applied that this binary does not have, so what they built is unknown here). Exits 5 when a schema
    /// differs or is ahead. A schema that does not exist is refused (exit 3). Each database's schemas are read
    /// together on one connection; --jobs bounds how many databases are verified at once.
    #[command(after_help = COMMAND_AFTER_HELP)]
    Verify(Common),
    /// Compare two live schemas' structures: what is only in A, only in B, and changed.
    ///
    /// Exits 5 when they differ, 0 when they are equal, 3 when either does not exist. With --sql, prints the
    /// statements that would bring B to A, with what they cannot express as comments: a suggestion to review,
    /// never run by this command (`revision --autogenerate` proves its scripts before writing them).
    #[command(after_help = COMMAND_AFTER_HELP)]
    Diff(DiffArgs),
}

/// `current`'s and `status`'s options.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// List only the schemas that need a look (behind, ahead, drifted, dirty, or failing); the summary still
    /// counts every schema.
    #[arg(long)]
    pub only_problems: bool,
    /// Connection, schemas, output and workers.
    #[command(flatten)]
    pub common: Common,
}

/// `diff`'s options.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The schema taken as the reference.
    #[arg(value_name = "A")]
    pub a: String,
    /// The schema compared with it.
    #[arg(value_name = "B")]
    pub b: String,
    /// Print the SQL script that would bring B to A (a suggestion to review; nothing is run).
    #[arg(long)]
    pub sql: bool,
    /// Connection string of the database holding both schemas (default:
    /// postgres://postgres@127.0.0.1:5432/postgres).
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true, help_heading = "Database")]
    pub database_url: Option<String>,
    /// How to print.
    #[command(flatten, next_help_heading = "Output")]
    pub output: Output,
    /// The history table (left out of the comparison) and the search path.
    #[command(flatten, next_help_heading = "Migrations")]
    pub names: Names,
}

/// `revision`'s options.
#[derive(Debug, Clone, Args)]
pub struct RevisionArgs {
    /// What the migration does; becomes its file name.
    #[arg(short, long)]
    pub message: String,
    /// Write into this folder (default: the folder of the same name in the current directory, else the one the
    /// binary was built from).
    #[arg(long)]
    pub migrations_dir: Option<PathBuf>,
    /// Accepted and ignored, as `migrate.py revision --schema dev` had it: a revision belongs to no schema.
    #[arg(long, short = 's', hide = true)]
    pub schema: Option<String>,
    /// Generate the up and down scripts from the difference between what the binary's migrations build at head
    /// and --from SCHEMA (or --from-file), proven in a rolled-back transaction before anything is written.
    #[arg(long, requires = "desired")]
    pub autogenerate: bool,
    /// The live schema where the change was prototyped (dev); it must have applied the binary's migrations.
    #[arg(long, value_name = "SCHEMA", group = "desired", requires = "autogenerate")]
    pub from: Option<String>,
    /// A SQL file of the whole desired state, run in a scratch schema that is rolled back.
    #[arg(long, value_name = "FILE", group = "desired", requires = "autogenerate")]
    pub from_file: Option<PathBuf>,
    /// A table (OLD=NEW) or column (TABLE.OLD=NEW) that was renamed, not dropped and added: the revision renames
    /// it and keeps its data. Repeat for several.
    #[arg(long, value_name = "OLD=NEW", requires = "autogenerate")]
    pub rename: Vec<String>,
    /// Connection string of the database holding --from (and where the scratch schemas are made and rolled
    /// back; default: postgres://postgres@127.0.0.1:5432/postgres).
    #[arg(long, value_name = "URL", env = "DATABASE_URL", hide_env_values = true, help_heading = "Database")]
    pub database_url: Option<String>,
    /// How to print.
    #[command(flatten, next_help_heading = "Output")]
    pub output: Output,
    /// The history table (left out of the comparison) and the migrations' search path.
    #[command(flatten, next_help_heading = "Migrations")]
    pub names: Names,
}

/// The options of every command that changes schemas.
#[derive(Debug, Clone, Default, Args)]
pub struct Change {
    /// Connection, schemas, output, workers.
    #[command(flatten)]
    pub common: Common,
    /// Safety limits.
    #[command(flatten, next_help_heading = "Safety limits")]
    pub limits: Limits,
    /// Dry run and confirmation.
    #[command(flatten, next_help_heading = "Dry run and confirmation")]
    pub danger: Danger,
}

/// `upgrade`'s options.
#[derive(Debug, Clone, Args)]
pub struct UpgradeArgs {
    /// `head`, a version, `+N`, or a migration's name.
    #[arg(short, long, default_value = "head", allow_hyphen_values = true)]
    pub target: String,
    /// Create a selected schema that does not exist yet; without it a missing schema is refused, so that a typo
    /// does not create one.
    #[arg(long)]
    pub create: bool,
    /// With --create: build each selected schema that does not exist from this template schema, kept at head
    /// (`upgrade --create -s _template`), instead of replaying every migration: its structure and rows copied in
    /// one transaction that commits only when both equal the template's. Without it, new schemas are replayed.
    #[arg(long, value_name = "SCHEMA", env = "MIGRATE_TEMPLATE_SCHEMA", requires = "create")]
    pub template: Option<String>,
    /// With --template: afterwards, build spares from the template (`{template}__spare_0001`, ...) until this many
    /// exist; a new schema is then a spare renamed (proven the same way), which takes milliseconds. Spares are
    /// schemas at head like any other: upgrade them with the fleet (`--schemas '_template*'`).
    #[arg(long, value_name = "N", requires = "template")]
    pub spares: Option<usize>,
    /// What the planner accepts.
    #[command(flatten, next_help_heading = "Planner")]
    pub planner: Planner,
    /// Canaries and waves.
    #[command(flatten, next_help_heading = "Rollout")]
    pub rollout: RolloutArgs,
    /// Connection, schemas, output, workers, limits, dry run and confirmation.
    #[command(flatten)]
    pub change: Change,
}

/// Rolling an upgrade out over many schemas in steps.
#[derive(Debug, Clone, Default, Args)]
pub struct RolloutArgs {
    /// Migrate these first, on their own: a count (the first N selected schemas that need work) or
    /// comma-separated selected schemas; if any of them fails, no other schema is started.
    #[arg(long, value_name = "N|SCHEMAS", value_parser = clap::value_parser!(Canary))]
    pub canary: Option<Canary>,
    /// Then migrate the rest in waves of this many schemas; no wave starts after one in which a schema failed
    /// (within a wave, --keep-going decides).
    #[arg(long, value_name = "SIZE", value_parser = clap::value_parser!(u32).range(1..))]
    pub waves: Option<u32>,
    /// Pause after the canaries and between waves (`30s`, `5m`), to watch the service before going on.
    #[arg(long, value_parser = parse_duration)]
    pub wave_pause: Option<Duration>,
}

impl RolloutArgs {
    /// The rollout these options describe.
    pub fn rollout(&self) -> Rollout {
        Rollout { canary: self.canary.clone(), wave_size: self.waves.map(|size| size as usize) }
    }
}

/// `downgrade`'s options.
#[derive(Debug, Clone, Args)]
pub struct DowngradeArgs {
    /// `-1`, `-N`, a version, a migration's name, or `base`.
    #[arg(short, long, allow_hyphen_values = true)]
    pub target: String,
    /// What the planner accepts.
    #[command(flatten, next_help_heading = "Planner")]
    pub planner: AllowMissing,
    /// Connection, schemas, output, workers, limits, dry run and confirmation.
    #[command(flatten)]
    pub change: Change,
}

/// `resolve`'s options.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("outcome").required(true).args(["applied", "not_applied"]))]
pub struct ResolveArgs {
    /// The dirty version.
    #[arg(long)]
    pub version: i64,
    /// Its effects are in place: keep the record and mark it clean.
    #[arg(long)]
    pub applied: bool,
    /// Its effects are not in place: drop the record so the next upgrade runs it again.
    #[arg(long)]
    pub not_applied: bool,
    /// Connection, schemas, output, workers, limits, dry run and confirmation.
    #[command(flatten)]
    pub change: Change,
}

/// `baseline`'s options.
#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    /// The newest of this binary's migrations whose effects are already in the schema: its version, or its name.
    #[arg(long)]
    pub version: String,
    /// Connection, schemas, output, workers, limits, dry run and confirmation.
    #[command(flatten)]
    pub change: Change,
}

/// `adopt`'s options.
#[derive(Debug, Clone, Args)]
pub struct AdoptArgs {
    /// The tool whose history table to read.
    #[arg(long, value_enum)]
    pub from: FromTool,
    /// Connection, schemas, output, workers, limits, dry run and confirmation.
    #[command(flatten)]
    pub change: Change,
}

/// `adopt --from`: the tools whose history tables `adopt` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FromTool {
    /// sqlx (`sqlx migrate run`, `sqlx::migrate!`).
    Sqlx,
    /// diesel (`diesel migration run`, `diesel_migrations`).
    Diesel,
    /// refinery (`refinery migrate`, `embed_migrations!`).
    Refinery,
}

impl From<FromTool> for migrate_runtime::Tool {
    fn from(tool: FromTool) -> migrate_runtime::Tool {
        match tool {
            FromTool::Sqlx => migrate_runtime::Tool::Sqlx,
            FromTool::Diesel => migrate_runtime::Tool::Diesel,
            FromTool::Refinery => migrate_runtime::Tool::Refinery,
        }
    }
}

/// Dry run and confirmation, on every command that changes schemas.
#[derive(Debug, Clone, Default, Args)]
pub struct Danger {
    /// Print the plan and the exact SQL per schema; change nothing (and ask nothing).
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm changes to protected schemas ($MIGRATE_PROTECTED_SCHEMAS, names or globs; default prod) without
    /// asking; needed when not on a terminal.
    #[arg(long, short = 'y', visible_alias = "auto-confirm")]
    pub yes: bool,
}

/// Which schemas a command works on. Default: `DEFAULT_SCHEMA_NAME`, then `dev`. The four ways are exclusive.
#[derive(Debug, Clone, Default, Args)]
#[group(multiple = false)]
pub struct SchemaSelection {
    /// One schema (default: $DEFAULT_SCHEMA_NAME, then `dev`).
    #[arg(long, short = 's')]
    pub schema: Option<String>,
    /// Comma-separated schemas; `*` and `?` match existing schemas (`dev,prod,tenant-*`).
    #[arg(long, value_delimiter = ',')]
    pub schemas: Option<Vec<String>>,
    /// A file with one schema name a line.
    #[arg(long)]
    pub schemas_file: Option<PathBuf>,
    /// Every schema holding this service's history table (tables from before service markers included).
    #[arg(long)]
    pub all_schemas: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned tables and lines for people.
    #[default]
    Table,
    /// One JSON document on stdout.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "5", "s", "-1s", "1.5s", "5 s", "5d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_command_takes_only_its_options() {
        assert!(MigrateCommand::try_parse_from_args(["revision", "-m", "x", "--jobs", "2"]).is_err());
        assert!(MigrateCommand::try_parse_from_args(["status", "--dry-run"]).is_err());
        assert!(MigrateCommand::try_parse_from_args(["status", "--lock-wait", "1s"]).is_err());
        assert!(MigrateCommand::try_parse_from_args(["upgrade", "--allow-missing", "--yes", "-j", "2"]).is_ok());
        assert!(MigrateCommand::try_parse_from_args(["resolve", "--version", "3", "--applied", "--dry-run"]).is_ok());
        let error = MigrateCommand::try_parse_from_args(["resolve", "--version", "3"]).unwrap_err().to_string();
        assert!(error.contains("--applied") && error.contains("--not-applied"), "{error}");
        assert!(MigrateCommand::try_parse_from_args(["status", "-s", "a", "--schemas", "b"]).is_err());
        assert!(MigrateCommand::try_parse_from_args(["verify", "--all-schemas", "-j", "2", "--format", "json"]).is_ok());
        assert!(MigrateCommand::try_parse_from_args(["verify", "--dry-run"]).is_err());
        let diff = MigrateCommand::try_parse_from_args(["diff", "dev", "prod", "--sql"]).unwrap();
        assert!(matches!(&diff.command, Command::Diff(args) if args.a == "dev" && args.b == "prod" && args.sql));
        assert!(diff.common().is_none());
        assert!(MigrateCommand::try_parse_from_args(["diff", "dev"]).is_err());
        assert!(MigrateCommand::try_parse_from_args(["diff", "dev", "prod", "--schemas", "x"]).is_err());
    }
}
