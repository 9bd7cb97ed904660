use std::time::Duration;

use migrate_core::Direction;

use crate::report::StepReport;
use crate::schema::InvalidName;
use crate::session::{QueryError, SqlState};
use crate::target::WrongDirection;

/// Everything that can go wrong while migrating a schema. Every message names the schema and, where there is one,
/// the version and file.
///
/// ```no_run
/// # use migrate_runtime::{embed_migrations, Error, MigrationSet, Migrator};
/// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// match Migrator::new(&MIGRATIONS).migrate(&mut client, "tenant-1") {
///     Ok(_) => {}
///     Err(Error::MigrationFailed { file, position, message, .. }) => eprintln!("{file} {position:?}: {message}"),
///     Err(Error::ChecksumMismatch { file, .. }) => eprintln!("{file} was edited after it was applied"),
///     Err(other) => eprintln!("{other}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A schema or history-table name was refused before any SQL was built.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),

    /// An applied migration's file was edited after it was applied.
    #[error(
        "schema {schema:?}: migration {version} ({file}) was edited after it was applied: the database recorded \
         checksum {recorded}, the binary has {embedded}; restore the file as it was applied, or, after review, \
         repair the recorded checksum"
    )]
    ChecksumMismatch {
        /// The schema.
        schema: String,
        /// The migration's version.
        version: i64,
        /// The edited file (up or down).
        file: String,
        /// The checksum in the history table.
        recorded: String,
        /// The checksum of the embedded file.
        embedded: String,
    },

    /// A version recorded in the database is not in this binary.
    #[error(
        "schema {schema:?}: migration {version} ({name}) is applied but this binary does not have it: deploy a binary \
         that has it, or allow missing migrations if this is a rolled-back deploy"
    )]
    MissingFromBinary {
        /// The schema.
        schema: String,
        /// The applied version.
        version: i64,
        /// Its recorded name.
        name: String,
    },

    /// A pending migration is numbered below the newest applied one.
    #[error(
        "schema {schema:?}: migration {version} ({file}) is pending but numbered below the newest applied version \
         {newest_applied}: renumber it above {newest_applied}, or allow out-of-order migrations"
    )]
    OutOfOrder {
        /// The schema.
        schema: String,
        /// The pending version.
        version: i64,
        /// Its file.
        file: String,
        /// The newest applied version.
        newest_applied: i64,
    },

    /// A no-transaction migration failed part-way in an earlier run.
    #[error(
        "schema {schema:?}: migration {version} ({name}) is dirty: it runs outside a transaction and {}; fix the \
         schema by hand, then record the outcome with `migrate resolve --version {version} --applied` (its effects are \
         in place) or `--not-applied` (the next upgrade runs it again; add --allow-out-of-order if newer versions are \
         applied)", failure_text(.failure)
    )]
    Dirty {
        /// The schema.
        schema: String,
        /// The dirty version.
        version: i64,
        /// Its recorded name.
        name: String,
        /// PostgreSQL's message from the failed statement, when recorded.
        failure: Option<String>,
    },

    /// A no-transaction migration was interrupted (its runner went away) while going the other way.
    #[error(
        "schema {schema:?}: migration {version} ({name}) was interrupted part-way through {}: run {} again to resume \
         it, or settle it with `migrate resolve --version {version} --applied` or `--not-applied`",
        .direction.label(), if *.direction == Direction::Up { "upgrade" } else { "downgrade" }
    )]
    Interrupted {
        /// The schema.
        schema: String,
        /// The interrupted version.
        version: i64,
        /// Its recorded name.
        name: String,
        /// Which way it was going.
        direction: Direction,
    },

    /// A no-transaction migration of the schema is running now, in another process.
    #[error("schema {schema:?}: migration {version} is being run now by {runner:?}")]
    InProgress {
        /// The schema.
        schema: String,
        /// The running version.
        version: i64,
        /// The runner's application name.
        runner: String,
    },

    /// An upgrade to a version this binary does not have.
    #[error("schema {schema:?}: target version {target} is not in this binary's migrations")]
    TargetNotInSet {
        /// The schema.
        schema: String,
        /// The requested version.
        target: i64,
    },

    /// An upgrade to a version below the schema's current one.
    #[error("schema {schema:?}: target version {target} is below the current version {current}: use downgrade")]
    TargetBelowCurrent {
        /// The schema.
        schema: String,
        /// The requested version.
        target: i64,
        /// The newest applied version.
        current: i64,
    },

    /// A downgrade to a version that is not applied in the schema.
    #[error("schema {schema:?}: target version {target} is not applied in this schema")]
    TargetNotApplied {
        /// The schema.
        schema: String,
        /// The requested version.
        target: i64,
    },

    /// A target that points the other way (`upgrade` to `base` or `-N`, `downgrade` to `head` or `+N`).
    #[error("schema {schema:?}: {refused}")]
    WrongDirection {
        /// The schema.
        schema: String,
        /// The target and the command's direction.
        refused: WrongDirection,
    },

    /// `resolve` of a version that has no dirty record.
    #[error("schema {schema:?}: nothing to resolve for version {version}: {problem}")]
    NothingToResolve {
        /// The schema.
        schema: String,
        /// The version asked for.
        version: i64,
        /// Why there is nothing to resolve.
        problem: ResolveProblem,
    },

    /// A downgrade needs a down file that the binary does not have.
    #[error("schema {schema:?}: cannot revert migration {version} ({file}): it has no down file; nothing was changed")]
    MissingDownFile {
        /// The schema.
        schema: String,
        /// The version that cannot be reverted.
        version: i64,
        /// Its up file.
        file: String,
    },

    /// All-in-one-transaction mode was asked for, but a pending migration cannot run in a transaction.
    #[error(
        "schema {schema:?}: migration {version} ({file}) is marked no-transaction, so the pending migrations cannot \
         run in one transaction: turn off single-transaction mode"
    )]
    NoTransactionInSingleTransaction {
        /// The schema.
        schema: String,
        /// The version.
        version: i64,
        /// Its file.
        file: String,
    },

    /// A migration's SQL failed; nothing of it was kept (unless it is a no-transaction migration, then it is dirty).
    #[error(
        "schema {schema:?}: migration {version} ({file}) failed{at}: {message}{dirty}",
        at = position_text(*.position), dirty = dirty_text(*.left_dirty, *.version)
    )]
    MigrationFailed {
        /// The schema.
        schema: String,
        /// The version.
        version: i64,
        /// The file that failed.
        file: String,
        /// PostgreSQL's SQLSTATE code; `None` when the connection failed rather than the SQL.
        code: Option<SqlState>,
        /// PostgreSQL's message, with its detail and hint.
        message: String,
        /// Line and column in the file, when PostgreSQL reported a position.
        position: Option<(usize, usize)>,
        /// The steps of this run that committed before the failure (earlier migrations in their own transactions).
        committed: Vec<StepReport>,
        /// It runs outside a transaction: its history row is now dirty.
        left_dirty: bool,
    },

    /// Another process held the migration lock for longer than the configured wait.
    #[error(
        "schema {schema:?}: {} held the migration lock for all of {}: it may be migrating this schema now; retry \
         later or raise the lock wait", holder_text(.holder), human_duration(*.waited)
    )]
    LockTimeout {
        /// The schema.
        schema: String,
        /// How long we waited.
        waited: Duration,
        /// Who held it when we gave up, when it could be seen.
        holder: Option<LockHolder>,
    },

    /// Another process took over a no-transaction migration while this one still ran it (its lease ran out).
    #[error(
        "schema {schema:?}: migration {version} was taken over by another process while this one ran it: check its \
         history row and the schema before going on"
    )]
    ClaimLost {
        /// The schema.
        schema: String,
        /// The version.
        version: i64,
    },

    /// `baseline` or `adopt` of a schema that does not exist: they record history for objects that are there.
    #[error(
        "schema {schema:?} does not exist: {operation} records migrations as applied to objects already in a schema; \
         check the name, or run upgrade to build a new schema"
    )]
    SchemaMissing {
        /// The schema.
        schema: String,
        /// `baseline` or `adopt`.
        operation: &'static str,
    },

    /// `baseline --version N` of a schema whose history already has a migration ordered after N.
    #[error(
        "schema {schema:?}: cannot baseline at version {version}: migration {applied} ({name}) is already applied and \
         comes after it; nothing was changed"
    )]
    BaselineBelowApplied {
        /// The schema.
        schema: String,
        /// The baseline version asked for.
        version: i64,
        /// An applied version after it.
        applied: i64,
        /// Its recorded name.
        name: String,
    },

    /// `adopt --from TOOL` found no history table of that tool in the schema.
    #[error(
        "schema {schema:?}: no {tool} history table {table} in it: nothing to adopt; for a schema built another way, \
         use baseline"
    )]
    ForeignHistoryMissing {
        /// The schema.
        schema: String,
        /// The other tool.
        tool: crate::Tool,
        /// Its table's name.
        table: String,
    },

    /// Another tool's history records a version this binary does not have.
    #[error(
        "schema {schema:?}: {tool} recorded migration {version} ({name}) as applied, but this binary does not have it: \
         add that migration's file to the migrations folder, then adopt again; nothing was changed"
    )]
    ForeignMissingFromBinary {
        /// The schema.
        schema: String,
        /// The other tool.
        tool: crate::Tool,
        /// The version it recorded.
        version: i64,
        /// The name it recorded.
        name: String,
    },

    /// Another tool's history records a migration that failed (sqlx's `success = false`).
    #[error(
        "schema {schema:?}: {tool} recorded migration {version} ({name}) as failed: its effects may be partly in \
         place; fix the schema and that tool's row by hand, then adopt again; nothing was changed"
    )]
    ForeignFailed {
        /// The schema.
        schema: String,
        /// The other tool.
        tool: crate::Tool,
        /// The failed version.
        version: i64,
        /// The name it recorded.
        name: String,
    },

    /// Another tool's checksum of an applied migration does not match the embedded file.
    #[error(
        "schema {schema:?}: migration {version} ({file}) differs from what {tool} applied: it recorded checksum \
         {recorded}, the embedded file gives {embedded}; restore the file as it was applied; nothing was changed"
    )]
    ForeignChecksumMismatch {
        /// The schema.
        schema: String,
        /// The other tool.
        tool: crate::Tool,
        /// The version.
        version: i64,
        /// The embedded file.
        file: String,
        /// The checksum in the tool's table.
        recorded: String,
        /// The same checksum computed from the embedded file.
        embedded: String,
    },

    /// The history table holds something this version cannot read.
    #[error("schema {schema:?}: history table {table} holds an unreadable row: {problem}")]
    CorruptHistory {
        /// The schema.
        schema: String,
        /// The history table.
        table: String,
        /// What could not be read.
        problem: String,
    },

    /// Talking to the server failed outside a migration's own SQL.
    #[error("schema {schema:?}: could not {action}")]
    Database {
        /// The schema.
        schema: String,
        /// What we were doing.
        action: &'static str,
        /// What the server (or the driver) said.
        #[source]
        source: QueryError,
    },
}

/// Who holds a schema's migration lock, or runs its no-transaction migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    /// Its connection's `application_name`.
    pub application_name: String,
    /// Its client address; `None` over a Unix socket.
    pub client_addr: Option<String>,
    /// Its backend's process id.
    pub pid: i32,
    /// How long it has held it (since its transaction or statement began).
    pub held_for: Duration,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name =
            if self.application_name.is_empty() { "a client with no application name" } else { &self.application_name };
        write!(f, "{name:?} (backend pid {}", self.pid)?;
        if let Some(addr) = &self.client_addr {
            write!(f, ", from {addr}")?;
        }
        write!(f, ", for {})", human_duration(self.held_for))
    }
}

/// A duration for people: `850 ms`, `12 s`, `3 min 5 s`, `2 h 10 min`.
pub fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64().round() as u64;
    match seconds {
        _ if duration < Duration::from_secs(1) => format!("{} ms", duration.as_millis()),
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

fn holder_text(holder: &Option<LockHolder>) -> String {
    holder.as_ref().map_or("another process".to_owned(), ToString::to_string)
}

fn failure_text(failure: &Option<String>) -> String {
    match failure {
        Some(message) => format!("an earlier run failed part-way: {message}"),
        None => "an earlier run stopped part-way (this tool could not tell whether it failed)".to_owned(),
    }
}

fn dirty_text(left_dirty: bool, version: i64) -> String {
    if !left_dirty {
        return String::new();
    }
    format!(
        "; it runs outside a transaction, so migration {version} is now dirty: fix the schema by hand, then run \
         `migrate resolve --version {version} --applied` (its effects are in place) or `--not-applied`"
    )
}

/// Why `resolve` found nothing to settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolveProblem {
    /// The version has no history row.
    NoHistoryRow,
    /// The version's row is clean.
    NotDirty,
}

impl std::fmt::Display for ResolveProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ResolveProblem::NoHistoryRow => "it has no history row",
            ResolveProblem::NotDirty => "it is not dirty",
        })
    }
}

fn position_text(position: Option<(usize, usize)>) -> String {
    position.map(|(line, column)| format!(" at line {line}, column {column}")).unwrap_or_default()
}

impl Error {
    /// The steps that committed before the error: earlier migrations of a run whose later step failed.
    pub fn committed(&self) -> &[StepReport] {
        match self {
            Error::MigrationFailed { committed, .. } => committed,
            _ => &[],
        }
    }

    /// The schema the error is about, when it is about one.
    pub fn schema(&self) -> Option<&str> {
        match self {
            Error::InvalidName(_) => None,
            Error::ChecksumMismatch { schema, .. }
            | Error::MissingFromBinary { schema, .. }
            | Error::OutOfOrder { schema, .. }
            | Error::Dirty { schema, .. }
            | Error::Interrupted { schema, .. }
            | Error::InProgress { schema, .. }
            | Error::ClaimLost { schema, .. }
            | Error::TargetNotInSet { schema, .. }
            | Error::TargetBelowCurrent { schema, .. }
            | Error::TargetNotApplied { schema, .. }
            | Error::WrongDirection { schema, .. }
            | Error::NothingToResolve { schema, .. }
            | Error::MissingDownFile { schema, .. }
            | Error::NoTransactionInSingleTransaction { schema, .. }
            | Error::MigrationFailed { schema, .. }
            | Error::LockTimeout { schema, .. }
            | Error::CorruptHistory { schema, .. }
            | Error::SchemaMissing { schema, .. }
            | Error::BaselineBelowApplied { schema, .. }
            | Error::ForeignHistoryMissing { schema, .. }
            | Error::ForeignMissingFromBinary { schema, .. }
            | Error::ForeignFailed { schema, .. }
            | Error::ForeignChecksumMismatch { schema, .. }
            | Error::Database { schema, .. } => Some(schema),
        }
    }
}
