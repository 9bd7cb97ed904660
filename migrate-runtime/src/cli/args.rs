//! The command line, as clap derive types. A service mounts [`MigrateCommand`] as one of its subcommands.

use std::path::PathBuf;

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
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres", global = true, hide_env_values = true)]
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
