use std::time::Duration;

use migrate_core::Direction;

use crate::report::StepReport;
use crate::schema::InvalidName;
use crate::Target;

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
    #[error("schema {schema:?}: {}", wrong_direction_text(*.target, *.direction))]
    WrongDirection {
        /// The schema.
        schema: String,
        /// The target as given.
        target: Target,
        /// Which way the command moves: up for upgrade, down for downgrade.
        direction: Direction,
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
        code: Option<String>,
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

    /// Connecting to a database failed (before any schema was touched).
    #[error("could not connect to {database}")]
    Connect {
        /// `host:port/database`, never the password.
        database: String,
        /// Why.
        #[source]
        source: crate::ConnectError,
    },

    /// Reading a database's catalog for many schemas at once failed.
    #[error("{database}: could not {action}")]
    Catalog {
        /// `host:port/database`, never the password.
        database: String,
        /// What we were doing.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// Talking to the server failed outside a migration's own SQL.
    #[error("schema {schema:?}: could not {action}")]
    Database {
        /// The schema.
        schema: String,
        /// What we were doing.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// Reading catalogs or history tables to compare structures failed.
    #[error("could not {action} of {}", schema_list(.schemas))]
    StructureQuery {
        /// The schemas being read.
        schemas: Vec<String>,
        /// What we were doing.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// A schema to compare does not exist.
    #[error("schema {schema:?} does not exist")]
    NoSuchSchema {
        /// The schema.
        schema: String,
    },

    /// Building the reference structure failed: a migration's SQL failed in the scratch schema (which was rolled
    /// back).
    #[error(
        "schema {schema:?} (scratch schema of the reference build): migration {version} ({file}) failed: {message}; \
         nothing was kept"
    )]
    ReferenceFailed {
        /// The scratch schema.
        schema: String,
        /// The version.
        version: i64,
        /// The file that failed.
        file: String,
        /// PostgreSQL's SQLSTATE code; `None` when the connection failed rather than the SQL.
        code: Option<String>,
        /// PostgreSQL's message, with its detail and hint.
        message: String,
    },

    /// A statement of a no-transaction migration cannot run inside the reference build's transaction, even with
    /// `CONCURRENTLY` removed.
    #[error(
        "schema {schema:?} (scratch schema of the reference build): migration {version} ({file}) runs outside a \
         transaction and its statement `{statement}` cannot run inside one ({message}): its reference structure \
         cannot be built; nothing was kept"
    )]
    NotTransactional {
        /// The scratch schema.
        schema: String,
        /// The version.
        version: i64,
        /// The no-transaction file.
        file: String,
        /// The statement, shortened.
        statement: String,
        /// PostgreSQL's message.
        message: String,
    },
}

/// `schema "a"`, `schemas "a" and "b"`, `3 schemas ("a", "b", ...)`.
fn schema_list(schemas: &[String]) -> String {
    match schemas {
        [] => "no schema".to_owned(),
        [one] => format!("schema {one:?}"),
        [a, b] => format!("schemas {a:?} and {b:?}"),
        [a, b, ..] => format!("{} schemas ({a:?}, {b:?}, ...)", schemas.len()),
    }
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

pub(crate) fn wrong_direction_text(target: Target, direction: Direction) -> String {
    match direction {
        Direction::Up => format!("cannot upgrade to `{target}`: use head, a version or +N (downgrade goes down)"),
        Direction::Down => format!("cannot downgrade to `{target}`: use base, a version or -N (upgrade goes up)"),
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
            Error::InvalidName(_) | Error::Connect { .. } | Error::Catalog { .. } => None,
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
            | Error::Database { schema, .. }
            | Error::NoSuchSchema { schema }
            | Error::ReferenceFailed { schema, .. }
            | Error::NotTransactional { schema, .. } => Some(schema),
            Error::StructureQuery { schemas, .. } => match &schemas[..] {
                [one] => Some(one),
                _ => None,
            },
        }
    }
}
