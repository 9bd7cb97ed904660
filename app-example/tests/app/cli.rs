//! The operator CLI, run as the real `app-example migrate` binary against the real server.

use std::borrow::BorrowMut;

use assert_cmd::Command;
use integration_tests::{connect, history_rows, tables, TestSchema};
use serde_json::Value;

/// `app-example migrate ARGS` with the test server and no ambient defaults.
pub(crate) fn migrate(args: &[&str]) -> Command {
    let mut command = assert_cmd::cargo::cargo_bin_cmd!("app-example");
    command
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", integration_tests::database_url())
        .env_remove("DEFAULT_SCHEMA_NAME")
        .env_remove("MIGRATE_PROTECTED_SCHEMAS")
        .env_remove("MIGRATE_EXTRA_SEARCH_PATH")
        .env_remove("MIGRATE_HISTORY_TABLE")
        .env_remove("MIGRATE_TEMPLATE_SCHEMA");
    command
}

pub(crate) fn stdout(mut command: impl BorrowMut<Command>, code: i32) -> String {
    let output = command.borrow_mut().output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stdout:\n{text}\nstderr:\n{stderr}");
    text
}

pub(crate) fn stderr(mut command: impl BorrowMut<Command>, code: i32) -> String {
    let output = command.borrow_mut().output().unwrap();
    assert_eq!(output.status.code(), Some(code), "stdout:\n{}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8(output.stderr).unwrap()
}

pub(crate) fn json(command: impl BorrowMut<Command>, code: i32) -> Value {
    serde_json::from_str(&stdout(command, code)).unwrap()
}

/// Snapshot text with the unique test-schema names replaced.
macro_rules! snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({ filters => vec![(r"t-[a-z-]+-\d+-\d+-\d+", "[schema]")] }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}

#[test]
fn upgrade_applies_everything_then_nothing() {
    let schema = TestSchema::new("cli-up");
    let out = stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    snapshot!("upgrade_fresh", out);
    assert_eq!(tables(&mut connect(), &schema.name).len(), 6);
    let out = stdout(migrate(&["upgrade", "--create", "--schema", &schema.name]), 0);
    snapshot!("upgrade_again", out);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

#[test]
fn upgrade_to_a_target_by_version_relative_step_or_name() {
    let schema = TestSchema::new("cli-target");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "--target", "2"]), 0);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 2);
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "-t", "+1"]), 0);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 3);
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "--target", "add_cpf_and_address"]), 0);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 4);
    let error = stderr(migrate(&["upgrade", "--create", "-s", &schema.name, "--target", "nonsense"]), 2);
    snapshot!("bad_target", error);
}

#[test]
fn dry_runs_print_the_sql_and_change_nothing() {
    let schema = TestSchema::new("cli-dry");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "--target", "3"]), 0);
    let before = (tables(&mut connect(), &schema.name), history_rows(&mut connect(), &schema));

    let out = stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "--dry-run"]), 0);
    assert!(out.contains("version 3 -> 8, 5 step(s) (dry run: nothing was changed)"), "{out}");
    assert!(out.contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx"), "{out}");
    let out = stdout(migrate(&["downgrade", "-s", &schema.name, "-t", "base", "--dry-run"]), 0);
    assert!(out.contains("DROP TABLE customers;"), "{out}");
    let plan = json(migrate(&["reset", "-s", &schema.name, "--dry-run", "--format", "json"]), 0);
    assert!(plan["schemas"][0]["prologue"].as_str().unwrap().contains("DROP SCHEMA IF EXISTS"));
    assert_eq!(plan["schemas"][0]["steps"].as_array().unwrap().len(), 8);

    let after = (tables(&mut connect(), &schema.name), history_rows(&mut connect(), &schema));
    assert_eq!(before, after, "the catalog is the same after three dry runs");
}

#[test]
fn protected_schemas_need_confirmation_off_a_terminal() {
    let schema = TestSchema::new("cli-prot");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    let error = stderr(
        migrate(&["downgrade", "-s", &schema.name, "-t", "-1"]).env("MIGRATE_PROTECTED_SCHEMAS", &schema.name),
        3,
    );
    snapshot!("protected_downgrade_refused", error);
    let error = stderr(migrate(&["reset", "-s", &schema.name]).env("MIGRATE_PROTECTED_SCHEMAS", &schema.name), 3);
    assert!(error.contains("refusing to reset protected schema"), "{error}");
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8, "nothing was changed");

    stdout(
        migrate(&["downgrade", "-s", &schema.name, "-t", "-1", "--auto-confirm"])
            .env("MIGRATE_PROTECTED_SCHEMAS", &schema.name),
        0,
    );
    assert_eq!(history_rows(&mut connect(), &schema).len(), 7);
    // `prod` is protected by default.
    let error = stderr(migrate(&["reset", "-s", "prod"]), 3);
    snapshot!("prod_reset_refused", error);
}

#[test]
fn downgrade_accepts_minus_one_and_reset_rebuilds() {
    let schema = TestSchema::new("cli-down");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    let out = stdout(migrate(&["downgrade", "-s", &schema.name, "--target", "-1"]), 0);
    assert!(out.contains("reverted 1 migration(s), version 8 -> 7"), "{out}");
    let out = stdout(migrate(&["downgrade", "-s", &schema.name, "-t", "-2"]), 0);
    assert!(out.contains("version 7 -> 5"), "{out}");

    connect().batch_execute(&format!("CREATE TABLE {}.stray (id int)", schema.quoted())).unwrap();
    let out = stdout(migrate(&["reset", "-s", &schema.name]), 0);
    assert!(out.contains("applied 8 migration(s), version 5 -> 8"), "{out}");
    assert!(!tables(&mut connect(), &schema.name).contains(&"stray".to_owned()));
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

#[test]
fn current_history_and_status_report_state_and_drift() {
    let schema = TestSchema::new("cli-state");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "-t", "6"]), 0);
    let current = json(migrate(&["current", "-s", &schema.name, "--format", "json"]), 0);
    let row = &current["schemas"][0];
    assert_eq!(
        (row["version"].as_i64(), row["state"].as_str(), row["pending"].as_i64()),
        (Some(6), Some("behind"), Some(2))
    );
    let history = stdout(migrate(&["history", "-s", &schema.name]), 0);
    let states: Vec<&str> = history.lines().skip(1).map(|l| l.split_whitespace().nth(3).unwrap()).collect();
    assert_eq!(states, ["applied", "applied", "applied", "applied", "applied", "applied", "pending", "pending"]);

    connect()
        .batch_execute(&format!(
            "UPDATE {}.schema_migrations SET checksum = repeat('0', 64) WHERE version = 2",
            schema.quoted()
        ))
        .unwrap();
    let status = json(migrate(&["status", "-s", &schema.name, "--format", "json"]), 5);
    assert_eq!(status["schemas"][0]["state"], "drifted");
    let history = stdout(migrate(&["history", "-s", &schema.name]), 5);
    assert!(history.contains("checksum mismatch"), "{history}");
    let error = stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 5);
    snapshot!("upgrade_refused_on_drift", error);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 6, "nothing applied on a drifted schema");
}

#[test]
fn many_schemas_by_list_glob_and_file_with_a_summary() {
    let prefix = TestSchema::new("cli-many");
    let names: Vec<String> = (1..=3).map(|i| format!("{}-{i}", prefix.name)).collect();
    let schemas: Vec<TestSchema> = names.iter().map(|n| TestSchema::named(n.clone())).collect();
    let list = format!("{},{}", names[0], names[1]);
    let out = stdout(migrate(&["upgrade", "--create", "--schemas", &list]), 0);
    assert!(out.contains("2 schema(s): 2 changed, 0 already current, 0 failed"), "{out}");

    let glob = format!("{}-*", prefix.name);
    // A glob matches schemas that exist: the third one does not yet.
    let report = json(migrate(&["upgrade", "--create", "--schemas", &glob, "--format", "json", "--jobs", "3"]), 0);
    assert_eq!(report["summary"]["unchanged"], 2);
    let listed: Vec<&str> =
        report["schemas"].as_array().unwrap().iter().map(|s| s["schema"].as_str().unwrap()).collect();
    assert_eq!(listed, [names[0].as_str(), names[1].as_str()]);

    // The third exists now, never migrated; a comment and blank lines in the file are not names.
    connect().batch_execute(&format!("CREATE SCHEMA {}", schemas[2].quoted())).unwrap();
    let file = std::env::temp_dir().join(format!("{}.txt", prefix.name));
    std::fs::write(&file, format!("# tenants to check\n{}  # new\n\n {}\n", names[2], names[0])).unwrap();
    let status = json(migrate(&["status", "--schemas-file", file.to_str().unwrap(), "--format", "json"]), 0);
    assert_eq!(status["schemas"].as_array().unwrap().len(), 2);
    assert_eq!(status["schemas"][0]["schema"], names[2].as_str());
    assert_eq!(status["schemas"][0]["state"], "uninitialized");
    std::fs::remove_file(file).unwrap();

    drop(schemas);
}

#[test]
fn all_schemas_means_every_schema_holding_the_history_table() {
    // A database of its own: `--all-schemas` sees every schema of the database it is pointed at.
    let db = integration_tests::TestDatabase::new();
    stdout(migrate(&["upgrade", "--create", "--schemas", "a,b", "--database-url", &db.url]), 0);
    db.client().batch_execute("CREATE SCHEMA unmanaged").unwrap();
    let all = json(migrate(&["status", "--all-schemas", "--database-url", &db.url, "--format", "json"]), 0);
    let managed: Vec<&str> = all["schemas"].as_array().unwrap().iter().map(|s| s["schema"].as_str().unwrap()).collect();
    assert_eq!(managed, ["a", "b"]);
}

#[test]
fn fail_fast_stops_starting_schemas_and_keep_going_goes_on() {
    let prefix = TestSchema::new("cli-ff");
    let names: Vec<String> = (1..=3).map(|i| format!("{}-{i}", prefix.name)).collect();
    let _schemas: Vec<TestSchema> = names.iter().map(|n| TestSchema::named(n.clone())).collect();
    // The second schema already has a `customers` table, so migration 1 fails there.
    connect()
        .batch_execute(&format!("CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".customers (id int)", names[1]))
        .unwrap();
    let list = names.join(",");
    let out = stdout(migrate(&["upgrade", "--create", "--schemas", &list, "--jobs", "1"]), 4);
    snapshot!("fail_fast", out);
    assert!(!history_rows_exist(&names[2]), "the third schema was not started");

    let report = json(
        migrate(&["upgrade", "--create", "--schemas", &list, "--jobs", "1", "--keep-going", "--format", "json"]),
        4,
    );
    assert_eq!(report["summary"]["failed"], 1);
    assert_eq!(report["summary"]["changed"], 1);
    assert_eq!(report["summary"]["unchanged"], 1);
    assert!(history_rows_exist(&names[2]));
    let failed = &report["schemas"][1];
    assert_eq!(failed["exit_code"], 4);
    assert!(failed["error"].as_str().unwrap().contains("relation \"customers\" already exists"));
}

fn history_rows_exist(schema: &str) -> bool {
    connect()
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("\"{schema}\".schema_migrations")])
        .unwrap()
        .get(0)
}

#[test]
fn usage_errors_exit_two_with_a_clear_message() {
    let error = stderr(migrate(&["upgrade", "--create", "-s", "pg_catalog"]), 2);
    snapshot!("reserved_schema", error);
    let error = stderr(migrate(&["status", "-s", &"x".repeat(64)]), 2);
    snapshot!("long_schema", error);
    let error = stderr(migrate(&["upgrade", "--create", "--schemas", "no-such-schema-*"]), 2);
    snapshot!("glob_matches_nothing", error);
    let error = stderr(migrate(&["status", "-s", "a", "--schemas", "b"]), 2);
    assert!(error.contains("cannot be used with"), "{error}");
    let error = stderr(migrate(&["downgrade", "-s", "dev"]), 2);
    assert!(error.contains("--target <TARGET>"), "{error}");
}

#[test]
fn revision_writes_the_next_pair_or_says_why_not() {
    let dir = std::env::temp_dir().join(format!("cli-revision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("8_customers_updated_at.up.sql"), "SELECT 1;").unwrap();
    let out = stdout(
        migrate(&["revision", "-m", "add user preferences table", "--migrations-dir", dir.to_str().unwrap()]),
        0,
    );
    let up = dir.join("9_add_user_preferences_table.up.sql");
    assert!(out.contains(up.to_str().unwrap()), "{out}");
    assert!(std::fs::read_to_string(&up).unwrap().starts_with("-- add user preferences table\n"));
    assert!(dir.join("9_add_user_preferences_table.down.sql").exists());
    std::fs::remove_dir_all(&dir).unwrap();

    let error = stderr(migrate(&["revision", "-m", "x", "--migrations-dir", "/nonexistent/migrations"]), 1);
    snapshot!("revision_without_folder", error);
}

#[test]
fn several_databases_in_one_run_with_one_summary() {
    let schema = TestSchema::new("cli-multi-db");
    let db = integration_tests::TestDatabase::new();
    let (first, second, database) = (integration_tests::database_url(), db.url.clone(), db.name.clone());

    let report = json(
        migrate(&[
            "upgrade",
            "--create",
            "-s",
            &schema.name,
            "--database-url",
            &first,
            "--database-url",
            &second,
            "--format",
            "json",
        ]),
        0,
    );
    assert_eq!(report["summary"]["changed"], 2);
    let databases: Vec<&str> =
        report["schemas"].as_array().unwrap().iter().map(|s| s["database"].as_str().unwrap()).collect();
    let first_database = first.rsplit('/').next().unwrap().split('?').next().unwrap();
    assert!(databases[0].ends_with(&format!("/{first_database}")), "{databases:?}");
    assert_ne!(databases[0], databases[1]);
    assert!(databases[1].ends_with(&format!("/{database}")), "{databases:?}");
    let mut other = postgres::Client::connect(&second, postgres::NoTls).unwrap();
    assert_eq!(tables(&mut other, &schema.name).len(), 6);
    assert_eq!(tables(&mut connect(), &schema.name).len(), 6);
    drop(other);

    let out = stdout(migrate(&["status", "-s", &schema.name, "--database-url", &first, "--database-url", &second]), 0);
    assert_eq!(out.lines().filter(|l| l.contains("at head")).count(), 3, "{out}");
    assert!(out.ends_with("2 schema(s): 2 at head\n"), "{out}");
}

#[test]
fn repair_and_resolve_are_the_sanctioned_ways_through_drift_and_dirt() {
    let schema = TestSchema::new("cli-fix");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    let table = format!("{}.schema_migrations", schema.quoted());

    connect().batch_execute(&format!("UPDATE {table} SET checksum = repeat('0', 64) WHERE version = 2")).unwrap();
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 5);
    let out = stdout(migrate(&["repair", "-s", &schema.name]), 0);
    assert!(out.contains("repaired 2: checksum 000000000000 -> "), "{out}");
    let status = json(migrate(&["status", "-s", &schema.name, "--format", "json"]), 0);
    assert_eq!(status["schemas"][0]["state"], "at head");

    connect().batch_execute(&format!("UPDATE {table} SET dirty = true WHERE version = 5")).unwrap();
    let out = stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 3);
    snapshot!("dirty_refused", out);
    let error = stderr(migrate(&["resolve", "-s", &schema.name, "--version", "5"]), 2);
    assert!(error.contains("--applied"), "{error}");
    stdout(migrate(&["resolve", "-s", &schema.name, "--version", "5", "--not-applied"]), 0);
    // Versions 6 to 8 are applied, so running 5 again is out of order, and says so.
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 3);
    let out = stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "--allow-out-of-order"]), 0);
    assert!(out.contains("applied 1 migration(s)"), "the no-transaction migration ran again: {out}");
    stdout(migrate(&["resolve", "-s", &schema.name, "--version", "5", "--applied"]), 3);
}

#[test]
fn limits_and_planner_options_parse_or_fail_clearly() {
    let error = stderr(migrate(&["upgrade", "-s", "dev", "--lock-timeout", "5 seconds"]), 2);
    assert!(error.contains("invalid duration \"5 seconds\""), "{error}");
    let schema = TestSchema::new("cli-limits");
    stdout(
        migrate(&[
            "upgrade",
            "--create",
            "-s",
            &schema.name,
            "--lock-timeout",
            "2s",
            "--statement-timeout",
            "1m",
            "--lock-wait",
            "10s",
        ]),
        0,
    );
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);

    // The limits reach the migration SQL: the dry run shows them, and a lock held on a table the third migration
    // needs makes it fail fast with lock_timeout's SQLSTATE, after the second committed.
    let fresh = TestSchema::new("cli-limits-effect");
    stdout(migrate(&["upgrade", "--create", "-s", &fresh.name, "-t", "1"]), 0);
    let plan = stdout(
        migrate(&[
            "upgrade",
            "--create",
            "-s",
            &fresh.name,
            "--lock-timeout",
            "2s",
            "--statement-timeout",
            "1m",
            "--dry-run",
        ]),
        0,
    );
    assert!(
        plan.contains("SET LOCAL lock_timeout = 2000;") && plan.contains("SET LOCAL statement_timeout = 60000;"),
        "{plan}"
    );
    let mut holder = connect();
    holder.batch_execute(&format!("BEGIN; LOCK TABLE {}.customers IN ACCESS EXCLUSIVE MODE", fresh.quoted())).unwrap();
    let args = ["upgrade", "--create", "-s", &fresh.name, "--lock-timeout", "300ms", "--lock-retries", "0"];
    let output = migrate(&args).output().unwrap();
    holder.batch_execute("ROLLBACK").unwrap();
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(4), "{out}{err}");
    assert!(out.contains("applied 1 migration(s) before the failure, then FAILED"), "{out}");
    assert!(
        out.contains(
            "migration 3 (../migrations/3_create_orders.up.sql) could not lock a table within 300 ms (lock_timeout), \
             1 attempt(s), and was rolled back whole after 1 step(s) committed"
        ),
        "{out}"
    );
    assert!(out.contains("(SQLSTATE 55P03)"), "{out}");
    let versions: Vec<i64> = history_rows(&mut connect(), &fresh).iter().map(|r| r.0).collect();
    assert_eq!(versions, [1, 2], "the second migration committed before the third failed");
}

/// The database's schemas (PostgreSQL's own left out), to prove a refusal created nothing.
fn schema_names(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' \
             ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_typo_creates_no_schema_and_names_the_nearest() {
    let db = integration_tests::TestDatabase::new();
    let url = db.url.as_str();
    stdout(migrate(&["upgrade", "--create", "--schemas", "tenant-1,tenant-2", "--database-url", url]), 0);
    stdout(migrate(&["reset", "-s", "prod", "--yes", "--database-url", url]), 0);
    let before = schema_names(&mut db.client());

    // Refused before any schema is touched: tenant-1 and tenant-2 are not upgraded, prdo is not created.
    let error = stderr(migrate(&["upgrade", "--schemas", "tenant-*,prdo", "--database-url", url]), 3);
    snapshot!("typo_refused", error);
    let error = stderr(migrate(&["upgrade", "--schemas", "prdo,tenant-3", "--dry-run", "--database-url", url]), 3);
    assert!(error.contains("schemas \"prdo\" (did you mean \"prod\"?), \"tenant-3\" (did you mean"), "{error}");
    for args in [
        &["downgrade", "-s", "prdo", "-t", "base"][..],
        &["repair", "-s", "prdo"],
        &["resolve", "-s", "prdo", "--version", "5", "--applied"],
    ] {
        let error = stderr(migrate(&[args, &["--database-url", url]].concat()), 3);
        let verb = args[0];
        assert!(
            error.contains(&format!("refusing to {verb}: schema \"prdo\" (did you mean \"prod\"?) does not exist")),
            "{error}"
        );
        assert!(error.contains(&format!("there is nothing to {verb} in a schema that does not exist")), "{error}");
    }
    assert_eq!(schema_names(&mut db.client()), before, "no schema was created");

    // Asked for, it is created; reset creates by definition.
    stdout(migrate(&["upgrade", "--create", "-s", "tenant-3", "--database-url", url]), 0);
    stdout(migrate(&["reset", "-s", "tenant-4", "--database-url", url]), 0);
    assert_eq!(schema_names(&mut db.client()).len(), before.len() + 2);
}

#[test]
fn every_change_to_a_protected_schema_is_confirmed() {
    let prefix = TestSchema::new("cli-guard");
    let schema = TestSchema::named(format!("{}-a", prefix.name));
    let protected = format!("{}-*,other", prefix.name);
    let guarded = |args: &[&str]| {
        let mut command = migrate(args);
        command.env("MIGRATE_PROTECTED_SCHEMAS", &protected);
        command
    };
    // An upgrade is a change: refused off a terminal, before anything is created.
    let error = stderr(guarded(&["upgrade", "--create", "-s", &schema.name]), 3);
    snapshot!("protected_upgrade_refused", error);
    assert!(schema_names(&mut connect()).iter().all(|s| *s != schema.name), "nothing was created");
    // A dry run never asks.
    let plan = stdout(guarded(&["upgrade", "--create", "-s", &schema.name, "--dry-run"]), 0);
    assert!(plan.contains("dry run: nothing was changed"), "{plan}");
    stdout(guarded(&["upgrade", "--create", "-s", &schema.name, "--auto-confirm"]), 0);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);

    let table = format!("{}.schema_migrations", schema.quoted());
    connect().batch_execute(&format!("UPDATE {table} SET checksum = repeat('0', 64) WHERE version = 2")).unwrap();
    let error = stderr(guarded(&["repair", "-s", &schema.name]), 3);
    assert!(error.contains("refusing to repair protected schema"), "{error}");
    stdout(guarded(&["repair", "-s", &schema.name, "--dry-run"]), 0);
    stdout(guarded(&["repair", "-s", &schema.name, "-y"]), 0);
    connect().batch_execute(&format!("UPDATE {table} SET dirty = true WHERE version = 8")).unwrap();
    let error = stderr(guarded(&["resolve", "-s", &schema.name, "--version", "8", "--applied"]), 3);
    assert!(error.contains("refusing to resolve protected schema"), "{error}");
    let dirty: Vec<bool> = history_rows(&mut connect(), &schema).iter().map(|r| r.2).collect();
    assert_eq!(dirty.iter().filter(|d| **d).count(), 1, "still dirty after the refusal");
    stdout(guarded(&["resolve", "-s", &schema.name, "--version", "8", "--applied", "--yes"]), 0);
    let error = stderr(guarded(&["downgrade", "-s", &schema.name, "-t", "-1"]), 3);
    assert!(error.contains("refusing to downgrade protected schema"), "{error}");
    let error = stderr(guarded(&["reset", "-s", &schema.name]), 3);
    assert!(error.contains("refusing to reset protected schema"), "{error}");
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8, "nothing was changed");
    // Not protected when the variable says otherwise; reads never ask.
    stdout(migrate(&["downgrade", "-s", &schema.name, "-t", "-1"]).env("MIGRATE_PROTECTED_SCHEMAS", "prod"), 0);
    stdout(guarded(&["status", "-s", &schema.name]), 0);
}

#[test]
fn a_failed_run_gives_the_sqlstate_and_reads_have_no_write_summary() {
    let schema = TestSchema::new("cli-sqlstate");
    connect().batch_execute(&format!("CREATE SCHEMA {0}; CREATE TABLE {0}.orders (id int)", schema.quoted())).unwrap();
    let out = stdout(migrate(&["upgrade", "-s", &schema.name]), 4);
    assert!(out.contains("applied 2 migration(s) before the failure, then FAILED"), "{out}");
    assert!(out.contains("relation \"orders\" already exists (SQLSTATE 42P07)"), "{out}");
    let report = json(migrate(&["upgrade", "-s", &schema.name, "--format", "json"]), 4);
    assert_eq!(report["schemas"][0]["sqlstate"], "42P07");

    let other = TestSchema::new("cli-sqlstate-b");
    connect().batch_execute(&format!("CREATE SCHEMA {}", other.quoted())).unwrap();
    let list = format!("{},{}", schema.name, other.name);
    let out = stdout(migrate(&["status", "--schemas", &list]), 0);
    assert!(!out.contains("changed") && !out.contains("already current"), "{out}");
    assert!(out.ends_with("2 schema(s): 1 behind, 1 uninitialized\n"), "{out}");
    let out = stdout(migrate(&["current", "-s", &schema.name]), 0);
    assert!(!out.contains("schema(s)"), "{out}");
    let out = stdout(migrate(&["history", "--schemas", &list]), 0);
    assert!(out.ends_with("2 schema(s): 2 read\n"), "{out}");
    let report = json(migrate(&["status", "--schemas", &list, "--format", "json"]), 0);
    assert_eq!(report["summary"]["states"]["behind"], 1);
    assert!(report["summary"].get("changed").is_none(), "{report}");
}

#[test]
fn dry_runs_of_repair_and_reset_show_what_the_run_does() {
    let schema = TestSchema::new("cli-dry-fix");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    let table = format!("{}.schema_migrations", schema.quoted());
    connect()
        .batch_execute(&format!(
            "UPDATE {table} SET checksum = repeat('0', 64) WHERE version = 2; \
             UPDATE {table} SET name = 'old_name' WHERE version = 4"
        ))
        .unwrap();
    let before = history_rows(&mut connect(), &schema);
    let plan = stdout(migrate(&["repair", "-s", &schema.name, "--dry-run"]), 0);
    let fixes: Vec<&str> = plan.lines().filter(|l| l.starts_with("-- repaired")).collect();
    snapshot!("repair_dry_run_fixes", fixes.join("\n"));
    let planned = json(migrate(&["repair", "-s", &schema.name, "--dry-run", "--format", "json"]), 0);
    let fixes = planned["schemas"][0]["fixes"].as_array().unwrap();
    assert_eq!(fixes.iter().map(|f| f["version"].as_i64().unwrap()).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(fixes[0]["before"]["checksum"], "0".repeat(64));
    assert_eq!(
        (fixes[1]["before"]["name"].as_str(), fixes[1]["after"]["name"].as_str()),
        (Some("old_name"), Some("add_cpf_and_address"))
    );
    assert_eq!(history_rows(&mut connect(), &schema), before, "the dry run changed nothing");
    let done = json(migrate(&["repair", "-s", &schema.name, "--format", "json"]), 0);
    assert_eq!(done["schemas"][0]["fixes"], planned["schemas"][0]["fixes"], "the run did what the dry run said");

    stdout(migrate(&["downgrade", "-s", &schema.name, "-t", "5"]), 0);
    let steps = |report: &Value| -> Vec<(i64, String)> {
        report["schemas"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["version"].as_i64().unwrap(), s["kind"].as_str().unwrap().to_owned()))
            .collect()
    };
    let planned = json(migrate(&["reset", "-s", &schema.name, "--dry-run", "--format", "json"]), 0);
    let done = json(migrate(&["reset", "-s", &schema.name, "--format", "json"]), 0);
    assert_eq!(steps(&planned), steps(&done));
    assert_eq!(steps(&done).len(), 8);
    assert_eq!(
        (planned["schemas"][0]["version_before"].as_i64(), planned["schemas"][0]["version_after"].as_i64()),
        (done["schemas"][0]["version_before"].as_i64(), done["schemas"][0]["version_after"].as_i64())
    );
}

#[test]
fn all_schemas_means_this_services_schemas() {
    let db = integration_tests::TestDatabase::new();
    let url = db.url.as_str();
    stdout(migrate(&["upgrade", "--create", "--schemas", "a,b,c,d", "--database-url", url]), 0);
    let mut client = db.client();
    let marker: Option<String> =
        client.query_one("SELECT col_description('a.schema_migrations'::regclass, 1)", &[]).unwrap().get(0);
    assert_eq!(marker.as_deref(), Some("migrate-service:app-example"));
    // c belongs to another service; d's table predates service names.
    client
        .batch_execute(
            "COMMENT ON COLUMN c.schema_migrations.version IS 'migrate-service:billing'; \
             COMMENT ON COLUMN d.schema_migrations.version IS NULL",
        )
        .unwrap();
    let output = migrate(&["status", "--all-schemas", "--database-url", url, "--format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let all: Value = serde_json::from_slice(&output.stdout).unwrap();
    let selected: Vec<&str> =
        all["schemas"].as_array().unwrap().iter().map(|s| s["schema"].as_str().unwrap()).collect();
    assert_eq!(selected, ["a", "b", "d"]);
    let note = String::from_utf8(output.stderr).unwrap();
    let note = note.replace(&db.name, "[database]");
    insta::assert_snapshot!("all_schemas_unmarked_note", note.replace(|c: char| c.is_ascii_digit(), "N"));
}

#[test]
fn help_lists_each_commands_own_options() {
    for (name, args) in [
        ("help_migrate", &["--help"][..]),
        ("help_upgrade", &["upgrade", "--help"]),
        ("help_revision", &["revision", "--help"]),
        ("help_status", &["status", "--help"]),
        ("help_resolve", &["resolve", "--help"]),
    ] {
        let out = stdout(migrate(args), 0);
        snapshot!(name, out);
    }
    let revision = stdout(migrate(&["revision", "--help"]), 0);
    assert!(!revision.contains("--jobs") && !revision.contains("--allow-missing"), "{revision}");
    let error = stderr(migrate(&["resolve", "--version", "3"]), 2);
    assert!(error.contains("<--applied|--not-applied>"), "{error}");
}

#[test]
fn consistent_answers_at_the_edges() {
    let error = stderr(migrate(&["status", "--schemas-file", "/nonexistent/tenants.txt"]), 1);
    snapshot!("schemas_file_missing", error);
    assert_eq!(error.matches("/nonexistent/tenants.txt").count(), 1, "{error}");

    let schema = TestSchema::new("cli-edges");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "-t", "1"]), 0);
    let history = json(migrate(&["history", "-s", &schema.name, "--format", "json"]), 0);
    let applied_at = history["schemas"][0]["migrations"][0]["applied_at"].as_str().unwrap().to_owned();
    let shape: String = applied_at.chars().map(|c| if c.is_ascii_digit() { 'N' } else { c }).collect();
    assert_eq!(shape, "NNNN-NN-NNTNN:NN:NN.NNNNNNZ", "RFC 3339: {applied_at}");

    // Past the end either way is nothing to do, alike.
    stdout(migrate(&["upgrade", "-s", &schema.name]), 0);
    let up = stdout(migrate(&["upgrade", "-s", &schema.name, "-t", "+5"]), 0);
    assert_eq!(up, format!("{}: already at version 8, nothing to do\n", schema.name));
    stdout(migrate(&["downgrade", "-s", &schema.name, "-t", "base"]), 0);
    let down = stdout(migrate(&["downgrade", "-s", &schema.name, "-t", "-1"]), 0);
    assert_eq!(down, format!("{}: already at version none, nothing to do\n", schema.name));

    // The created files' paths are normalised.
    let dir = std::env::temp_dir().join(format!("cli-revision-norm-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let winding = dir.join("sub").join("..");
    let out = stdout(migrate(&["revision", "-m", "x", "--migrations-dir", winding.to_str().unwrap()]), 0);
    assert!(!out.contains(".."), "{out}");
    assert!(out.contains(&dir.canonicalize().unwrap().join("1_x.up.sql").display().to_string()), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// On a terminal (a pseudo-terminal from util-linux `script`), a protected schema is confirmed by typing its name.
#[test]
fn on_a_terminal_a_protected_change_asks_for_the_schemas_name() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    // scripts/setup.sh installs util-linux's `script` where it is missing: without it this test fails, not passes.
    assert!(
        std::process::Command::new("script").arg("--version").output().is_ok(),
        "util-linux `script` is not installed (bash scripts/setup.sh installs it)"
    );
    let schema = TestSchema::new("cli-tty");
    let on_a_terminal = |args: &str, answer: &str| -> (Option<i32>, String) {
        let line = format!("{} migrate {args} -s {}", env!("CARGO_BIN_EXE_app-example"), schema.name);
        let mut child = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("DATABASE_URL", integration_tests::database_url())
            .env("MIGRATE_PROTECTED_SCHEMAS", "t-cli-tty-*")
            .env_remove("DEFAULT_SCHEMA_NAME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Kept open until the command has finished: `script` may stop at the end of its input.
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{answer}").unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let code = child.wait().unwrap().code();
        drop(stdin);
        (code, out)
    };
    let (code, out) = on_a_terminal("upgrade --create -t 2", &schema.name);
    assert_eq!(code, Some(0), "{out}");
    // The prompt says what the confirmation is for: the plan, as the dry run shows it.
    let prompt = format!(
        "schema \"{}\" is protected; upgrade would apply 2 migration(s) (version none -> 2). Type its name to upgrade it",
        schema.name
    );
    assert!(out.contains(&prompt), "{out}");
    assert_eq!(history_rows(&mut connect(), &schema).len(), 2);
    let (code, out) = on_a_terminal("downgrade -t base", "prod");
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("downgrade would revert 2 migration(s) (version 2 -> none)"), "{out}");
    assert!(out.contains("did not match; nothing was changed"), "{out}");
    assert_eq!(history_rows(&mut connect(), &schema).len(), 2, "nothing was reverted");
}

#[test]
fn verify_names_what_a_hand_change_did_and_says_equal_for_the_rest() {
    let prefix = TestSchema::new("cli-verify");
    let names: Vec<String> = (1..=3).map(|i| format!("{}-{i}", prefix.name)).collect();
    let _schemas: Vec<TestSchema> = names.iter().map(|n| TestSchema::named(n.clone())).collect();
    let list = names.join(",");
    stdout(migrate(&["upgrade", "--create", "--schemas", &list]), 0);
    let out = stdout(migrate(&["verify", "--schemas", &list]), 0);
    assert_eq!(
        out,
        format!("{0}: equal\n{1}: equal\n{2}: equal\n3 schema(s): 3 equal\n", names[0], names[1], names[2])
    );

    connect()
        .batch_execute(&format!(
            "DROP INDEX \"{0}\".orders_customer_id_idx; ALTER TABLE \"{0}\".customers ADD COLUMN nickname text",
            names[1]
        ))
        .unwrap();
    let out = stdout(migrate(&["verify", "--schemas", &list]), 5);
    assert!(out.starts_with(&format!("{}: equal\n{}: differs (", names[0], names[1])), "{out}");
    assert!(out.contains("\n  missing index orders_customer_id_idx\n"), "{out}");
    assert!(out.contains("\n  extra column customers.nickname\n      type: text\n"), "{out}");
    assert!(out.contains("\n  changed table customers (columns)\n      columns expected: "), "{out}");
    assert!(out.contains(&format!("\n{}: equal\n", names[2])), "{out}");
    snapshot!("verify_hand_change", out);

    // The same through a glob, as JSON.
    let glob = format!("{}-*", prefix.name);
    let report = json(migrate(&["verify", "--schemas", &glob, "--format", "json"]), 5);
    let outcomes: Vec<&str> =
        report["schemas"].as_array().unwrap().iter().map(|s| s["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["equal", "differs", "equal"]);
    assert_eq!(report["summary"]["states"]["equal"], 2);
    assert_eq!(report["summary"]["states"]["differs"], 1);
    assert_eq!(report["exit_code"], 5);
    let changed = &report["schemas"][1];
    assert_eq!(changed["version"], 8);
    let differences = changed["differences"].as_array().unwrap();
    let index = differences.iter().find(|d| d["kind"] == "index").unwrap();
    assert_eq!((index["label"].as_str(), index["object"].as_str()), (Some("missing"), Some("orders_customer_id_idx")));
    assert!(index["expected"]["definition"].as_str().unwrap().starts_with("CREATE INDEX orders_customer_id_idx ON"));
    assert!(index.get("found").is_none(), "{index}");
    let column = differences.iter().find(|d| d["kind"] == "column").unwrap();
    assert_eq!((column["label"].as_str(), column["object"].as_str()), (Some("extra"), Some("customers.nickname")));
    assert_eq!(column["found"]["type"], "text");
    let table = differences.iter().find(|d| d["kind"] == "table").unwrap();
    assert_eq!(table["label"], "changed");
    assert_eq!(table["changed"], serde_json::json!(["columns"]));
    assert!(table["found"]["columns"].as_str().unwrap().contains("nickname"), "{table}");
    assert!(!table["expected"]["columns"].as_str().unwrap().contains("nickname"), "{table}");
    assert_eq!(report["schemas"][0]["differences"], serde_json::json!([]));
}

#[test]
fn verify_a_schema_never_migrated_passes_one_ahead_is_drift_and_a_missing_one_is_refused() {
    let empty = TestSchema::new("cli-verify-empty");
    connect().batch_execute(&format!("CREATE SCHEMA {}", empty.quoted())).unwrap();
    let out = stdout(migrate(&["verify", "-s", &empty.name]), 0);
    assert_eq!(out, format!("{}: not migrated\n", empty.name));

    // A version the binary does not have: what it built is unknown here, and that is drift.
    let ahead = TestSchema::new("cli-verify-ahead");
    stdout(migrate(&["upgrade", "--create", "-s", &ahead.name]), 0);
    connect()
        .batch_execute(&format!(
            "INSERT INTO {}.schema_migrations (version, name, checksum) VALUES (99, 'future', repeat('0', 64))",
            ahead.quoted()
        ))
        .unwrap();
    let out = stdout(migrate(&["verify", "-s", &ahead.name]), 5);
    assert_eq!(out, format!("{}: ahead (applied version(s) 99 that this binary does not have)\n", ahead.name));
    let report = json(migrate(&["verify", "-s", &ahead.name, "--format", "json"]), 5);
    assert_eq!(report["schemas"][0]["ahead_versions"], serde_json::json!([99]));

    let missing = format!("{}-nope", empty.name);
    let error = stderr(migrate(&["verify", "-s", &missing]), 3);
    assert!(error.contains(&format!("refusing to verify: schema {missing:?}")), "{error}");
    // The nearest name first; the test's other schema may follow it, depending on the digits in the names.
    assert!(error.contains(&format!("(did you mean {:?}", empty.name)), "{error}");
    assert!(error.contains("?) does not exist; check the name"), "{error}");
    assert!(!error.contains("nothing was changed"), "a read changes nothing anyway: {error}");
}

#[test]
fn diff_names_each_difference_and_its_suggested_sql_closes_the_gap() {
    let (a, b) = (TestSchema::new("cli-diff-a"), TestSchema::new("cli-diff-b"));
    stdout(migrate(&["upgrade", "--create", "--schemas", &format!("{},{}", a.name, b.name)]), 0);
    let out = stdout(migrate(&["diff", &a.name, &b.name]), 0);
    assert_eq!(out, format!("{} and {} have the same structure\n", a.name, b.name));

    // B lacks an index and a column A has, and its default differs.
    connect()
        .batch_execute(&format!(
            "ALTER TABLE {a}.customers ADD COLUMN nickname text NOT NULL DEFAULT ''; \
             DROP INDEX {b}.orders_customer_id_idx; \
             ALTER TABLE {b}.orders ALTER COLUMN status SET DEFAULT 'paid'",
            a = a.quoted(),
            b = b.quoted()
        ))
        .unwrap();
    let out = stdout(migrate(&["diff", &a.name, &b.name]), 5);
    for expected in [
        format!("only in {}:\n  column customers.nickname\n      type: text\n      not null\n", a.name),
        "  index orders_customer_id_idx\n      definition: CREATE INDEX orders_customer_id_idx ON <schema>.orders"
            .to_owned(),
        format!("changed:\n  table customers (columns)\n      columns in {}: ", a.name),
        format!(
            "  column orders.status (default)\n      default in {}: 'pending'::<schema>.order_status\n      \
             default in {}: 'paid'::<schema>.order_status\n",
            a.name, b.name
        ),
        format!("{} and {} differ: 2 only in {}, 2 changed\n", a.name, b.name, a.name),
    ] {
        assert!(out.contains(&expected), "{expected}\nnot in\n{out}");
    }
    let report = json(migrate(&["diff", &a.name, &b.name, "--format", "json"]), 5);
    assert_eq!(report["summary"], serde_json::json!({ "only_in_a": 2, "only_in_b": 0, "changed": 2 }));
    assert_eq!(report["equal"], false);
    assert!(report["sql"].is_null());

    let sql = stdout(migrate(&["diff", &a.name, &b.name, "--sql"]), 5);
    assert!(sql.starts_with("-- SUGGESTION ONLY: review before running."), "{sql}");
    assert!(sql.contains(&format!("CREATE INDEX orders_customer_id_idx ON {}.orders", b.quoted())), "{sql}");
    // Nothing was run: B still differs until the script is applied by hand.
    stdout(migrate(&["diff", &a.name, &b.name]), 5);
    connect().batch_execute(&sql).unwrap();
    let out = stdout(migrate(&["diff", &a.name, &b.name]), 0);
    assert!(out.ends_with("have the same structure\n"), "{out}");
    let sql = stdout(migrate(&["diff", &a.name, &b.name, "--sql"]), 0);
    assert!(sql.starts_with("-- ") && sql.lines().all(|l| l.starts_with("--")), "{sql}");

    // The other way round, B's extra objects are dropped, and the script says what it cannot express.
    connect()
        .batch_execute(&format!(
            "CREATE INDEX stray ON {b}.products (name); ALTER TABLE {b}.customers DROP COLUMN cpf",
            b = b.quoted()
        ))
        .unwrap();
    let sql = stdout(migrate(&["diff", &a.name, &b.name, "--sql"]), 5);
    assert!(sql.contains(&format!("DROP INDEX {}.\"stray\";", b.quoted())), "{sql}");
    assert!(
        sql.contains("-- Not expressible as SQL here; fix by hand:\n-- table customers: its columns are ordered"),
        "{sql}"
    );
}

#[test]
fn diff_of_a_schema_that_does_not_exist_is_refused_with_the_nearest_names() {
    let a = TestSchema::new("cli-diff-missing");
    connect().batch_execute(&format!("CREATE SCHEMA {}", a.quoted())).unwrap();
    let missing = format!("{}-nope", a.name);
    let error = stderr(migrate(&["diff", &a.name, &missing]), 3);
    assert_eq!(
        error,
        format!(
            "error: refusing to diff: schema {missing:?} (did you mean {:?}?) does not exist; check the name\n",
            a.name
        )
    );
    let error = stderr(migrate(&["diff", &a.name, "pg_catalog"]), 2);
    assert!(error.contains("pg_catalog"), "{error}");
    let error = stderr(migrate(&["diff", &a.name]), 2);
    assert!(error.contains("<B>"), "{error}");
}

#[test]
fn help_of_verify_and_diff_lists_their_own_options() {
    for (name, args) in [("help_verify", &["verify", "--help"][..]), ("help_diff", &["diff", "--help"])] {
        let out = stdout(migrate(args), 0);
        snapshot!(name, out);
    }
    let diff = stdout(migrate(&["diff", "--help"]), 0);
    assert!(!diff.contains("--jobs") && !diff.contains("--schemas") && diff.contains("--sql"), "{diff}");
    let verify = stdout(migrate(&["verify", "--help"]), 0);
    assert!(!verify.contains("--dry-run") && !verify.contains("--sql") && verify.contains("not migrated"), "{verify}");
}

#[test]
fn verify_over_two_databases_names_the_database_of_each_line() {
    let schema = TestSchema::new("cli-verify-dbs");
    let db = integration_tests::TestDatabase::new();
    let (first, second) = (integration_tests::database_url(), db.url.clone());
    let urls = ["--database-url", first.as_str(), "--database-url", second.as_str()];
    stdout(migrate(&[&["upgrade", "--create", "-s", &schema.name][..], &urls].concat()), 0);
    db.client().batch_execute(&format!("DROP INDEX {}.orders_customer_id_idx", schema.quoted())).unwrap();
    let out = stdout(migrate(&[&["verify", "-s", &schema.name, "--jobs", "2"][..], &urls].concat()), 5);
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(&schema.name)).collect();
    assert_eq!(lines.len(), 2, "{out}");
    let equal = lines.iter().find(|l| l.ends_with(": equal")).expect("one database is equal");
    let differs = lines.iter().find(|l| l.contains(": differs (1 difference(s)")).expect("the other differs");
    assert!(!equal.contains(&db.name), "{out}");
    assert!(differs.contains(&format!("/{} {}", db.name, schema.name)), "{out}");
    assert!(out.contains("\n  missing index orders_customer_id_idx\n"), "{out}");
    assert!(out.ends_with("2 schema(s): 1 differs, 1 equal\n"), "{out}");
}
