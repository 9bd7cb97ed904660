//! Exit codes of the CLI, documented in the README, chosen here and nowhere else.

use super::error::CliError;
use super::schemas::SelectionError;
use crate::error::Error;

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
/// The database does not match the binary: an edited applied file, or versions the binary does not have.
pub const DRIFT: i32 = 5;

/// The exit code for a schema's error.
pub fn code_of(error: &Error) -> i32 {
    match error {
        Error::InvalidName(_)
        | Error::TargetNotInSet { .. }
        | Error::TargetBelowCurrent { .. }
        | Error::TargetNotApplied { .. }
        | Error::WrongDirection { .. }
        | Error::NoSuchSchema { .. } => USAGE,
        Error::MissingDownFile { .. }
        | Error::NoTransactionInSingleTransaction { .. }
        | Error::Dirty { .. }
        | Error::Interrupted { .. }
        | Error::OutOfOrder { .. }
        | Error::NothingToResolve { .. }
        | Error::NotTransactional { .. } => REFUSED,
        Error::MigrationFailed { .. } | Error::ReferenceFailed { .. } => MIGRATION_FAILED,
        Error::ChecksumMismatch { .. } | Error::MissingFromBinary { .. } | Error::CorruptHistory { .. } => DRIFT,
        Error::LockTimeout { .. }
        | Error::InProgress { .. }
        | Error::ClaimLost { .. }
        | Error::Database { .. }
        | Error::Catalog { .. }
        | Error::StructureQuery { .. }
        | Error::Connect { .. } => FAILURE,
    }
}

/// The exit code for an error that stopped the command.
pub fn code_of_cli(error: &CliError) -> i32 {
    match error {
        CliError::BadDatabaseUrl { .. } | CliError::BadTarget { .. } | CliError::WrongDirection { .. } => USAGE,
        CliError::ListSchemas { .. } | CliError::Selection(SelectionError::File { .. }) => FAILURE,
        CliError::Selection(_) => USAGE,
        CliError::NotConfirmed { .. } | CliError::ConfirmationMismatch { .. } | CliError::MissingSchemas { .. } => {
            REFUSED
        }
        CliError::NoSourceFolder | CliError::Revision(_) | CliError::Output(_) => FAILURE,
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
