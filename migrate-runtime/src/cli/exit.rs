//! Exit codes of the CLI, documented in the README.

use crate::Error;

/// Everything went as asked.
pub const SUCCESS: i32 = 0;
/// Could not run: the database was unreachable, a file could not be written, ...
pub const FAILURE: i32 = 1;
/// The command line was wrong: an unknown flag, a bad schema name or target.
pub const USAGE: i32 = 2;
/// Refused before changing anything: a protected schema without confirmation, a missing down file, a dirty
/// migration, a pending migration numbered below an applied one.
pub const REFUSED: i32 = 3;
/// A migration's SQL failed.
pub const MIGRATION_FAILED: i32 = 4;
/// The database does not match the binary: an edited applied file, or versions the binary does not have.
pub const DRIFT: i32 = 5;

/// The exit code for an error.
pub fn code_of(error: &Error) -> i32 {
    match error {
        Error::InvalidName(_) | Error::BadTarget { .. } | Error::NoSuchSchema { .. } => USAGE,
        Error::MissingDownFile { .. }
        | Error::NoTransactionInSingleTransaction { .. }
        | Error::Dirty { .. }
        | Error::OutOfOrder { .. }
        | Error::NotTransactional { .. } => REFUSED,
        Error::MigrationFailed { .. } | Error::ReferenceFailed { .. } => MIGRATION_FAILED,
        Error::ChecksumMismatch { .. } | Error::MissingFromBinary { .. } | Error::CorruptHistory { .. } => DRIFT,
        Error::LockTimeout { .. } | Error::Database { .. } | Error::Connect { .. } | Error::StructureQuery { .. } => {
            FAILURE
        }
    }
}
