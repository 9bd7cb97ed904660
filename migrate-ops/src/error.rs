//! What can go wrong in an operation over many schemas: a schema's own error from the runtime, connecting to a
//! database, reading its catalog, or comparing structures.

use migrate_runtime::{ConnectError, InvalidName, SqlState, StepReport};

/// An operation's failure, for one schema or for one database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Migrating or reading one schema failed (the runtime's error, naming the schema).
    #[error(transparent)]
    Migrate(#[from] migrate_runtime::Error),

    /// Comparing structures failed.
    #[error(transparent)]
    Structure(#[from] StructureError),

    /// Connecting to a database failed (before any schema was touched).
    #[error("could not connect to {database}")]
    Connect {
        /// `host:port/database`, never the password.
        database: String,
        /// Why.
        #[source]
        source: ConnectError,
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
}

impl Error {
    /// The steps that committed before the error: earlier migrations of a run whose later step failed.
    pub fn committed(&self) -> &[StepReport] {
        match self {
            Error::Migrate(error) => error.committed(),
            _ => &[],
        }
    }

    /// The schema the error is about, when it is about one.
    pub fn schema(&self) -> Option<&str> {
        match self {
            Error::Migrate(error) => Some(error.schema()),
            Error::Structure(error) => error.schema(),
            Error::Connect { .. } | Error::Catalog { .. } => None,
        }
    }
}

/// Why structures could not be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StructureError {
    /// The history table's name was refused before any SQL was built.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),

    /// Reading catalogs or history tables to compare structures failed.
    #[error("could not {action} of {}", schema_list(.schemas))]
    Query {
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
        code: Option<SqlState>,
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

impl StructureError {
    /// The schema the error is about, when it is about one.
    pub fn schema(&self) -> Option<&str> {
        match self {
            StructureError::InvalidName(_) => None,
            StructureError::NoSuchSchema { schema }
            | StructureError::ReferenceFailed { schema, .. }
            | StructureError::NotTransactional { schema, .. } => Some(schema),
            StructureError::Query { schemas, .. } => match &schemas[..] {
                [one] => Some(one),
                _ => None,
            },
        }
    }
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
