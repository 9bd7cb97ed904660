//! The fault suite: real processes against the real server, killed, raced and cut off, and what must hold after.

use std::process::Stdio;
use std::time::Duration;

use crate::probe;
use integration_tests::{catalog_fingerprint, connect, history_rows, Tenants, TestSchema};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator};

/// The set the `fleet-probe` binary embeds.
static PROBE_SET: MigrationSet = embed_migrations!("../bench/migrations");

fn assert_whole(schemas: &[TestSchema], reference: &str) {
    let mut client = connect();
    let versions: Vec<i64> = PROBE_SET.iter().map(|m| m.version).collect();
    for schema in schemas {
        let rows = history_rows(&mut client, schema);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), versions, "{}", schema.name);
        assert!(rows.iter().all(|r| !r.2), "{}: nothing dirty", schema.name);
        assert_eq!(catalog_fingerprint(&mut client, &schema.name), reference, "{}", schema.name);
    }
}

fn clean_reference() -> (TestSchema, String) {
    let schema = TestSchema::new("reference");
    Migrator::new(&PROBE_SET).migrate(&mut connect(), &schema.name).unwrap();
    let fingerprint = catalog_fingerprint(&mut connect(), &schema.name);
    (schema, fingerprint)
}

#[test]
fn a_fan_out_killed_at_twenty_points_completes_on_rerun_with_every_schema_whole() {
    let (_reference, fingerprint) = clean_reference();
    let Tenants { schemas, file, .. } = Tenants::new("crash", 100);
    let mut killed_mid_run = 0;
    for point in 0..20u64 {
        let mut child = probe(&["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill points spread from just after start to well into the run.
        std::thread::sleep(Duration::from_millis(15 + point * 23));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    assert!(killed_mid_run >= 15, "most kills landed mid-run ({killed_mid_run} of 20)");
    let status = probe(&["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "4"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_whole(&schemas, &fingerprint);
}

#[test]
fn sixteen_processes_over_fifty_schemas_apply_every_migration_exactly_once() {
    let (_reference, fingerprint) = clean_reference();
    let Tenants { schemas, file, .. } = Tenants::new("race50", 50);
    let applied =
        integration_tests::race((0..16).map(|_| {
            probe(&["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "2", "--format", "json"])
        }));
    assert_eq!(applied, 50 * PROBE_SET.len(), "each migration of each schema applied once across all processes");
    assert_whole(&schemas, &fingerprint);
}

#[test]
fn a_terminated_backend_is_a_clear_error_leaves_nothing_half_applied_and_a_rerun_completes() {
    let schema = TestSchema::new("terminated");
    let mut client = connect();
    let first = integration_tests::set(vec![integration_tests::migration(1, "a", "CREATE TABLE a (id int);", None)]);
    Migrator::new(&first).migrate(&mut client, &schema.name).unwrap();
    let slow = integration_tests::set(vec![
        integration_tests::migration(1, "a", "CREATE TABLE a (id int);", None),
        integration_tests::migration(2, "slow", "CREATE TABLE b (id int);\nSELECT pg_sleep(5);", None),
    ]);
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let error = std::thread::scope(|scope| {
        let killer = scope.spawn(move || {
            let mut admin = connect();
            // Wait until the migration is inside its sleep, then cut the backend off.
            for _ in 0..100 {
                let sleeping: bool = admin
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep(5)%')",
                        &[&pid],
                    )
                    .unwrap()
                    .get(0);
                if sleeping {
                    let done: bool = admin.query_one("SELECT pg_terminate_backend($1)", &[&pid]).unwrap().get(0);
                    return done;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        });
        let error = Migrator::new(&slow).migrate(&mut client, &schema.name).unwrap_err();
        assert!(killer.join().unwrap(), "the backend was terminated mid-migration");
        error
    });
    let message = error.to_string();
    assert!(matches!(error.kind(), migrate_runtime::ErrorKind::MigrationFailed { version: 2, .. }), "{message}");
    assert!(message.contains("terminating connection") || message.contains("connection closed"), "{message}");
    let mut fresh = connect();
    assert_eq!(
        integration_tests::tables(&mut fresh, &schema.name),
        ["a", "schema_migrations"],
        "table b was rolled back"
    );
    assert_eq!(history_rows(&mut fresh, &schema).len(), 1);
    let quick = integration_tests::set(vec![
        integration_tests::migration(1, "a", "CREATE TABLE a (id int);", None),
        integration_tests::migration(2, "slow", "CREATE TABLE b (id int);\nSELECT pg_sleep(5);", None),
    ]);
    let started = std::time::Instant::now();
    Migrator::new(&quick).migrate(&mut fresh, &schema.name).unwrap();
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(history_rows(&mut fresh, &schema).len(), 2);
}

#[test]
fn one_failing_tenant_is_left_exactly_as_it_was() {
    let Tenants { schemas, names, .. } = Tenants::new("one-fails", 3);
    let mut client = connect();
    // The middle tenant has an `accounts` table of its own: migration 1 fails there.
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {0}.accounts (legacy int); INSERT INTO {0}.accounts VALUES (7)",
            schemas[1].quoted()
        ))
        .unwrap();
    let before = catalog_fingerprint(&mut client, &names[1]);
    let output =
        probe(&["upgrade", "--create", "--schemas", &names.join(","), "--keep-going", "--jobs", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(4));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let line = stdout.lines().find(|l| l.contains("FAILED")).unwrap();
    for expected in
        [names[1].as_str(), "migration 1", "V1__create_accounts.sql", "relation \"accounts\" already exists"]
    {
        assert!(line.contains(expected), "{line}");
    }
    assert_eq!(catalog_fingerprint(&mut client, &names[1]), before, "the failing tenant is unchanged");
    let legacy: i32 =
        client.query_one(&format!("SELECT legacy FROM {}.accounts", schemas[1].quoted()), &[]).unwrap().get(0);
    assert_eq!(legacy, 7);
    assert_eq!(history_rows(&mut client, &schemas[0]).len(), PROBE_SET.len());
    assert_eq!(history_rows(&mut client, &schemas[2]).len(), PROBE_SET.len());
}
