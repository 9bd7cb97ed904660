//! Why the planner refuses: its own enum, naming no schema and holding no driver error.

use migrate_core::{Checksum, Direction};

use crate::foreign::Tool;
use crate::target::WrongDirection;

/// Why the planner refused an operation on a schema: the history does not match the binary, or the operation
/// cannot be done from where the schema stands. Nothing was changed. Pure: it names no schema (the [`Error`](crate::Error) that
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
        tool: Tool,
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
        tool: Tool,
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
        tool: Tool,
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
        tool: Tool,
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

fn failure_text(failure: &Option<String>) -> String {
    match failure {
        Some(message) => format!("an earlier run failed part-way: {message}"),
        None => "an earlier run stopped part-way (this tool could not tell whether it failed)".to_owned(),
    }
}
