use std::time::Duration;

use migrate_core::{Checksum, Direction};

use crate::report::StepReport;
use crate::schema::InvalidName;
use crate::session::{QueryError, SqlState};
use crate::target::WrongDirection;

/// Something went wrong while migrating or reading a schema: which schema ([`Error::schema`]), and what
/// ([`Error::kind`]). Every message names the schema and, where there is one, the version and file.
///
/// ```no_run
/// # use migrate_runtime::{embed_migrations, ErrorKind, MigrationSet, Migrator, Refusal};
/// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// match Migrator::new(&MIGRATIONS).migrate(&mut client, "tenant-1") {
///     Ok(_) => {}
///     Err(error) => match error.kind() {
///         ErrorKind::MigrationFailed { file, position, message, .. } => eprintln!("{file} {position:?}: {message}"),
///         ErrorKind::Refused(Refusal::ChecksumMismatch { file, .. }) => eprintln!("{file} was edited after it was applied"),
///         _ => eprintln!("{error}"),
///     },
/// }
/// ```
#[derive(Debug)]
pub struct Error {
    schema: String,
    kind: ErrorKind,
}

impl Error {
    /// An error about `schema`.
    pub fn new(schema: impl Into<String>, kind: impl Into<ErrorKind>) -> Error {
        Error { schema: schema.into(), kind: kind.into() }
    }

    /// The schema, as it was given (an invalid name too).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What went wrong, owned.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }

    /// The planner's refusal, when that is what it is: the schema was left as it was.
    pub fn refusal(&self) -> Option<&Refusal> {
        match &self.kind {
            ErrorKind::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// The steps that committed before the error: earlier migrations of a run whose later step failed.
    pub fn committed(&self) -> &[StepReport] {
        match &self.kind {
            ErrorKind::MigrationFailed { committed, .. } => committed,
            _ => &[],
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            // The refused name says itself what it was.
            ErrorKind::InvalidName(invalid) => invalid.fmt(f),
            kind => write!(f, "schema {:?}: {kind}", self.schema),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::InvalidName(invalid) => invalid.source(),
            kind => kind.source(),
        }
    }
}

/// What went wrong with one schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A schema or history-table name was refused before any SQL was built.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),

    /// The planner refused the operation; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),

    /// A migration's SQL failed; nothing of it was kept (unless it is a no-transaction migration, then it is dirty).
    #[error(
        "migration {version} ({file}) failed{at}: {message}{dirty}",
        at = position_text(*.position),
        dirty = dirty_text(*.left_dirty, *.version)
    )]
    MigrationFailed {
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
        "{} held the migration lock for all of {}: it may be migrating this schema now; retry later or raise the lock \
         wait", holder_text(.holder), human_duration(*.waited)
    )]
    LockTimeout {
        /// How long we waited.
        waited: Duration,
        /// Who held the lock when we gave up, if it could be seen.
        holder: Option<LockHolder>,
    },

    /// Another process took over a no-transaction migration while this one still ran it (its lease ran out).
    #[error(
        "migration {version} was taken over by another process while this one ran it: check its history row and the \
         schema before going on"
    )]
    ClaimLost {
        /// The version.
        version: i64,
    },

    /// The history table holds something this version cannot read.
    #[error("history table {table} holds an unreadable row: {problem}")]
    CorruptHistory {
        /// The history table.
        table: String,
        /// What could not be read.
        problem: String,
    },

    /// Talking to the server failed outside a migration's own SQL.
    #[error("could not {action}")]
    Database {
        /// What we were doing.
        action: &'static str,
        /// What the server (or the driver) said.
        #[source]
        source: QueryError,
    },
}

/// Why the planner refused an operation on a schema: the history does not match the binary, or the operation
/// cannot be done from where the schema stands. Nothing was changed. Pure: it names no schema (the [`Error`] that
/// carries it does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// An applied migration's file was edited after it was applied.
    #[error(
        "migration {version} ({file}) was edited after it was applied: the database recorded checksum {recorded}, \
         the binary has {embedded}; restore the file as it was applied, or, after review, repair the recorded checksum"
    )]
    ChecksumMismatch {
        /// The migration's version.
        version: i64,
        /// The edited file (up or down).
        file: String,
        /// The checksum in the history table.
        recorded: Checksum,
        /// The checksum of the embedded file.
        embedded: Checksum,
    },

    /// A version recorded in the database is not in this binary.
    #[error(
        "migration {version} ({name}) is applied but this binary does not have it: deploy a binary that has it, or \
         allow missing migrations if this is a rolled-back deploy"
    )]
    MissingFromBinary {
        /// The applied version.
        version: i64,
        /// Its recorded name.
        name: String,
    },

    /// A pending migration is numbered below the newest applied one.
    #[error(
        "migration {version} ({file}) is pending but numbered below the newest applied version {newest_applied}: \
         renumber it above {newest_applied}, or allow out-of-order migrations"
    )]
    OutOfOrder {
        /// The pending version.
        version: i64,
        /// Its file.
        file: String,
        /// The newest applied version.
        newest_applied: i64,
    },

    /// A no-transaction migration failed part-way in an earlier run.
    #[error(
        "migration {version} ({name}) is dirty: it runs outside a transaction and {}; fix the schema by hand, then \
         record the outcome", failure_text(.failure)
    )]
    Dirty {
        /// The dirty version.
        version: i64,
        /// Its recorded name.
        name: String,
        /// PostgreSQL's message from the failed statement, when recorded.
        failure: Option<String>,
    },

    /// A no-transaction migration was interrupted (its runner went away) while going the other way.
    #[error(
        "migration {version} ({name}) was interrupted part-way through {}: run {} again to resume it, or settle it",
        .direction.label(), if *.direction == Direction::Up { "upgrade" } else { "downgrade" }
    )]
    Interrupted {
        /// The interrupted version.
        version: i64,
        /// Its recorded name.
        name: String,
        /// Which way it was going.
        direction: Direction,
    },

    /// A no-transaction migration of the schema is running now, in another process.
    #[error("migration {version} is being run now by {runner:?}")]
    InProgress {
        /// The running version.
        version: i64,
        /// The runner's application name.
        runner: String,
    },

    /// An upgrade to a version this binary does not have.
    #[error("target version {target} is not in this binary's migrations")]
    TargetNotInSet {
        /// The target.
        target: i64,
    },

    /// An upgrade to a version below the schema's current one.
    #[error("target version {target} is below the current version {current}: use downgrade")]
    TargetBelowCurrent {
        /// The target.
        target: i64,
        /// The current version.
        current: i64,
    },

    /// A downgrade to a version that is not applied in the schema.
    #[error("target version {target} is not applied in this schema")]
    TargetNotApplied {
        /// The target.
        target: i64,
    },

    /// A target that points the other way (`upgrade` to `base` or `-N`, `downgrade` to `head` or `+N`).
    #[error(transparent)]
    WrongDirection(WrongDirection),

    /// `resolve` of a version that has no dirty record.
    #[error("nothing to resolve for version {version}: {problem}")]
    NothingToResolve {
        /// The version.
        version: i64,
        /// Why there is nothing to settle.
        problem: ResolveProblem,
    },

    /// A downgrade needs a down file that the binary does not have.
    #[error("cannot revert migration {version} ({file}): it has no down file; nothing was changed")]
    MissingDownFile {
        /// The version.
        version: i64,
        /// Its up file.
        file: String,
    },

    /// All-in-one-transaction mode was asked for, but a pending migration cannot run in a transaction.
    #[error(
        "migration {version} ({file}) is marked no-transaction, so the pending migrations cannot run in one \
         transaction: turn off single-transaction mode"
    )]
    NoTransactionInSingleTransaction {
        /// The no-transaction version.
        version: i64,
        /// Its file.
        file: String,
    },

    /// `baseline` or `adopt` of a schema that does not exist: they record history for objects that are there.
    #[error(
        "the schema does not exist: {operation} records migrations as applied to objects already in a schema; check \
         the name, or run upgrade to build a new schema"
    )]
    SchemaMissing {
        /// `baseline` or `adopt`.
        operation: &'static str,
    },

    /// `baseline --version N` of a schema whose history already has a migration ordered after N.
    #[error(
        "cannot baseline at version {version}: migration {applied} ({name}) is already applied and comes after it; \
         nothing was changed"
    )]
    BaselineBelowApplied {
        /// The version asked for.
        version: i64,
        /// The applied version after it.
        applied: i64,
        /// Its recorded name.
        name: String,
    },

    /// `adopt --from TOOL` found no history table of that tool in the schema.
    #[error("no {tool} history table {table} in it: nothing to adopt; for a schema built another way, use baseline")]
    ForeignHistoryMissing {
        /// The other tool.
        tool: crate::Tool,
        /// The table looked for.
        table: String,
    },

    /// Another tool's history records a version this binary does not have.
    #[error(
        "{tool} recorded migration {version} ({name}) as applied, but this binary does not have it: add that \
         migration's file to the migrations folder, then adopt again; nothing was changed"
    )]
    ForeignMissingFromBinary {
        /// The other tool.
        tool: crate::Tool,
        /// The version.
        version: i64,
        /// Its name in the tool's table, or the version again.
        name: String,
    },

    /// Another tool's history records a migration that failed (sqlx's `success = false`).
    #[error(
        "{tool} recorded migration {version} ({name}) as failed: its effects may be partly in place; fix the schema \
         and that tool's row by hand, then adopt again; nothing was changed"
    )]
    ForeignFailed {
        /// The other tool.
        tool: crate::Tool,
        /// The version.
        version: i64,
        /// Its name in the tool's table, or the version again.
        name: String,
    },

    /// Another tool's checksum of an applied migration does not match the embedded file.
    #[error(
        "migration {version} ({file}) differs from what {tool} applied: it recorded checksum {recorded}, the embedded \
         file gives {embedded}; restore the file as it was applied; nothing was changed"
    )]
    ForeignChecksumMismatch {
        /// The other tool.
        tool: crate::Tool,
        /// The version.
        version: i64,
        /// The embedded file.
        file: String,
        /// The checksum in the tool's table (in that tool's algorithm: sqlx's SHA-384, refinery's SipHash).
        recorded: String,
        /// The same checksum computed from the embedded file.
        embedded: String,
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
    match left_dirty {
        true => format!(
            "; it runs outside a transaction, so migration {version} is now dirty: fix the schema by hand, then record \
             the outcome"
        ),
        false => String::new(),
    }
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
