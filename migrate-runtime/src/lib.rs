//! Apply SQL migrations, embedded in the binary at compile time, to a PostgreSQL schema at service boot.
//!
//! ```no_run
//! use migrate_runtime::{embed_migrations, MigrationSet, Migrator};
//!
//! static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls)?;
//!     let schema = std::env::var("DEFAULT_SCHEMA_NAME").unwrap_or_else(|_| "dev".into());
//!     let report = Migrator::new(&MIGRATIONS).migrate(&mut client, &schema)?;
//!     println!("schema {} at version {:?}", report.schema, report.version_after);
//!     Ok(())
//! }
//! ```
//!
//! What happens at boot:
//! - the history table (`schema_migrations` in the target schema) is read in one round trip; when nothing is
//!   pending and every checksum matches, that is all;
//! - otherwise a transaction-level advisory lock keyed on the database and schema is taken in the transaction that
//!   re-reads the history, so replicas booting together apply each migration exactly once while other schemas never
//!   wait, also behind a transaction pooler; the schema and history table are created if missing;
//! - each migration runs in its own transaction with `SET LOCAL search_path` to the schema, and its history row
//!   commits with it (no-transaction migrations excepted), or all in one transaction with
//!   [`Migrator::single_transaction`];
//! - the lock ends with the transaction that holds it, on every path; a no-transaction migration is claimed in its
//!   history row and resumed by the next run if this one is killed.
#![forbid(unsafe_code)]
// docs.rs (`[package.metadata.docs.rs]`) builds with every feature and marks what needs which.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]
// An `Error` is returned at most once per schema, after at least one round trip: its size does not matter, and the
// fields it carries (file, message, what committed) are what an operator needs.
#![allow(clippy::result_large_err)]

mod app_schema;
mod compile;
mod database;
mod engine;
mod error;
mod foreign;
mod migrator;
mod model;
mod plan;
mod schema;
mod session;
#[cfg(any(feature = "diesel", feature = "diesel-async"))]
mod session_diesel;
#[cfg(feature = "sqlx")]
mod session_sqlx;
mod set;
pub mod sql;
mod target;

/// What the runtime leaves in the catalog for tools that survey many schemas without opening their history tables
/// (`migrate-ops`): the digest comment a trigger keeps on every history table, and the owning service's name in
/// the comment on its `version` column.
pub mod catalog {
    pub use crate::compile::history::{
        clean_digest_comment, digest_of_rows_sql, digest_query_for_format, DIGEST_FUNCTION, DIGEST_PREFIX,
        SERVICE_PREFIX,
    };
}

pub use app_schema::{
    begin_in_schema, begin_in_schema_with, check_schema, check_session_schema, in_schema, in_schema_with,
    SchemaCheckError, SearchPathScope,
};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use app_schema::{
    begin_in_schema_async, begin_in_schema_with_async, check_schema_async, check_session_schema_async, in_schema_async,
    in_schema_with_async,
};
pub use compile::history::{binary_name, migration_lock_key, DEFAULT_HISTORY_TABLE};
pub use database::{ConnectError, Database, DatabaseError, SslMode};
pub use engine::Waiting;
pub use error::{human_duration, Error, ErrorKind, LockHolder};
pub use foreign::{refinery_checksums, sqlx_checksum, ForeignHistory, ForeignRow, Tool};
pub use migrate_core::{
    build, Checksum, Direction, FileName, FileNameError, Layout, Migration, ResolveError, Script, CHECKSUM_ALGORITHM,
    NO_TRANSACTION_MARKER,
};
pub use migrator::{Migrator, DEFAULT_LOCK_RETRIES, DEFAULT_LOCK_TIMEOUT, EXTRA_SEARCH_PATH_ENV, HISTORY_TABLE_ENV};
pub use model::{
    AppliedMigration, Execution, Fix, FixKind, OtherStep, PlannedStep, Preview, RecordSource, Recorded, Report,
    RowState, StepReport, TransactionMode,
};
pub use plan::{
    plan, plan_with_foreign, verify_history, Found, HistoryFix, Operation, Plan, PlanOptions, Prologue, Refusal,
    Resolution, ResolveProblem, Step,
};
pub use schema::{quote_ident, quote_literal, validate_identifier, InvalidName, NameProblem, SchemaName};
pub use session::{Answer, QueryError, Row, ServerError, SqlState};
#[cfg(feature = "diesel")]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel")))]
pub use session_diesel::{check_schema_diesel, in_schema_diesel};
#[cfg(feature = "diesel-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
pub use session_diesel::{check_schema_diesel_async, in_schema_diesel_async};
#[cfg(feature = "sqlx")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlx")))]
pub use session_sqlx::{begin_in_schema_sqlx, check_schema_sqlx};
pub use set::MigrationSet;
pub use target::{InvalidTarget, Target, WrongDirection};

/// Embed a folder of SQL migrations into the binary, checked at compile time.
///
/// The path is relative to the calling crate's `Cargo.toml`. File names: `{version}_{name}.up.sql` with an optional
/// `{version}_{name}.down.sql`, or refinery's `V{version}__{name}.sql`; versions are positive integers ordered
/// numerically. A first line `-- migrate:no-transaction` runs the script outside a transaction. Checksums are
/// SHA-256 over the text with CRLF folded to LF and a leading BOM removed, computed at compile time.
///
/// Every problem in the folder is a compile error naming the file: a duplicate version, a name that fits no
/// pattern, a down file without its up file, an empty or non-UTF-8 file, a misplaced marker, a missing folder, an
/// absolute path. Pair it with [`build::rerun_if_migrations_change`] in `build.rs` so that *adding* a file also
/// rebuilds.
///
/// With the default feature `lint`, every up file is parsed with PostgreSQL's own parser, and a statement that
/// locks or rewrites a table the file did not create (`CREATE INDEX` without `CONCURRENTLY`, `SET NOT NULL`, ...) is
/// a compile error naming file, line, column and rule, as is a file that does not parse. A line
/// `-- migrate:allow <rule>` opts its file out of a rule; `embed_migrations!("migrations", lint_since = 120)` lints
/// only versions from 120 on.
///
/// ```
/// use migrate_runtime::{embed_migrations, MigrationSet};
///
/// static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// let first = MIGRATIONS.iter().next().unwrap();
/// assert_eq!(first.version, 1);
/// assert_eq!(first.up.checksum, migrate_runtime::Checksum::of(&first.up.sql));
/// ```
pub use migrate_macros::embed_migrations;
