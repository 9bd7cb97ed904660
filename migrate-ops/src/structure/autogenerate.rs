//! `revision --autogenerate`: the next migration, generated from the difference between what the binary's
//! migrations build at head and a desired structure, and proven before anything is written.
//!
//! All in one transaction that is rolled back: replay the migrations in a scratch schema (the reference), read the
//! desired structure (a live schema, or a file of the desired state run in a second scratch schema), apply the
//! renames the operator declared, generate the up script (reference to desired) and the down script (desired to
//! reference), then run the up script on the reference and compare with the desired structure, and the down script
//! after it and compare with the reference. Only a pair that passes both is returned.

use std::fmt;
use std::str::FromStr;

use migrate_core::Migration;

use super::catalog;
use super::diff::{diff, Difference};
use super::generate::{generate, Changes, Qualifier, Unexpressed};
use super::object::{ObjectKind, ObjectName, Structure};
use super::reference::{query_failed, read_one, replay, scratch_name};
use super::verify::{head_standing, HeadStanding};
use crate::error::StructureError;
use migrate_runtime::{quote_ident, validate_identifier, Migrator, QueryError, SchemaName, SqlState};

/// Where the desired structure comes from.
#[derive(Debug, Clone)]
pub enum Desired<'a> {
    /// A live schema where someone prototyped the change (`--from dev`).
    Schema(SchemaName),
    /// A file of the whole desired state (`--from-file schema.sql`), run in a scratch schema.
    File {
        /// The file as the operator named it, for messages.
        file: String,
        /// Its SQL.
        sql: &'a str,
    },
}

impl fmt::Display for Desired<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Desired::Schema(schema) => write!(f, "schema {:?}", schema.as_str()),
            Desired::File { file, .. } => write!(f, "file {file}"),
        }
    }
}

/// A table or column the operator says was renamed (`--rename old=new`, `--rename table.old=new`), so the revision
/// renames it and keeps its data instead of dropping and adding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// The table (renamed itself, or holding the renamed column), by its name in what the migrations build.
    pub table: String,
    /// The column, for a column's rename.
    pub column: Option<String>,
    /// The new name.
    pub to: String,
}

/// Why a `--rename` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--rename {text:?}: expected OLD=NEW for a table or TABLE.OLD=NEW for a column")]
pub struct BadRename {
    /// The text as given.
    pub text: String,
}

impl FromStr for Rename {
    type Err = BadRename;

    fn from_str(text: &str) -> Result<Rename, BadRename> {
        let bad = || BadRename { text: text.to_owned() };
        let (old, to) = text.split_once('=').ok_or_else(bad)?;
        let (table, column) = match old.split_once('.') {
            Some((table, column)) => (table, Some(column)),
            None => (old, None),
        };
        let names = [Some(table), column, Some(to)];
        if names.iter().flatten().any(|name| validate_identifier(name, "name").is_err()) {
            return Err(bad());
        }
        Ok(Rename { table: table.to_owned(), column: column.map(str::to_owned), to: to.to_owned() })
    }
}

impl fmt::Display for Rename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "{}.{column}={}", self.table, self.to),
            None => write!(f, "{}={}", self.table, self.to),
        }
    }
}

impl Rename {
    /// The statement, `<schema>`-qualified, that renames forward (`up`) or back.
    fn sql(&self, up: bool) -> String {
        match (&self.column, up) {
            (None, true) => {
                format!("ALTER TABLE {} RENAME TO {};", super::generate::own(&self.table), quote_ident(&self.to))
            }
            (None, false) => {
                format!("ALTER TABLE {} RENAME TO {};", super::generate::own(&self.to), quote_ident(&self.table))
            }
            (Some(column), true) => format!(
                "ALTER TABLE {} RENAME COLUMN {} TO {};",
                super::generate::own(&self.table),
                quote_ident(column),
                quote_ident(&self.to)
            ),
            (Some(column), false) => format!(
                "ALTER TABLE {} RENAME COLUMN {} TO {};",
                super::generate::own(&self.table),
                quote_ident(&self.to),
                quote_ident(column)
            ),
        }
    }

    /// The old name exists in the reference and the new one in the desired structure.
    fn check(&self, reference: &Structure, desired: &Structure, renames: &[Rename]) -> Result<(), GenerateError> {
        // A column's table, in the desired structure, is the table's new name when it is renamed too.
        let desired_table = renames
            .iter()
            .find(|r| r.column.is_none() && r.table == self.table)
            .map_or(self.table.as_str(), |r| r.to.as_str());
        let missing = |structure: &Structure, kind: ObjectKind, name: ObjectName| structure.get(kind, &name).is_none();
        let problem = match &self.column {
            None if missing(reference, ObjectKind::Table, ObjectName::new(self.table.as_str())) => {
                Some(format!("the migrations build no table {:?}", self.table))
            }
            None if missing(desired, ObjectKind::Table, ObjectName::new(self.to.as_str())) => {
                Some(format!("the desired structure has no table {:?}", self.to))
            }
            Some(column)
                if missing(
                    reference,
                    ObjectKind::Column,
                    ObjectName::of_table(self.table.as_str(), column.as_str()),
                ) =>
            {
                Some(format!("the migrations build no column {:?} in table {:?}", column, self.table))
            }
            Some(_) if missing(desired, ObjectKind::Column, ObjectName::of_table(desired_table, self.to.as_str())) => {
                Some(format!("the desired structure has no column {:?} in table {:?}", self.to, desired_table))
            }
            _ => None,
        };
        match problem {
            Some(reason) => Err(GenerateError::RenameDoesNotFit { rename: self.to_string(), reason }),
            None => Ok(()),
        }
    }
}

/// A generated and proven revision.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The version of the binary's migrations the revision follows (0 when it has none).
    pub head: i64,
    /// What brings the reference to the desired structure.
    pub up: Changes,
    /// What brings it back.
    pub down: Changes,
}

/// How one generated script fared when it was run on the structure it starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trial {
    /// It ran and built exactly the structure it should.
    Equal,
    /// It ran; these differences remain (`Missing`: what it should have built and did not).
    Differs(Vec<Difference>),
    /// A statement failed.
    Failed {
        /// PostgreSQL's message.
        message: String,
    },
    /// Not run (the up script did not pass, so the down script had nothing to start from).
    NotRun,
}

/// What kept a generated revision from being proven.
#[derive(Debug, Clone)]
pub struct Unproven {
    /// Differences the generator cannot express, in the up and the down script.
    pub unexpressed: Vec<Unexpressed>,
    /// The up script's trial.
    pub up: Trial,
    /// The down script's trial.
    pub down: Trial,
}

/// Why no revision was generated. Nothing is written in any case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// Reading structures, or replaying the migrations, failed.
    #[error(transparent)]
    Structure(#[from] StructureError),

    /// The database runs Citus: the scratch schemas would be distributed schemas.
    #[error(
        "revision --autogenerate is not supported on Citus: generate against a plain PostgreSQL server holding a \
         copy of the schema (or a --from-file); nothing was written"
    )]
    Citus,

    /// The file of the desired state failed in its scratch schema.
    #[error("the desired state in {file} failed in a scratch schema: {message}; nothing was written")]
    DesiredFailed {
        /// The file.
        file: String,
        /// PostgreSQL's SQLSTATE, when the server answered.
        code: Option<SqlState>,
        /// PostgreSQL's message.
        message: String,
    },

    /// The schema generated from has applied fewer or other migrations than the binary has.
    #[error(
        "schema {schema:?} has applied {applied} but the binary's migrations end at {head}: upgrade it first (the \
         revision would otherwise undo what it lacks); nothing was written"
    )]
    NotAtHead {
        /// The schema.
        schema: String,
        /// Its applied versions, in words.
        applied: String,
        /// The binary's newest version.
        head: i64,
    },

    /// A `--rename` names a table or column that is not there.
    #[error("--rename {rename}: {reason}; nothing was written")]
    RenameDoesNotFit {
        /// The rename as given.
        rename: String,
        /// What is missing.
        reason: String,
    },

    /// The desired structure is what the migrations already build.
    #[error(
        "{desired} has the structure the migrations build at version {head}: nothing to generate; nothing was written"
    )]
    NothingToGenerate {
        /// Where the desired structure came from.
        desired: String,
        /// The binary's newest version.
        head: i64,
    },

    /// The generated scripts did not pass their proof.
    #[error(
        "the generated revision was not proven against {desired}: {}; nothing was written", unproven_summary(.unproven)
    )]
    NotProven {
        /// Where the desired structure came from.
        desired: String,
        /// What failed.
        unproven: Box<Unproven>,
    },
}

fn unproven_summary(unproven: &Unproven) -> String {
    let mut parts = Vec::new();
    if !unproven.unexpressed.is_empty() {
        parts.push(format!("{} difference(s) cannot be expressed as SQL", unproven.unexpressed.len()));
    }
    for (direction, trial) in [("up", &unproven.up), ("down", &unproven.down)] {
        match trial {
            Trial::Equal | Trial::NotRun => {}
            Trial::Differs(differences) => {
                parts.push(format!("the {direction} script leaves {} difference(s)", differences.len()))
            }
            Trial::Failed { message } => parts.push(format!("the {direction} script failed: {message}")),
        }
    }
    parts.join("; ")
}

/// Generate the next revision: the difference between what the migrator's migrations build at head and `desired`,
/// with `renames` applied, proven in a transaction that is rolled back (see the module's documentation).
pub fn autogenerate(
    client: &mut postgres::Client,
    migrator: &Migrator<'_>,
    desired: &Desired<'_>,
    renames: &[Rename],
) -> Result<Generated, GenerateError> {
    validate_identifier(migrator.history_table_name(), "history table").map_err(StructureError::from)?;
    let scratch = scratch_name();
    if crate::survey::has_citus(client).map_err(|e| query_failed(&scratch, "look for the citus extension", e))? {
        return Err(GenerateError::Citus);
    }
    let scratch = &scratch;
    let failed = |action| move |source| GenerateError::from(query_failed(scratch, action, source));
    let mut transaction = client.transaction().map_err(failed("begin the generation"))?;
    let result = generate_in(&mut transaction, scratch, migrator, desired, renames);
    transaction.rollback().map_err(failed("roll back the generation"))?;
    result
}

fn generate_in(
    transaction: &mut postgres::Transaction<'_>,
    scratch: &SchemaName,
    migrator: &Migrator<'_>,
    desired: &Desired<'_>,
    renames: &[Rename],
) -> Result<Generated, GenerateError> {
    let head = migrator.set().head().unwrap_or(0);
    if let Desired::Schema(schema) = desired {
        check_at_head(transaction, migrator, schema)?;
    }
    let migrations: Vec<&Migration> = migrator.set().iter().collect();
    replay(transaction, scratch, &migrations, migrator)?;
    let reference = read_one(transaction, scratch, migrator, "read the reference structure")?;
    let target = read_desired(transaction, migrator, desired)?;
    for rename in renames {
        rename.check(&reference, &target, renames)?;
    }
    // Columns are renamed in their tables before tables are renamed, and back after tables are renamed back.
    let mut renames: Vec<&Rename> = renames.iter().collect();
    renames.sort_by_key(|rename| rename.column.is_none());
    let renamed = match renames.is_empty() {
        true => reference.clone(),
        false => {
            let failed = |action| move |source| GenerateError::from(query_failed(scratch, action, source));
            transaction.batch_execute("SAVEPOINT migrate_renamed").map_err(failed("set a savepoint"))?;
            let sql: Vec<String> = renames.iter().map(|r| Qualifier::SearchPath.apply(&r.sql(true))).collect();
            let sql = sql.join("\n");
            if let Err(message) = run(transaction, scratch, migrator, &sql)? {
                let unproven = Unproven { unexpressed: Vec::new(), up: Trial::Failed { message }, down: Trial::NotRun };
                return Err(GenerateError::NotProven { desired: desired.to_string(), unproven: Box::new(unproven) });
            }
            let renamed = read_one(transaction, scratch, migrator, "read the renamed reference")?;
            transaction
                .batch_execute("ROLLBACK TO SAVEPOINT migrate_renamed; RELEASE SAVEPOINT migrate_renamed")
                .map_err(failed("roll back to a savepoint"))?;
            renamed
        }
    };
    let mut up = generate(&renamed, &target);
    let mut down = generate(&target, &renamed);
    up.prepend_renames(renames.iter().map(|r| (r.sql(true), r.column.is_some())));
    down.append_renames(renames.iter().rev().map(|r| (r.sql(false), r.column.is_some())));
    if up.is_empty() {
        return Err(GenerateError::NothingToGenerate { desired: desired.to_string(), head });
    }
    let up_trial = trial(transaction, scratch, migrator, &up, &target)?;
    let down_trial = match up_trial {
        Trial::Equal => trial(transaction, scratch, migrator, &down, &reference)?,
        _ => Trial::NotRun,
    };
    let unexpressed: Vec<Unexpressed> = up.unexpressed.iter().chain(&down.unexpressed).cloned().collect();
    if unexpressed.is_empty() && up_trial == Trial::Equal && down_trial == Trial::Equal {
        return Ok(Generated { head, up, down });
    }
    let unproven = Unproven { unexpressed, up: up_trial, down: down_trial };
    Err(GenerateError::NotProven { desired: desired.to_string(), unproven: Box::new(unproven) })
}

/// Refuse a source schema that has not applied exactly the binary's migrations (a schema without history, built
/// by hand, is taken as it is).
fn check_at_head(
    transaction: &mut postgres::Transaction<'_>,
    migrator: &Migrator<'_>,
    schema: &SchemaName,
) -> Result<(), GenerateError> {
    match head_standing(transaction, migrator, schema)? {
        HeadStanding::AtHead | HeadStanding::NoHistory => Ok(()),
        HeadStanding::Elsewhere(applied) => Err(GenerateError::NotAtHead {
            schema: schema.to_string(),
            applied,
            head: migrator.set().head().unwrap_or(0),
        }),
    }
}

/// The desired structure: a live schema's, or that of the file run in a second scratch schema.
fn read_desired(
    transaction: &mut postgres::Transaction<'_>,
    migrator: &Migrator<'_>,
    desired: &Desired<'_>,
) -> Result<Structure, GenerateError> {
    match desired {
        Desired::Schema(schema) => {
            let mut structures =
                catalog::read(transaction, std::slice::from_ref(schema), migrator.history_table_name())
                    .map_err(|e| query_failed(schema, "read the structure", e))?;
            structures.remove(schema).ok_or_else(|| StructureError::NoSuchSchema { schema: schema.to_string() }.into())
        }
        Desired::File { file, sql } => {
            let scratch = scratch_name();
            transaction
                .batch_execute(&format!("CREATE SCHEMA {}", scratch.quoted()))
                .map_err(|e| query_failed(&scratch, "create the scratch schema", e))?;
            if let Err(message) = run(transaction, &scratch, migrator, sql)? {
                return Err(GenerateError::DesiredFailed { file: file.clone(), code: None, message });
            }
            Ok(read_one(transaction, &scratch, migrator, "read the desired structure")?)
        }
    }
}

/// Run a generated script on `scratch`'s structure and compare the result with `expected`; the script's effects
/// stay (the down script runs on what the up script built).
fn trial(
    transaction: &mut postgres::Transaction<'_>,
    scratch: &SchemaName,
    migrator: &Migrator<'_>,
    changes: &Changes,
    expected: &Structure,
) -> Result<Trial, GenerateError> {
    if let Err(message) = run(transaction, scratch, migrator, &changes.script(Qualifier::SearchPath))? {
        return Ok(Trial::Failed { message });
    }
    let found = read_one(transaction, scratch, migrator, "read the generated structure")?;
    let differences = diff(expected, &found);
    Ok(if differences.is_empty() { Trial::Equal } else { Trial::Differs(differences) })
}

/// Run SQL as a migration runs in `scratch` (its `search_path` first), inside a savepoint: a failure is rolled back
/// to it and returned as PostgreSQL's message; a connection failure is an error.
fn run(
    transaction: &mut postgres::Transaction<'_>,
    scratch: &SchemaName,
    migrator: &Migrator<'_>,
    sql: &str,
) -> Result<Result<(), String>, GenerateError> {
    let failed = |action| move |source| GenerateError::from(query_failed(scratch, action, source));
    transaction.batch_execute("SAVEPOINT migrate_generate").map_err(failed("set a savepoint"))?;
    let path = scratch.set_local_search_path_sql_with(migrator.extra_search_path_schemas());
    match transaction.batch_execute(&format!("{path};\n{sql}\n;")) {
        Ok(()) => {
            transaction.batch_execute("RELEASE SAVEPOINT migrate_generate").map_err(failed("release a savepoint"))?;
            Ok(Ok(()))
        }
        Err(error) if error.as_db_error().is_some() => {
            let message = QueryError::from(error).describe().1;
            undo(transaction, scratch)?;
            Ok(Err(message))
        }
        Err(error) => Err(failed("run a generated script")(error)),
    }
}

/// Roll back to the savepoint `run` set and release it.
fn undo(transaction: &mut postgres::Transaction<'_>, scratch: &SchemaName) -> Result<(), GenerateError> {
    transaction
        .batch_execute("ROLLBACK TO SAVEPOINT migrate_generate; RELEASE SAVEPOINT migrate_generate")
        .map_err(|e| query_failed(scratch, "roll back to a savepoint", e).into())
}
