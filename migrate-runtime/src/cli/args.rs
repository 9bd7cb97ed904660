//! The command line, as clap derive types. A service mounts [`MigrateCommand`] as one of its subcommands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

/// Operate on this binary's embedded migrations: `reset`, `revision`, `upgrade`, `downgrade`, `current`,
/// `history`, `status`, over one schema or many.
#[derive(Debug, Clone, Args)]
pub struct MigrateCommand {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Which schemas.
    #[command(flatten)]
    pub schemas: SchemaSelection,
    /// Connection string of the database; repeat it to work on several databases or servers at once.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Vec<String>,
    /// Output for people (`table`) or scripts (`json`).
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    /// Schemas migrated at once, each on its own connection (default: twice the cores, at most 16).
    #[arg(long, short = 'j', global = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Go on with the other schemas after one fails (default: stop starting new ones).
    #[arg(long, global = true)]
    pub keep_going: bool,
    /// Safety limits and planner options.
    #[command(flatten)]
    pub limits: Limits,
}

/// Safety limits and planner options, on every command.
#[derive(Debug, Clone, Default, Args)]
pub struct Limits {
    /// `lock_timeout` for migration SQL (`5s`, `500ms`): a migration waiting on a busy table fails instead of
    /// stalling the application behind it.
    #[arg(long, global = true, value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,
    /// `statement_timeout` for migration SQL (`10m`, `30s`).
    #[arg(long, global = true, value_parser = parse_duration)]
    pub statement_timeout: Option<Duration>,
    /// How long to wait for another process's migration lock on a schema before giving up (`30s`).
    #[arg(long, global = true, value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
    /// Apply pending migrations numbered below the newest applied one instead of refusing.
    #[arg(long, global = true)]
    pub allow_out_of_order: bool,
    /// Accept applied versions this binary does not have (a rolled-back deploy) instead of refusing.
    #[arg(long, global = true)]
    pub allow_missing: bool,
    /// Shared schemas after each schema in its migrations' `search_path` (`extensions,public`), where extensions
    /// were installed once.
    #[arg(long, global = true, env = "MIGRATE_EXTRA_SEARCH_PATH", value_delimiter = ',')]
    pub extra_search_path: Vec<String>,
}

/// `250ms`, `5s`, `2m`, `1h`: a whole number and a unit.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid =
        || format!("invalid duration {text:?}: expected a whole number and a unit, such as 500ms, 5s, 2m or 1h");
    let number: u64 = number.parse().map_err(|_| invalid())?;
    let millis = match unit {
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
    /// let command = migrate_runtime::cli::MigrateCommand::try_parse_from_args(["status", "--schemas", "dev,prod"]).unwrap();
    /// assert!(matches!(command.command, migrate_runtime::cli::Command::Status));
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
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Drop each schema with everything in it, recreate it and apply every migration.
    Reset(Danger),
    /// Write the next `{version}_{slug}.up.sql` / `.down.sql` pair into the source migrations folder.
    Revision {
        /// What the migration does; becomes its file name.
        #[arg(short, long)]
        message: String,
        /// Write into this folder instead of the one the binary was built from.
        #[arg(long)]
        migrations_dir: Option<PathBuf>,
    },
    /// Apply pending migrations.
    Upgrade {
        /// `head`, a version, `+N`, or a migration's name.
        #[arg(short, long, default_value = "head", allow_hyphen_values = true)]
        target: String,
        /// Dry run and confirmation (`--yes` is accepted for scripts; only reset and downgrade ask).
        #[command(flatten)]
        danger: Danger,
    },
    /// Revert applied migrations, newest first.
    Downgrade {
        /// `-1`, `-N`, a version, a migration's name, or `base`.
        #[arg(short, long, allow_hyphen_values = true)]
        target: String,
        /// Dry run and confirmation.
        #[command(flatten)]
        danger: Danger,
    },
    /// After reviewing edited migration files: record the binary's checksums for the applied migrations.
    Repair(Danger),
    /// Settle a dirty no-transaction migration after fixing the schema by hand.
    Resolve {
        /// The dirty version.
        #[arg(long)]
        version: i64,
        /// Its effects are in place: keep the record and mark it clean.
        #[arg(long, conflicts_with = "not_applied", required_unless_present = "not_applied")]
        applied: bool,
        /// Its effects are not in place: drop the record so the next upgrade runs it again.
        #[arg(long)]
        not_applied: bool,
    },
    /// Record every migration up to a version as applied without running it, for a schema built by another tool or
    /// by hand (from Alembic, for example).
    Baseline {
        /// The newest of this binary's migrations whose effects are already in the schema.
        #[arg(long)]
        version: i64,
        /// Dry run and confirmation (protected schemas ask, as for repair).
        #[command(flatten)]
        danger: Danger,
    },
    /// Record as applied what sqlx, diesel or refinery recorded in its own history table in the schema (left in
    /// place).
    Adopt {
        /// The tool whose history table to read.
        #[arg(long, value_enum)]
        from: crate::Tool,
        /// Dry run (`--yes` is accepted for scripts).
        #[command(flatten)]
        danger: Danger,
    },
    /// Each schema's version and whether it is at head, behind, ahead of the binary, or drifted.
    Current,
    /// Every migration, applied (when, how long, by whom) or pending, with checksum mismatches marked.
    History,
    /// One row per schema: version, pending count, problems.
    Status,
}

/// Options of the commands that destroy data.
#[derive(Debug, Clone, Args)]
pub struct Danger {
    /// Print the plan and the exact SQL per schema; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm for protected schemas without asking (needed when not on a terminal).
    #[arg(long, short = 'y', alias = "auto-confirm")]
    pub yes: bool,
}

/// Which schemas a command works on. Default: `DEFAULT_SCHEMA_NAME`, then `dev`.
/// The four ways are exclusive (clap's argument groups do not apply to global arguments, hence `conflicts_with`).
#[derive(Debug, Clone, Default, Args)]
pub struct SchemaSelection {
    /// One schema.
    #[arg(long, short = 's', global = true, conflicts_with_all = ["schemas", "schemas_file", "all_schemas"])]
    pub schema: Option<String>,
    /// Comma-separated schemas; `*` and `?` match existing schemas (`dev,prod,tenant-*`).
    #[arg(long, global = true, value_delimiter = ',', conflicts_with_all = ["schemas_file", "all_schemas"])]
    pub schemas: Option<Vec<String>>,
    /// A file with one schema name a line.
    #[arg(long, global = true, conflicts_with = "all_schemas")]
    pub schemas_file: Option<PathBuf>,
    /// Every schema that holds this service's history table.
    #[arg(long, global = true)]
    pub all_schemas: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned tables and lines for people.
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
}
