//! `app-example migrate baseline`, `adopt` and `--extra-search-path` through the real binary, with exit codes.
//! (The tables that sqlx, diesel and refinery write themselves are adopted in `tests/tests/integration/adopt.rs`;
//! here a sqlx table is written by hand, as sqlx would have.)

use std::borrow::BorrowMut;

use assert_cmd::Command;
use integration_tests::{connect, TestSchema};

use crate::cli::migrate;

/// Run; check the exit code; stdout, and stdout and stderr together (a schema's failure is a line on stdout, an
/// error that stops the command is on stderr).
fn run(mut command: impl BorrowMut<Command>, code: i32) -> (String, String) {
    let output = command.borrow_mut().output().unwrap();
    let (out, err) = (String::from_utf8(output.stdout).unwrap(), String::from_utf8(output.stderr).unwrap());
    assert_eq!(output.status.code(), Some(code), "stdout:\n{out}\nstderr:\n{err}");
    let both = format!("{out}{err}");
    (out, both)
}

fn migration_sql(file: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(file)).unwrap()
}

/// `(version, applied_by)` of the history rows; empty without a history table.
fn recorded(schema: &TestSchema) -> Vec<(i64, String)> {
    let mut client = connect();
    let table = format!("{}.schema_migrations", schema.quoted());
    let exists: bool = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).unwrap().get(0);
    if !exists {
        return Vec::new();
    }
    let sql = format!("SELECT version, applied_by FROM {table} ORDER BY version");
    client.query(&sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// A schema holding what migrations 1 and 2 create, built without this tool.
fn built_by_hand(label: &str) -> TestSchema {
    let schema = TestSchema::new(label);
    let sql = format!(
        "CREATE SCHEMA {s}; SET search_path TO {s};\n{}\n{}\nRESET search_path;",
        migration_sql("1_create_customers.up.sql"),
        migration_sql("2_create_products.up.sql"),
        s = schema.quoted()
    );
    connect().batch_execute(&sql).unwrap();
    schema
}

#[test]
fn baseline_records_then_upgrade_applies_the_rest() {
    let schema = built_by_hand("cli-baseline");
    let (out, _) = run(migrate(&["baseline", "-s", &schema.name, "--version", "2", "--dry-run"]), 0);
    assert!(out.contains("would have recorded 1, 2 as applied without running them (baseline)"), "{out}");
    assert!(out.contains("INSERT INTO"), "the SQL it would send: {out}");
    assert_eq!(recorded(&schema), [], "a dry run changes nothing");

    let (out, _) = run(migrate(&["baseline", "-s", &schema.name, "--version", "2"]), 0);
    assert!(out.contains("recorded 1, 2 as applied without running them (baseline), version none -> 2"), "{out}");
    let by = "postgres (baseline)".to_owned();
    assert_eq!(recorded(&schema), [(1, by.clone()), (2, by.clone())]);
    let (out, _) = run(migrate(&["history", "-s", &schema.name]), 0);
    assert!(out.contains("postgres (baseline)"), "history says how it was recorded: {out}");

    let (out, _) = run(migrate(&["upgrade", "-s", &schema.name]), 0);
    assert!(out.contains("version 2 -> 8"), "{out}");

    // Below what is applied: refused, exit 3, nothing changed.
    let before = recorded(&schema);
    let (_, err) = run(migrate(&["baseline", "-s", &schema.name, "--version", "1"]), 3);
    assert!(err.contains("cannot baseline at version 1"), "{err}");
    assert_eq!(recorded(&schema), before);
}

#[test]
fn baseline_refusals_have_exit_codes() {
    let missing = TestSchema::new("cli-baseline-none");
    let (_, err) = run(migrate(&["baseline", "-s", &missing.name, "--version", "2"]), 3);
    assert!(err.contains("does not exist"), "{err}");
    let schema = built_by_hand("cli-baseline-bad");
    run(migrate(&["baseline", "-s", &schema.name, "--version", "99"]), 2);
    run(migrate(&["baseline", "-s", &schema.name]), 2);
    // Protected schemas ask, as for repair; without a terminal, --yes is needed.
    let mut protected = migrate(&["baseline", "-s", &schema.name, "--version", "2"]);
    protected.env("MIGRATE_PROTECTED_SCHEMAS", &schema.name);
    let (_, err) = run(protected, 3);
    assert!(err.contains("refusing to baseline protected schema"), "{err}");
    assert_eq!(recorded(&schema), []);
}

/// A `_sqlx_migrations` table as sqlx writes it, with the rows it would record for `versions` of the files.
fn sqlx_table(schema: &TestSchema, rows: &[(i64, &str, bool)]) {
    let table = format!("{}._sqlx_migrations", schema.quoted());
    let mut sql = format!(
        "CREATE TABLE {table} (version BIGINT PRIMARY KEY, description TEXT NOT NULL, installed_on TIMESTAMPTZ NOT NULL \
         DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);\n"
    );
    for (version, file, success) in rows {
        let checksum = migrate_runtime::sqlx_checksum(&migration_sql(file));
        sql.push_str(&format!(
            "INSERT INTO {table} VALUES ({version}, 'm', now(), {success}, decode('{checksum}', 'hex'), 1);\n"
        ));
    }
    connect().batch_execute(&sql).unwrap();
}

#[test]
fn adopt_from_a_sqlx_table_and_its_refusals() {
    let schema = built_by_hand("cli-adopt");
    run(migrate(&["adopt", "-s", &schema.name, "--from", "flyway"]), 2);
    let (_, err) = run(migrate(&["adopt", "-s", &schema.name, "--from", "sqlx"]), 3);
    assert!(err.contains("no sqlx history table _sqlx_migrations"), "{err}");

    sqlx_table(&schema, &[(1, "1_create_customers.up.sql", true), (2, "2_create_products.up.sql", true)]);
    let (out, _) = run(migrate(&["adopt", "-s", &schema.name, "--from", "sqlx", "--dry-run"]), 0);
    assert!(out.contains("would have recorded 1, 2 as applied without running them (adopted from sqlx)"), "{out}");
    let (out, _) = run(migrate(&["adopt", "-s", &schema.name, "--from", "sqlx", "--format", "json"]), 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(json.to_string().contains(r#""from":"sqlx""#), "{json}");
    let by = "postgres (adopted from sqlx)".to_owned();
    assert_eq!(recorded(&schema), [(1, by.clone()), (2, by)]);
    let (out, _) = run(migrate(&["upgrade", "-s", &schema.name]), 0);
    assert!(out.contains("version 2 -> 8"), "{out}");

    // A version the binary lacks, a failed row, an edited file: refused by name, nothing recorded.
    let lacking = built_by_hand("cli-adopt-lack");
    sqlx_table(&lacking, &[(1, "1_create_customers.up.sql", true)]);
    connect()
        .batch_execute(&format!(
            "INSERT INTO {}._sqlx_migrations VALUES (99, 'from another branch', now(), true, '\\x00', 1)",
            lacking.quoted()
        ))
        .unwrap();
    let (_, err) = run(migrate(&["adopt", "-s", &lacking.name, "--from", "sqlx"]), 5);
    assert!(err.contains("migration 99 (from another branch)"), "{err}");
    let failed = built_by_hand("cli-adopt-fail");
    sqlx_table(&failed, &[(1, "1_create_customers.up.sql", true), (2, "2_create_products.up.sql", false)]);
    let (_, err) = run(migrate(&["adopt", "-s", &failed.name, "--from", "sqlx"]), 3);
    assert!(err.contains("recorded migration 2 (m) as failed"), "{err}");
    let edited = built_by_hand("cli-adopt-edit");
    sqlx_table(&edited, &[(1, "2_create_products.up.sql", true)]);
    let (_, err) = run(migrate(&["adopt", "-s", &edited.name, "--from", "sqlx"]), 5);
    assert!(err.contains("1_create_customers.up.sql) differs from what sqlx applied"), "{err}");
    for schema in [&lacking, &failed, &edited] {
        assert_eq!(recorded(schema), []);
    }
}

#[test]
fn extra_search_path_flag_and_environment() {
    let schema = TestSchema::new("cli-path");
    let (out, _) =
        run(migrate(&["upgrade", "--create", "-s", &schema.name, "--extra-search-path", "public", "--dry-run"]), 0);
    let expected = format!("SET LOCAL search_path TO {}, \"public\";", schema.quoted());
    assert!(out.contains(&expected), "{out}");
    assert!(!out.contains(&format!("search_path TO {};", schema.quoted())), "every setting has it: {out}");
    let mut from_env = migrate(&["upgrade", "--create", "-s", &schema.name, "--dry-run"]);
    from_env.env("MIGRATE_EXTRA_SEARCH_PATH", "public");
    let (out, _) = run(from_env, 0);
    assert!(out.contains(&expected), "{out}");
    let (_, err) = run(migrate(&["upgrade", "--create", "-s", &schema.name, "--extra-search-path", "pg_catalog"]), 2);
    assert!(err.contains("--extra-search-path") && err.contains("pg_"), "{err}");
    // A real run with it.
    run(migrate(&["upgrade", "--create", "-s", &schema.name, "--extra-search-path", "public"]), 0);
    assert_eq!(recorded(&schema).len(), 8);
}
