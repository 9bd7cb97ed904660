use std::time::Duration;

use crate::model::StepReport;
use crate::plan::Refusal;
use crate::schema::InvalidName;
use crate::session::{QueryError, SqlState};

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
            ErrorKind::MigrationFailed { committed, .. }
            | ErrorKind::Interrupted { committed }
            | ErrorKind::TableLocked { committed, .. } => committed,
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

    /// A migration waited for a table lock longer than `lock_timeout`, on every attempt: another transaction holds a
    /// lock on a table it changes. Each attempt was rolled back whole, so nothing of it was applied and the tenant's
    /// queries were held up for at most `lock_timeout` at a time.
    #[error(
        "migration {version} ({file}) could not lock a table within {} (lock_timeout), {attempts} attempt(s), and {}{}: \
         another transaction holds a lock on a table it changes; run again once that transaction ends \
         (pg_stat_activity shows it), or raise --lock-timeout",
        human_duration(*.lock_timeout),
        rolled_back_text(*.resumes_at),
        committed_text(.committed)
    )]
    TableLocked {
        /// The version.
        version: i64,
        /// The migration's file.
        file: String,
        /// The `lock_timeout` each attempt ran under.
        lock_timeout: Duration,
        /// How many times it was tried.
        attempts: u32,
        /// The steps of this run that committed before it.
        committed: Vec<StepReport>,
        /// For a no-transaction migration: its statement (from 1) that could not lock, rolled back (one statement is
        /// atomic), where the next run resumes; the statements before it stay done and the migration is dirty
        /// until then. `None` for a migration in a transaction, rolled back whole.
        resumes_at: Option<usize>,
    },

    /// The run was stopped from outside (the CLI on SIGINT or SIGTERM, through [`Migrator::interrupted_by`]): the
    /// query in flight was canceled and rolled back, a no-transaction migration in flight is left to be resumed;
    /// `committed` lists what committed before.
    ///
    /// [`Migrator::interrupted_by`]: crate::Migrator::interrupted_by
    #[error("the run was interrupted{}: what was in flight was rolled back", committed_text(.committed))]
    Interrupted {
        /// The steps of this run that committed before the interruption.
        committed: Vec<StepReport>,
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

    /// The schema's table of the history table's name was not made by this tool: it lacks the columns this tool
    /// records (Rails, golang-migrate and dbmate name theirs `schema_migrations` too).
    #[error(
        "table {table} was not made by this tool (it has no {column} column; Rails, golang-migrate and dbmate name \
         their history table schema_migrations too): give this tool a history table of its own; nothing was changed"
    )]
    NotOurHistoryTable {
        /// The table.
        table: String,
        /// A column this tool records that the table lacks.
        column: String,
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

fn rolled_back_text(resumes_at: Option<usize>) -> String {
    match resumes_at {
        None => "was rolled back whole".to_owned(),
        Some(statement) => format!(
            "its statement {statement} was rolled back (it runs outside a transaction: the statements before it stay \
             done, and the next run resumes at statement {statement})"
        ),
    }
}

fn committed_text(committed: &[StepReport]) -> String {
    match committed.len() {
        0 => String::new(),
        n => format!(" after {n} step(s) committed"),
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

fn position_text(position: Option<(usize, usize)>) -> String {
    position.map(|(line, column)| format!(" at line {line}, column {column}")).unwrap_or_default()
}
