//! Exit codes of the CLI, documented in the README, chosen here and nowhere else.

use super::error::CliError;
use super::schemas::SelectionError;
use migrate_ops::{Error, GenerateError, RevisionError, StructureError, TemplateError};
use migrate_runtime::{Error as MigrateError, ErrorKind, Refusal};

/// The CLI's exit codes, documented in the README, ordered by severity: when schemas fail differently, the most
/// serious code wins (`max`), so a failed migration is never hidden behind a refusal elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitCode {
    /// 0: everything went as asked.
    Success,
    /// 2: the command line was wrong: an unknown flag, a bad schema name or target.
    Usage,
    /// 3: refused before changing anything: a protected schema without confirmation, a schema that does not exist,
    /// a missing down file, a dirty migration, a pending migration numbered below an applied one, nothing to
    /// resolve.
    Refused,
    /// 1: could not run: the database was unreachable, a file could not be read or written, ...
    Failure,
    /// 5: the database does not match the binary: an edited applied file, or versions the binary does not have; a
    /// schema's structure differs from what its migrations build (`verify`), or two schemas differ (`diff`).
    Drift,
    /// 4: a migration's SQL failed.
    MigrationFailed,
    /// 130: interrupted (SIGINT or SIGTERM): the queries in flight were canceled, nothing new was started.
    Interrupted,
}

impl ExitCode {
    /// The process exit status.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Refused => 3,
            ExitCode::MigrationFailed => 4,
            ExitCode::Drift => 5,
            ExitCode::Interrupted => 130,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> std::process::ExitCode {
        std::process::ExitCode::from(code.code() as u8)
    }
}

impl serde::Serialize for ExitCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.code())
    }
}

/// The exit code for a schema's error.
pub fn code_of(error: &Error) -> ExitCode {
    match error {
        Error::Migrate(error) => code_of_migration(error),
        Error::Structure(error) => code_of_structure(error),
        Error::Catalog { .. } | Error::Connect { .. } => ExitCode::Failure,
        _ => ExitCode::Failure,
    }
}

/// The exit code for a failure to read or compare structures.
pub fn code_of_structure(error: &StructureError) -> ExitCode {
    match error {
        StructureError::InvalidName(_) | StructureError::NoSuchSchema { .. } => ExitCode::Usage,
        StructureError::NotTransactional { .. } => ExitCode::Refused,
        StructureError::ReferenceFailed { .. } => ExitCode::MigrationFailed,
        StructureError::Query { .. } => ExitCode::Failure,
        _ => ExitCode::Failure,
    }
}

/// The exit code for the runtime's error about one schema.
pub fn code_of_migration(error: &MigrateError) -> ExitCode {
    match error.kind() {
        ErrorKind::InvalidName(_) => ExitCode::Usage,
        ErrorKind::Refused(refusal) => code_of_refusal(refusal),
        ErrorKind::MigrationFailed { .. } | ErrorKind::TableLocked { .. } => ExitCode::MigrationFailed,
        ErrorKind::CorruptHistory { .. } => ExitCode::Drift,
        // Another tool's table of the same name: nothing was changed; a flag or a variable settles it.
        ErrorKind::NotOurHistoryTable { .. } => ExitCode::Refused,
        ErrorKind::LockTimeout { .. } | ErrorKind::ClaimLost { .. } | ErrorKind::Database { .. } => ExitCode::Failure,
        ErrorKind::Interrupted { .. } => ExitCode::Interrupted,
        // A kind added later fails the command until it is given its own code here.
        _ => ExitCode::Failure,
    }
}

/// The exit code for the planner's refusal.
pub fn code_of_refusal(refusal: &Refusal) -> ExitCode {
    match refusal {
        Refusal::TargetNotInSet { .. }
        | Refusal::TargetBelowCurrent { .. }
        | Refusal::TargetNotApplied { .. }
        | Refusal::WrongDirection(_) => ExitCode::Usage,
        Refusal::MissingDownFile { .. }
        | Refusal::NoTransactionInSingleTransaction { .. }
        | Refusal::Dirty { .. }
        | Refusal::Interrupted { .. }
        | Refusal::OutOfOrder { .. }
        | Refusal::NothingToResolve { .. }
        | Refusal::SchemaMissing { .. }
        | Refusal::BaselineBelowApplied { .. }
        | Refusal::ForeignHistoryMissing { .. }
        | Refusal::ForeignFailed { .. } => ExitCode::Refused,
        Refusal::ChecksumMismatch { .. }
        | Refusal::MissingFromBinary { .. }
        | Refusal::ForeignMissingFromBinary { .. }
        | Refusal::ForeignChecksumMismatch { .. } => ExitCode::Drift,
        // Another process is at work: the command could not run now.
        Refusal::InProgress { .. } => ExitCode::Failure,
        _ => ExitCode::Failure,
    }
}

/// How a schema's error is reported and counted; its exit code is still its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Nothing was changed: the planner refused, or the schema holds another tool's history table.
    Refused,
    /// SIGINT or SIGTERM stopped the run and its query was canceled.
    Interrupted,
    /// Anything else.
    Failed,
}

impl Failure {
    /// What `error` counts as.
    pub fn of(error: &Error) -> Failure {
        let refused = match error {
            Error::Migrate(error) => {
                error.refusal().is_some() || matches!(error.kind(), ErrorKind::NotOurHistoryTable { .. })
            }
            _ => false,
        };
        match (refused, code_of(error)) {
            (true, _) => Failure::Refused,
            (false, ExitCode::Interrupted) => Failure::Interrupted,
            (false, _) => Failure::Failed,
        }
    }

    /// `REFUSED`, `INTERRUPTED` or `FAILED`, in the lines for people.
    pub fn word(self) -> &'static str {
        match self {
            Failure::Refused => "REFUSED",
            Failure::Interrupted => "INTERRUPTED",
            Failure::Failed => "FAILED",
        }
    }
}

/// The exit code for an error that stopped the command.
pub fn code_of_cli(error: &CliError) -> ExitCode {
    match error {
        CliError::BadDatabaseUrl { .. }
        | CliError::BadTarget { .. }
        | CliError::BadVersion { .. }
        | CliError::WrongDirection(_) => ExitCode::Usage,
        CliError::ListSchemas { .. } | CliError::Selection(SelectionError::File { .. }) => ExitCode::Failure,
        CliError::Selection(_)
        | CliError::BadSearchPath(_)
        | CliError::BadHistoryTable(_)
        | CliError::CanaryNotSelected(_) => ExitCode::Usage,
        CliError::NotConfirmed { .. } | CliError::ConfirmationMismatch { .. } | CliError::MissingSchemas { .. } => {
            ExitCode::Refused
        }
        CliError::Revision(RevisionError::EmptyMessage { .. } | RevisionError::NotLatin { .. }) => ExitCode::Usage,
        CliError::Revision(
            RevisionError::NameTaken { .. }
            | RevisionError::FolderDiffers { .. }
            | RevisionError::FolderDoesNotBuild { .. },
        ) => ExitCode::Refused,
        CliError::NoSourceFolder | CliError::Revision(_) | CliError::Output(_) => ExitCode::Failure,
        CliError::Compare(error) => code_of(error),
        CliError::BadRename(_) | CliError::Generate(GenerateError::RenameDoesNotFit { .. }) => ExitCode::Usage,
        CliError::Generate(
            GenerateError::NotProven { .. }
            | GenerateError::NothingToGenerate { .. }
            | GenerateError::NotAtHead { .. }
            | GenerateError::Citus,
        ) => ExitCode::Refused,
        CliError::Generate(GenerateError::DesiredFailed { .. }) => ExitCode::MigrationFailed,
        CliError::Generate(GenerateError::Structure(error)) => code_of_structure(error),
        CliError::Generate(_) | CliError::ReadDesiredFile { .. } => ExitCode::Failure,
        CliError::Template(TemplateError::Structure(error)) => code_of_structure(error),
        CliError::Template(
            TemplateError::Citus { .. }
            | TemplateError::NotMigrated { .. }
            | TemplateError::NotAtHead { .. }
            | TemplateError::TemplateDiffers { .. }
            | TemplateError::Unexpressed { .. }
            | TemplateError::Exists { .. }
            | TemplateError::NotEqual { .. },
        ) => ExitCode::Refused,
        CliError::Template(_) => ExitCode::Failure,
    }
}
