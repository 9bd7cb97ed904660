use std::time::Duration;

use crate::schema::InvalidName;

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
        "schema {schema:?}: migration {version} ({name}) is dirty: it runs outside a transaction and an earlier run \
         failed part-way; fix the schema by hand, then record the outcome with `migrate resolve --version {version} \
         --applied` (its effects are in place) or `--not-applied` (the next upgrade runs it again; add \
         --allow-out-of-order if newer versions are applied)"
    )]
    Dirty {
        /// The schema.
        schema: String,
        /// The dirty version.
        version: i64,
        /// Its recorded name.
        name: String,
    },

    /// The requested target cannot be reached.
    #[error("schema {schema:?}: {problem}")]
    BadTarget {
        /// The schema.
        schema: String,
        /// What is wrong with the target and what to do.
        problem: String,
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
    #[error("schema {schema:?}: migration {version} ({file}) failed{at}: {message}", at = position_text(*.position))]
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
    },

    /// Another process held the migration lock for longer than the configured wait.
    #[error(
        "schema {schema:?}: another process held the migration lock for {waited:?}: it may be migrating this schema \
         now; retry later or raise the lock wait"
    )]
    LockTimeout {
        /// The schema.
        schema: String,
        /// How long we waited.
        waited: Duration,
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

fn position_text(position: Option<(usize, usize)>) -> String {
    position.map(|(line, column)| format!(" at line {line}, column {column}")).unwrap_or_default()
}

impl Error {
    /// The schema the error is about, when it is about one.
    pub fn schema(&self) -> Option<&str> {
        match self {
            Error::InvalidName(_) | Error::Connect { .. } => None,
            Error::ChecksumMismatch { schema, .. }
            | Error::MissingFromBinary { schema, .. }
            | Error::OutOfOrder { schema, .. }
            | Error::Dirty { schema, .. }
            | Error::BadTarget { schema, .. }
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
