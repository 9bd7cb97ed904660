//! The reference structure: what the binary's migrations build, read from a scratch schema inside one transaction
//! that is always rolled back.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use migrate_core::Migration;
use postgres::error::SqlState;

use super::{catalog, Structure};
use crate::sql::{split_statements, word_spans};
use crate::{Error, MigrationSet, SchemaName};

/// The structure the up scripts of `set` build, up to and including `version`, without a history table.
///
/// Inside one transaction that is rolled back: create a uniquely named scratch schema, `SET LOCAL search_path` to
/// it, run each up script in set order as the engine would (a plain query string each), read the structure with
/// the same reader as for live schemas, roll back. Nothing is left behind, and the role needs `CREATE` on the
/// database. A no-transaction script runs statement by statement with `CONCURRENTLY` removed from
/// `CREATE INDEX`, `DROP INDEX`, `REINDEX` and `ALTER TABLE ... DETACH PARTITION` (an index built concurrently
/// ends up the same as one built plainly); any other statement that cannot run in a transaction is refused with
/// [`Error::NotTransactional`], naming the file. Scripts must not end the transaction themselves (the engine
/// requires the same).
///
/// ```no_run
/// # use migrate_runtime::{embed_migrations, MigrationSet};
/// # static MIGRATIONS: MigrationSet = embed_migrations!("../migrations");
/// # let mut client = postgres::Client::connect("host=127.0.0.1 user=postgres", postgres::NoTls).unwrap();
/// let head = MIGRATIONS.head().unwrap_or(0);
/// let reference = migrate_runtime::reference_structure(&mut client, &MIGRATIONS, head, "schema_migrations")?;
/// println!("{} objects, fingerprint {}", reference.len(), reference.fingerprint());
/// # Ok::<(), migrate_runtime::Error>(())
/// ```
pub fn reference_structure(
    client: &mut postgres::Client,
    set: &MigrationSet,
    version: i64,
    history_table: &str,
) -> Result<Structure, Error> {
    crate::schema::validate_identifier(history_table, "history table")?;
    let migrations: Vec<&Migration> = set.iter().filter(|m| m.version <= version).collect();
    build(client, &migrations, history_table)
}

/// The structure `migrations` build, applied in the order given.
pub(crate) fn build(
    client: &mut postgres::Client,
    migrations: &[&Migration],
    history_table: &str,
) -> Result<Structure, Error> {
    let scratch = scratch_name();
    let result = build_in(client, &scratch, migrations, history_table);
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
    history_table: &str,
) -> Result<Structure, Error> {
    let mut transaction = client.transaction().map_err(|e| query_failed(scratch, "begin the reference build", e))?;
    transaction
        .batch_execute(&format!("CREATE SCHEMA {}", scratch.quoted()))
        .map_err(|e| query_failed(scratch, "create the scratch schema", e))?;
    let set_path = format!("SET LOCAL search_path TO {};\n", scratch.quoted());
    for migration in migrations {
        let script = &migration.up;
        let failed = |error: postgres::Error| {
            let (code, message) = describe(&error);
            Error::ReferenceFailed {
                schema: scratch.to_string(),
                version: migration.version,
                file: script.file.to_string(),
                code,
                message,
            }
        };
        if !script.no_transaction {
            // A newline ends a trailing `--` comment; the semicolon ends the script's last statement.
            transaction.batch_execute(&format!("{set_path}{}\n;", script.sql)).map_err(failed)?;
            continue;
        }
        transaction.batch_execute(&set_path).map_err(failed)?;
        for (_, statement) in split_statements(&script.sql) {
            let statement = without_concurrently(statement);
            if let Err(error) = transaction.batch_execute(&statement) {
                if error.code() == Some(&SqlState::ACTIVE_SQL_TRANSACTION) {
                    return Err(Error::NotTransactional {
                        schema: scratch.to_string(),
                        version: migration.version,
                        file: script.file.to_string(),
                        statement: shorten(&statement),
                        message: describe(&error).1,
                    });
                }
                return Err(failed(error));
            }
        }
    }
    let mut structures = catalog::read(&mut transaction, std::slice::from_ref(scratch), history_table)
        .map_err(|e| query_failed(scratch, "read the reference structure", e))?;
    let structure = structures.remove(scratch).unwrap_or_else(|| Structure::new([]));
    transaction.rollback().map_err(|e| query_failed(scratch, "roll back the reference build", e))?;
    Ok(structure)
}

fn query_failed(scratch: &SchemaName, action: &'static str, source: postgres::Error) -> Error {
    Error::StructureQuery { schemas: vec![scratch.to_string()], action, source }
}

/// A schema name no other build (in this process or another) uses at the same time.
fn scratch_name() -> SchemaName {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = format!("migrate_reference_{}_{nanos}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    SchemaName::new(&name).expect("the scratch schema name is valid")
}

/// SQLSTATE and PostgreSQL's message with its detail and hint.
fn describe(error: &postgres::Error) -> (Option<String>, String) {
    match error.as_db_error() {
        Some(db) => {
            let mut message = db.message().to_owned();
            for (label, extra) in [("detail", db.detail()), ("hint", db.hint())] {
                if let Some(extra) = extra {
                    message.push_str(&format!(" ({label}: {extra})"));
                }
            }
            (Some(db.code().code().to_owned()), message)
        }
        None => (None, error.to_string()),
    }
}

/// A statement on one line, cut to a readable length for an error message.
fn shorten(statement: &str) -> String {
    let code = statement.lines().skip_while(|l| l.trim().is_empty() || l.trim_start().starts_with("--"));
    let line = code.flat_map(str::split_whitespace).collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(120) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// The statement with the `CONCURRENTLY` of `CREATE [UNIQUE] INDEX`, `DROP INDEX`, `REINDEX [(...)] {INDEX | TABLE
/// | SCHEMA | DATABASE | SYSTEM}` or `ALTER TABLE ... DETACH PARTITION ...` removed, so it can run in a
/// transaction; any other statement unchanged. Matches keywords outside comments, quotes and parentheses only.
pub(crate) fn without_concurrently(statement: &str) -> Cow<'_, str> {
    let tokens = word_spans(statement);
    let word = |i: usize| tokens.get(i).map(|&(s, e)| &statement[s..e]);
    let is = |i: usize, keyword: &str| word(i).is_some_and(|w| w.eq_ignore_ascii_case(keyword));
    let position = if is(0, "CREATE") {
        let at = if is(1, "UNIQUE") { 2 } else { 1 };
        (is(at, "INDEX") && is(at + 1, "CONCURRENTLY")).then_some(at + 1)
    } else if is(0, "DROP") {
        (is(1, "INDEX") && is(2, "CONCURRENTLY")).then_some(2)
    } else if is(0, "REINDEX") {
        // Options in parentheses come first, as words of their own.
        let object =
            (1..tokens.len()).find(|&i| ["INDEX", "TABLE", "SCHEMA", "DATABASE", "SYSTEM"].iter().any(|k| is(i, k)));
        object.and_then(|at| is(at + 1, "CONCURRENTLY").then_some(at + 1))
    } else if is(0, "ALTER") && is(1, "TABLE") {
        let detach = (2..tokens.len()).find(|&i| is(i, "DETACH") && is(i + 1, "PARTITION"));
        detach.and_then(|d| (d + 2..tokens.len()).find(|&i| is(i, "CONCURRENTLY")))
    } else {
        None
    };
    match position {
        Some(i) => {
            let (start, end) = tokens[i];
            Cow::Owned(format!("{}{}", &statement[..start], statement[end..].trim_start_matches([' ', '\t'])))
        }
        None => Cow::Borrowed(statement),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrently_is_removed_where_it_keeps_a_statement_out_of_transactions() {
        let cases = [
            (
                "-- migrate:no-transaction\n-- why\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON orders (a)",
                "-- migrate:no-transaction\n-- why\nCREATE INDEX IF NOT EXISTS i ON orders (a)",
            ),
            ("create unique index concurrently i on t (a)", "create unique index i on t (a)"),
            ("DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX IF EXISTS i"),
            ("REINDEX (VERBOSE) INDEX CONCURRENTLY i", "REINDEX (VERBOSE) INDEX i"),
            ("REINDEX TABLE CONCURRENTLY t", "REINDEX TABLE t"),
            ("ALTER TABLE p DETACH PARTITION \"p 1\" CONCURRENTLY", "ALTER TABLE p DETACH PARTITION \"p 1\" "),
            (
                "/* CREATE INDEX CONCURRENTLY */ CREATE INDEX CONCURRENTLY i ON t (a)",
                "/* CREATE INDEX CONCURRENTLY */ CREATE INDEX i ON t (a)",
            ),
        ];
        for (statement, expected) in cases {
            assert_eq!(without_concurrently(statement), expected, "{statement}");
        }
    }

    #[test]
    fn other_statements_are_left_alone() {
        for statement in [
            "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
            "SELECT 'CREATE INDEX CONCURRENTLY'",
            "CREATE INDEX \"CONCURRENTLY\" ON t (a)",
            "CREATE DATABASE x",
            "VACUUM t",
            "COMMENT ON INDEX i IS 'built CONCURRENTLY'",
        ] {
            assert!(matches!(without_concurrently(statement), Cow::Borrowed(s) if s == statement), "{statement}");
        }
    }

    #[test]
    fn long_statements_are_shortened_on_one_line() {
        assert_eq!(shorten("-- migrate:no-transaction\n\nCREATE\n  DATABASE   x"), "CREATE DATABASE x");
        let long = format!("SELECT {}", "a".repeat(200));
        assert_eq!(shorten(&long).chars().count(), 123);
    }
}
