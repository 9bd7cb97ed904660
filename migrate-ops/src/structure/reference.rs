//! The reference structure: what the binary's migrations build, read from a scratch schema inside one transaction
//! that is always rolled back.

use std::sync::atomic::{AtomicUsize, Ordering};

use migrate_core::Migration;
use postgres::error::SqlState;

use super::catalog;
use super::object::Structure;
use crate::error::StructureError;
use crate::survey::has_citus;
use migrate_runtime::sql::{split_statements, without_concurrently};
use migrate_runtime::{validate_identifier, Migrator, QueryError, SchemaName};

/// The structure the up scripts of `set` build, up to and including `version`, without a history table.
///
/// Inside one transaction that is rolled back: create a uniquely named scratch schema, `SET LOCAL search_path` to
/// it and, after it, the migrator's shared schemas ([`Migrator::extra_search_path`], as every migration runs), run
/// each up script in set order as the engine would (a plain query string each), read the structure with
/// the same reader as for live schemas, roll back. Nothing is left behind, and the role needs `CREATE` on the
/// database. A no-transaction script runs statement by statement with `CONCURRENTLY` removed from
/// `CREATE INDEX`, `DROP INDEX`, `REINDEX` and `ALTER TABLE ... DETACH PARTITION` (an index built concurrently
/// ends up the same as one built plainly); any other statement that cannot run in a transaction is refused with
/// [`StructureError::NotTransactional`], naming the file. Scripts must not end the transaction themselves (the engine
/// requires the same). On a database with Citus every script runs statement by statement, as the engine runs it
/// there.
///
/// ```no_run
/// # use migrate_runtime::{embed_migrations, MigrationSet};
/// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// let head = MIGRATIONS.head().unwrap_or(0);
/// let migrator = migrate_runtime::Migrator::new(&MIGRATIONS);
/// let reference = migrate_ops::reference_structure(&mut client, &migrator, head)?;
/// println!("{} objects, fingerprint {}", reference.len(), reference.fingerprint());
/// # Ok::<(), migrate_ops::StructureError>(())
/// ```
pub fn reference_structure(
    client: &mut postgres::Client,
    migrator: &Migrator<'_>,
    version: i64,
) -> Result<Structure, StructureError> {
    validate_identifier(migrator.history_table_name(), "history table")?;
    let migrations: Vec<&Migration> = migrator.set().iter().filter(|m| m.version <= version).collect();
    build(client, &migrations, migrator)
}

/// The structure `migrations` build, applied in the order given.
pub(crate) fn build(
    client: &mut postgres::Client,
    migrations: &[&Migration],
    migrator: &Migrator<'_>,
) -> Result<Structure, StructureError> {
    let scratch = scratch_name();
    let result = build_in(client, &scratch, migrations, migrator);
    // Should a script have ended the transaction early, the scratch schema would survive the rollback.
    let cleanup = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", scratch.quoted()));
    let structure = result?;
    cleanup.map_err(|source| query_failed(&scratch, "drop the scratch schema", source))?;
    Ok(structure)
}

fn build_in(
    client: &mut postgres::Client,
    scratch: &SchemaName,
    migrations: &[&Migration],
    migrator: &Migrator<'_>,
) -> Result<Structure, StructureError> {
    let mut transaction = client.transaction().map_err(|e| query_failed(scratch, "begin the reference build", e))?;
    replay(&mut transaction, scratch, migrations, migrator)?;
    let structure = read_one(&mut transaction, scratch, migrator, "read the reference structure")?;
    transaction.rollback().map_err(|e| query_failed(scratch, "roll back the reference build", e))?;
    Ok(structure)
}

/// Create `scratch` and run `migrations`' up scripts in it, as the engine would, inside the caller's transaction.
pub(crate) fn replay(
    transaction: &mut postgres::Transaction<'_>,
    scratch: &SchemaName,
    migrations: &[&Migration],
    migrator: &Migrator<'_>,
) -> Result<(), StructureError> {
    transaction
        .batch_execute(&format!("CREATE SCHEMA {}", scratch.quoted()))
        .map_err(|e| query_failed(scratch, "create the scratch schema", e))?;
    let set_path = format!("{};\n", scratch.set_local_search_path_sql_with(migrator.extra_search_path_schemas()));
    // Citus passes some DDL on to its workers as the whole query string, which must then be one statement.
    let one_statement_at_a_time =
        has_citus(transaction).map_err(|e| query_failed(scratch, "look for the citus extension", e))?;
    for migration in migrations {
        let script = &migration.up;
        let failed = |error: postgres::Error| {
            let (code, message) = QueryError::from(error).describe();
            StructureError::ReferenceFailed {
                schema: scratch.to_string(),
                version: migration.version,
                file: script.file.to_string(),
                code,
                message,
            }
        };
        if !script.no_transaction && !one_statement_at_a_time {
            // A newline ends a trailing `--` comment; the semicolon ends the script's last statement.
            transaction.batch_execute(&format!("{set_path}{}\n;", script.sql)).map_err(failed)?;
            continue;
        }
        if !script.no_transaction {
            transaction.batch_execute(&set_path).map_err(failed)?;
            for (_, statement) in split_statements(&script.sql) {
                transaction.batch_execute(statement).map_err(failed)?;
            }
            continue;
        }
        transaction.batch_execute(&set_path).map_err(failed)?;
        for (_, statement) in split_statements(&script.sql) {
            let statement = without_concurrently(statement);
            if let Err(error) = transaction.batch_execute(&statement) {
                if error.code() == Some(&SqlState::ACTIVE_SQL_TRANSACTION) {
                    return Err(StructureError::NotTransactional {
                        schema: scratch.to_string(),
                        version: migration.version,
                        file: script.file.to_string(),
                        statement: shorten(&statement),
                        message: QueryError::from(error).describe().1,
                    });
                }
                return Err(failed(error));
            }
        }
    }
    Ok(())
}

/// The structure of one schema, read inside the caller's transaction (an absent schema reads as empty).
pub(crate) fn read_one(
    transaction: &mut postgres::Transaction<'_>,
    schema: &SchemaName,
    migrator: &Migrator<'_>,
    action: &'static str,
) -> Result<Structure, StructureError> {
    let mut structures = catalog::read(transaction, std::slice::from_ref(schema), migrator.history_table_name())
        .map_err(|e| query_failed(schema, action, e))?;
    Ok(structures.remove(schema).unwrap_or_else(|| Structure::new([])))
}

pub(crate) fn query_failed(scratch: &SchemaName, action: &'static str, source: postgres::Error) -> StructureError {
    StructureError::Query { schemas: vec![scratch.to_string()], action, source }
}

/// A schema name no other build (in this process or another) uses at the same time.
pub(crate) fn scratch_name() -> SchemaName {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = format!("migrate_reference_{}_{nanos}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    SchemaName::new(&name).expect("the scratch schema name is valid")
}

/// A statement on one line, cut to a readable length for an error message.
pub(crate) fn shorten(statement: &str) -> String {
    let code = statement.lines().skip_while(|l| l.trim().is_empty() || l.trim_start().starts_with("--"));
    let line = code.flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statements_are_shortened_on_one_line() {
        assert_eq!(shorten("-- migrate:no-transaction\n\nCREATE\n  DATABASE   x"), "CREATE DATABASE x");
        let long = format!("SELECT {}", "a".repeat(200));
        assert_eq!(shorten(&long).chars().count(), 123);
    }
}
