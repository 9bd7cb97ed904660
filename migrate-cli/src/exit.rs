//! Exit codes of the CLI, documented in the README, chosen here and nowhere else.

use super::error::CliError;
use super::schemas::SelectionError;
use migrate_ops::{Error, StructureError};
use migrate_runtime::{Error as MigrateError, ErrorKind, Refusal};

/// Everything went as asked.
pub const SUCCESS: i32 = 0;
/// Could not run: the database was unreachable, a file could not be read or written, ...
pub const FAILURE: i32 = 1;
/// The command line was wrong: an unknown flag, a bad schema name or target.
pub const USAGE: i32 = 2;
/// Refused before changing anything: a protected schema without confirmation, a schema that does not exist, a
/// missing down file, a dirty migration, a pending migration numbered below an applied one, nothing to resolve.
pub const REFUSED: i32 = 3;
/// A migration's SQL failed.
pub const MIGRATION_FAILED: i32 = 4;
/// The database does not match the binary: an edited applied file, or versions the binary does not have; a
/// schema's structure differs from what its migrations build (`verify`), or two schemas differ (`diff`).
pub const DRIFT: i32 = 5;

/// The exit code for a schema's error.
pub fn code_of(error: &Error) -> i32 {
    match error {
        Error::Migrate(error) => code_of_migration(error),
        Error::Structure(error) => match error {
            StructureError::InvalidName(_) | StructureError::NoSuchSchema { .. } => USAGE,
            StructureError::NotTransactional { .. } => REFUSED,
            StructureError::ReferenceFailed { .. } => MIGRATION_FAILED,
            StructureError::Query { .. } => FAILURE,
            _ => FAILURE,
        },
        Error::Catalog { .. } | Error::Connect { .. } => FAILURE,
        _ => FAILURE,
    }
}

/// The exit code for the runtime's error about one schema.
pub fn code_of_migration(error: &MigrateError) -> i32 {
    match error.kind() {
        ErrorKind::InvalidName(_) => USAGE,
        ErrorKind::Refused(refusal) => code_of_refusal(refusal),
        ErrorKind::MigrationFailed { .. } => MIGRATION_FAILED,
        ErrorKind::CorruptHistory { .. } => DRIFT,
        ErrorKind::LockTimeout { .. } | ErrorKind::ClaimLost { .. } | ErrorKind::Database { .. } => FAILURE,
        // A kind added later fails the command until it is given its own code here.
        _ => FAILURE,
    }
}

/// The exit code for the planner's refusal.
pub fn code_of_refusal(refusal: &Refusal) -> i32 {
    match refusal {
        Refusal::TargetNotInSet { .. }
        | Refusal::TargetBelowCurrent { .. }
        | Refusal::TargetNotApplied { .. }
        | Refusal::WrongDirection(_) => USAGE,
        Refusal::MissingDownFile { .. }
        | Refusal::NoTransactionInSingleTransaction { .. }
        | Refusal::Dirty { .. }
        | Refusal::Interrupted { .. }
        | Refusal::OutOfOrder { .. }
        | Refusal::NothingToResolve { .. }
        | Refusal::SchemaMissing { .. }
        | Refusal::BaselineBelowApplied { .. }
        | Refusal::ForeignHistoryMissing { .. }
        | Refusal::ForeignFailed { .. } => REFUSED,
        Refusal::ChecksumMismatch { .. }
        | Refusal::MissingFromBinary { .. }
        | Refusal::ForeignMissingFromBinary { .. }
        | Refusal::ForeignChecksumMismatch { .. } => DRIFT,
        // Another process is at work: the command could not run now.
        Refusal::InProgress { .. } => FAILURE,
        _ => FAILURE,
    }
}

/// The exit code for an error that stopped the command.
pub fn code_of_cli(error: &CliError) -> i32 {
    match error {
        CliError::BadDatabaseUrl { .. } | CliError::BadTarget { .. } | CliError::WrongDirection(_) => USAGE,
        CliError::ListSchemas { .. } | CliError::Selection(SelectionError::File { .. }) => FAILURE,
        CliError::Selection(_) | CliError::BadSearchPath(_) => USAGE,
        CliError::NotConfirmed { .. } | CliError::ConfirmationMismatch { .. } | CliError::MissingSchemas { .. } => {
            REFUSED
        }
        CliError::NoSourceFolder | CliError::Revision(_) | CliError::Output(_) => FAILURE,
        CliError::Compare(error) => code_of(error),
    }
}

/// Precedence when schemas fail differently: the most serious code wins.
pub(super) fn severity(code: i32) -> u8 {
    match code {
        MIGRATION_FAILED => 5,
        DRIFT => 4,
        FAILURE => 3,
        REFUSED => 2,
        USAGE => 1,
        _ => 0,
    }
}
