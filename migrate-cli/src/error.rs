//! What can stop the CLI before or around the per-schema work. Per-schema failures are [`migrate_ops::Error`]s, reported
//! per schema; these end the command. Their exit codes are chosen in [`super::exit`].

use super::schemas::SelectionError;
use super::verb::Verb;
use migrate_ops::RevisionError;
use migrate_runtime::Operation;
use migrate_runtime::{DatabaseError, InvalidTarget, WrongDirection};

/// Why the CLI stopped without working on every schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A `--database-url` that does not parse. Its text is never echoed: it may hold a password.
    #[error("database URL #{position}")]
    BadDatabaseUrl {
        /// One-based position among the `--database-url`s.
        position: usize,
        /// Why it does not parse.
        #[source]
        source: DatabaseError,
    },
    /// The schema selection could not be turned into schema names.
    #[error(transparent)]
    Selection(SelectionError),
    /// Listing a database's schemas (for globs or `--all-schemas`) failed.
    #[error("{database}")]
    ListSchemas {
        /// The database.
        database: String,
        /// What went wrong.
        #[source]
        source: SelectionError,
    },
    /// A target that is neither a target nor one of the binary's migration names.
    #[error("{invalid}, or the name of one of this binary's migrations{}", did_you_mean(.nearest))]
    BadTarget {
        /// Why it does not parse as a target.
        invalid: InvalidTarget,
        /// The binary's migration names nearest to it, best first.
        nearest: Vec<String>,
    },
    /// `baseline --version` that is neither a version nor one of the binary's migration names.
    #[error("--version {text:?} is neither a version nor the name of one of this binary's migrations{}", did_you_mean(.nearest))]
    BadVersion {
        /// The text as given.
        text: String,
        /// The binary's migration names nearest to it, best first.
        nearest: Vec<String>,
    },
    /// A target that points the other way.
    #[error(transparent)]
    WrongDirection(WrongDirection),
    /// Protected schemas, and no terminal to confirm on.
    #[error(
        "refusing to {} protected schema {} without confirmation: pass --yes (or --auto-confirm) when not \
         running on a terminal; nothing was changed", .verb.words(), quoted(.schemas)
    )]
    NotConfirmed {
        /// What the command would do.
        verb: Verb,
        /// The protected schemas it would do it to.
        schemas: Vec<String>,
    },
    /// The typed confirmation did not match.
    #[error("confirmation for schema {schema:?} did not match; nothing was changed")]
    ConfirmationMismatch {
        /// The schema asked about.
        schema: String,
    },
    /// Schemas that do not exist, for a command that does not create them (everything but `reset` and
    /// `upgrade --create`, the commands that only read included); refused before any schema is touched.
    #[error("{}", missing_text(*verb, missing))]
    MissingSchemas {
        /// What the command would do.
        verb: Verb,
        /// The schemas that do not exist, with the nearest existing names.
        missing: Vec<MissingSchema>,
    },
    /// `revision` without a folder to write into.
    #[error("this migration set was not built from a folder: pass --migrations-dir")]
    NoSourceFolder,
    /// `revision` could not write its files.
    #[error(transparent)]
    Revision(#[from] RevisionError),
    /// `revision --autogenerate` generated nothing it could prove, or could not read what to generate from.
    #[error(transparent)]
    Generate(#[from] migrate_ops::GenerateError),
    /// `upgrade --create --template`: the template could not be used, or a schema could not be built from it.
    #[error(transparent)]
    Template(#[from] migrate_ops::TemplateError),
    /// A `--rename` that does not read as OLD=NEW.
    #[error(transparent)]
    BadRename(#[from] migrate_ops::BadRename),
    /// The `--from-file` could not be read.
    #[error("could not read --from-file {path}")]
    ReadDesiredFile {
        /// The file as given.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A schema named in `--extra-search-path` (or `MIGRATE_EXTRA_SEARCH_PATH`) was refused.
    #[error("--extra-search-path (or MIGRATE_EXTRA_SEARCH_PATH)")]
    BadSearchPath(#[source] migrate_runtime::InvalidName),
    /// The name in `--history-table` (or `MIGRATE_HISTORY_TABLE`) was refused.
    #[error("--history-table (or MIGRATE_HISTORY_TABLE)")]
    BadHistoryTable(#[source] migrate_runtime::InvalidName),
    /// Writing the output failed.
    #[error("could not write the output")]
    Output(#[source] std::io::Error),
    /// `--canary` names a schema that is not selected.
    #[error(transparent)]
    CanaryNotSelected(#[from] migrate_ops::CanaryNotSelected),
    /// `diff` could not compare the two schemas (one does not exist, the database could not be read).
    #[error(transparent)]
    Compare(migrate_ops::Error),
}

impl CliError {
    /// What stopped the command, as one word for scripts (`missing_schemas`, `not_confirmed`, ...): the `error`
    /// document's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::BadDatabaseUrl { .. } => "bad_database_url",
            CliError::Selection(_) => "bad_selection",
            CliError::ListSchemas { .. } => "list_schemas",
            CliError::BadTarget { .. } => "bad_target",
            CliError::BadVersion { .. } => "bad_version",
            CliError::WrongDirection(_) => "wrong_direction",
            CliError::NotConfirmed { .. } => "not_confirmed",
            CliError::ConfirmationMismatch { .. } => "confirmation_mismatch",
            CliError::MissingSchemas { .. } => "missing_schemas",
            CliError::NoSourceFolder => "no_source_folder",
            CliError::Revision(_) => "revision",
            CliError::Generate(migrate_ops::GenerateError::NotProven { .. }) => "not_proven",
            CliError::Generate(migrate_ops::GenerateError::NothingToGenerate { .. }) => "nothing_to_generate",
            CliError::Generate(migrate_ops::GenerateError::NotAtHead { .. }) => "not_at_head",
            CliError::Generate(_) => "generate",
            CliError::BadRename(_) => "bad_rename",
            CliError::Template(_) => "template",
            CliError::ReadDesiredFile { .. } => "read_desired_file",
            CliError::BadSearchPath(_) => "bad_search_path",
            CliError::BadHistoryTable(_) => "bad_history_table",
            CliError::Output(_) => "output",
            CliError::Compare(_) => "compare",
            CliError::CanaryNotSelected(_) => "canary_not_selected",
        }
    }
}

/// ` (did you mean "a" or "b"?)`, or nothing.
pub(crate) fn did_you_mean(nearest: &[String]) -> String {
    match nearest {
        [] => String::new(),
        names => {
            format!(" (did you mean {}?)", names.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(" or "))
        }
    }
}

fn quoted(schemas: &[String]) -> String {
    schemas.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
}

/// A selected schema that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSchema {
    /// The database, when the command works on several.
    pub database: Option<String>,
    /// The schema as given.
    pub schema: String,
    /// The existing schemas with the nearest names, best first.
    pub nearest: Vec<String>,
}

impl std::fmt::Display for MissingSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.schema)?;
        if let Some(database) = &self.database {
            write!(f, " on {database}")?;
        }
        f.write_str(&did_you_mean(&self.nearest))
    }
}

fn missing_text(verb: Verb, missing: &[MissingSchema]) -> String {
    // Ten names say it; a few hundred (a schemas file of new tenants without --create) drown it.
    const SHOWN: usize = 10;
    let mut list = missing.iter().take(SHOWN).map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if missing.len() > SHOWN {
        list.push_str(&format!(" and {} more", missing.len() - SHOWN));
    }
    let (noun, exist) = if missing.len() == 1 { ("schema", "does") } else { ("schemas", "do") };
    let words = verb.words();
    match verb {
        Verb::Change(Operation::Upgrade(_)) => format!(
            "refusing to upgrade: {noun} {list} {exist} not exist: check the name, or pass --create to create it; \
             nothing was changed"
        ),
        Verb::Change(_) => format!(
            "refusing to {words}: {noun} {list} {exist} not exist: there is nothing to {words} in a schema that \
             does not exist; nothing was changed"
        ),
        // A command that only reads changes nothing anyway.
        Verb::Verify | Verb::Status | Verb::History | Verb::Diff => {
            format!("refusing to {words}: {noun} {list} {exist} not exist; check the name")
        }
        Verb::Generate => {
            format!("refusing to {words}: {noun} {list} {exist} not exist; check the name; nothing was written")
        }
    }
}
