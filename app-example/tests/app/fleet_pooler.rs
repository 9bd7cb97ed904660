//! Field deployments behind PgBouncer in transaction mode (issue 10): many service processes and operator
//! fan-outs migrating through a small pool, with the no-transaction `CREATE INDEX CONCURRENTLY` (migration 5) among
//! the migrations. Every migration is applied exactly once, every process comes up, and afterwards no advisory
//! lock is left in `pg_locks` for the database while PgBouncer still holds its server connections: the migrator
//! keeps no session state on a pooled connection.
//!
//! A schema the run creates builds that index plainly in its one creating transaction, so the races start from
//! schemas at version 4, as after the deploy before the one that adds the index: the index is then built
//! concurrently, outside any transaction, by whichever process claims it, and the seed after it must run once.

use std::process::Command;

use integration_tests::pgbouncer::{advisory_locks, PgBouncer, PoolMode};
use integration_tests::{
    catalog_fingerprint, history_rows_of, invalid_indexes, steps_applied, succeeded, SchemasFile, TestDatabase,
};

use crate::boot::Service;

/// The versions of the example set, all clean.
fn at_head() -> Vec<(i64, bool)> {
    (1..=8).map(|v| (v, false)).collect()
}

/// PgBouncer in transaction mode with 4 server connections per database, dropping the startup option a service
/// might send.
fn bouncer() -> PgBouncer {
    PgBouncer::start(PoolMode::Transaction, 4, &[("ignore_startup_parameters", "options")])
}

/// `app-example migrate ARGS` through `url`.
fn migrate(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_app-example"));
    command
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("DEFAULT_SCHEMA_NAME")
        .env_remove("MIGRATE_PROTECTED_SCHEMAS");
    command
}

/// `(version, dirty)` of a schema's history.
fn history(database: &TestDatabase, schema: &str) -> Vec<(i64, bool)> {
    history_rows_of(&mut database.client(), schema).into_iter().map(|(v, _, dirty)| (v, dirty)).collect()
}

/// PgBouncer still holds server connections to the database, and none of them (nor anything else) holds an
/// advisory lock there.
fn assert_no_lock_left(bouncer: &PgBouncer, database: &TestDatabase) {
    let servers: Vec<_> = bouncer.servers().into_iter().filter(|s| s.database == database.name).collect();
    assert!(!servers.is_empty(), "PgBouncer keeps its server connections to {}", database.name);
    assert_eq!(advisory_locks(&database.name), [], "no advisory lock left on a pooled server connection: {servers:?}");
}

/// The catalog of schema `reference` migrated over a direct connection: what every pooled tenant must look like
/// (each index in its own schema, none built in another tenant's or missing).
fn direct_reference(database: &TestDatabase) -> String {
    succeeded(&migrate(&database.url, &["upgrade", "--create", "-s", "reference"]).output().unwrap());
    catalog_fingerprint(&mut database.client(), "reference")
}

fn assert_like_reference(database: &TestDatabase, schemas: &[String], reference: &str) {
    let mut client = database.client();
    for schema in schemas {
        assert_eq!(history(database, schema), at_head(), "{schema}");
        assert_eq!(invalid_indexes(&mut client, schema), Vec::<String>::new(), "{schema}");
        assert_eq!(catalog_fingerprint(&mut client, schema), reference, "{schema}: catalog");
    }
}

fn schema_names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// Bring `schemas` to version 4, over a direct connection: the next upgrade builds the index concurrently.
fn at_version_4(database: &TestDatabase, schemas: &[String]) {
    let file = SchemasFile::new(schemas);
    let mut command = migrate(&database.url, &["upgrade", "--create", "--schemas-file", file.path(), "--target", "4"]);
    succeeded(&command.output().unwrap());
}

#[test]
fn sixteen_services_booting_at_once_through_pgbouncer_come_up_apply_each_migration_once_and_leave_no_lock() {
    let database = TestDatabase::labelled("fleet_boot");
    let reference = direct_reference(&database);
    at_version_4(&database, &["tenant".to_owned()]);
    let bouncer = bouncer();
    let url = bouncer.url(&database.name);
    let services: Vec<integration_tests::service::ServiceProcess> = std::thread::scope(|scope| {
        let starting: Vec<_> =
            (0..16).map(|_| scope.spawn(|| Service::start_with("tenant", &[("DATABASE_URL", url.as_str())]))).collect();
        starting
            .into_iter()
            .map(|s| {
                s.join().unwrap().unwrap_or_else(|(code, log)| panic!("a service did not come up ({code:?}):\n{log}"))
            })
            .collect()
    });
    for service in &services {
        let health = service.get("/health");
        assert_eq!((health["current_schema"].as_str(), health["version"].as_i64()), (Some("tenant"), Some(8)));
    }
    let applied: usize = services.iter().map(integration_tests::service::ServiceProcess::applied).sum();
    let logs: Vec<&str> = services.iter().map(|s| s.boot_log.as_str()).collect();
    assert_eq!(
        applied,
        4,
        "migrations 5 to 8 applied once in all across the sixteen services; history {:?}; boot logs:\n{}",
        history(&database, "tenant"),
        logs.join("---\n")
    );
    assert_like_reference(&database, &["tenant".to_owned()], &reference);
    assert_no_lock_left(&bouncer, &database);
}

#[test]
fn sixteen_processes_over_fifty_schemas_through_pgbouncer_apply_every_migration_once_per_schema() {
    let database = TestDatabase::labelled("fleet_fifty");
    let reference = direct_reference(&database);
    let bouncer = bouncer();
    let url = bouncer.url(&database.name);
    let schemas = schema_names("tenant", 50);
    at_version_4(&database, &schemas);
    let file = SchemasFile::new(&schemas);
    let applied = integration_tests::race((0..16).map(|_| {
        migrate(&url, &["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "2", "--format", "json"])
    }));
    assert_eq!(applied, 50 * 4, "each migration of each schema applied once across all processes");
    assert_like_reference(&database, &schemas, &reference);
    assert_no_lock_left(&bouncer, &database);
}

#[test]
fn a_fan_out_with_eight_jobs_through_pgbouncer_migrates_every_schema_and_leaves_no_lock() {
    let database = TestDatabase::labelled("fleet_fanout");
    let reference = direct_reference(&database);
    let bouncer = bouncer();
    let url = bouncer.url(&database.name);
    let schemas = schema_names("tenant", 40);
    // Half of them exist at version 4 (the index is built concurrently), half are created by the run.
    at_version_4(&database, &schemas[..20]);
    let file = SchemasFile::new(&schemas);
    let output =
        migrate(&url, &["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "8", "--format", "json"])
            .output()
            .unwrap();
    succeeded(&output);
    assert_eq!(steps_applied(&output), 20 * 4 + 20 * 8);
    assert_like_reference(&database, &schemas, &reference);
    assert_no_lock_left(&bouncer, &database);

    // Again: nothing to do, and still nothing left behind.
    let output =
        migrate(&url, &["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "8", "--format", "json"])
            .output()
            .unwrap();
    succeeded(&output);
    assert_eq!(steps_applied(&output), 0);
    assert_no_lock_left(&bouncer, &database);
}

#[test]
fn downgrade_and_reset_through_pgbouncer_leave_no_lock() {
    let database = TestDatabase::labelled("fleet_down");
    let reference = direct_reference(&database);
    let bouncer = bouncer();
    let url = bouncer.url(&database.name);
    succeeded(&migrate(&url, &["upgrade", "--create", "-s", "tenant"]).output().unwrap());
    assert_eq!(history(&database, "tenant"), at_head());
    assert_no_lock_left(&bouncer, &database);

    // Down past migration 5, whose down file drops the index concurrently (no transaction).
    succeeded(&migrate(&url, &["downgrade", "-s", "tenant", "--target", "4", "--yes"]).output().unwrap());
    assert_eq!(history(&database, "tenant"), (1..=4).map(|v| (v, false)).collect::<Vec<_>>());
    let index: Option<String> =
        database.client().query_one("SELECT to_regclass('tenant.orders_customer_id_idx')::text", &[]).unwrap().get(0);
    assert_eq!(index, None, "the down migration dropped the index");
    assert_no_lock_left(&bouncer, &database);

    succeeded(&migrate(&url, &["downgrade", "-s", "tenant", "--target", "base", "--yes"]).output().unwrap());
    assert_eq!(history(&database, "tenant"), []);
    assert_no_lock_left(&bouncer, &database);

    database.client().batch_execute("CREATE TABLE tenant.stray (id int)").unwrap();
    succeeded(&migrate(&url, &["reset", "-s", "tenant", "--yes"]).output().unwrap());
    assert_like_reference(&database, &["tenant".to_owned()], &reference);
    let stray: Option<String> =
        database.client().query_one("SELECT to_regclass('tenant.stray')::text", &[]).unwrap().get(0);
    assert_eq!(stray, None, "reset dropped the schema with everything in it");
    assert_no_lock_left(&bouncer, &database);
}

/// The reads an operator runs over a fleet (`status`, whose survey is one catalog query, and the listing behind
/// `--all-schemas`; `verify`, which reads the catalogs of every schema), sixteen processes at once through two
/// pooled server connections: no named prepared statement is left on a server connection for another client's to
/// collide with (`prepared statement "s0" already exists`, as PgBouncer 1.18 does not track them).
#[test]
fn survey_listing_and_verify_of_many_processes_through_a_small_pool() {
    let bouncer = PgBouncer::start(PoolMode::Transaction, 2, &[("ignore_startup_parameters", "options")]);
    let database = TestDatabase::labelled("pooled_reads");
    let url = bouncer.url(&database.name);
    succeeded(&migrate(&url, &["upgrade", "--create", "--schemas", "a,b"]).output().unwrap());
    let reads: [&[&str]; 3] = [
        &["status", "--schemas", "a,b", "--format", "json"],
        &["status", "--all-schemas", "--format", "json"],
        &["verify", "--schemas", "a,b", "--format", "json"],
    ];
    let children: Vec<_> = (0..16)
        .map(|i| {
            let mut command = migrate(&url, reads[i % reads.len()]);
            command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        succeeded(&output);
        let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(document["schemas"].as_array().unwrap().len(), 2, "{document}");
    }
    assert_no_lock_left(&bouncer, &database);
}
