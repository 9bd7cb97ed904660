//! The fleet behind PgBouncer in transaction mode with a set that is all transactional (`fleet-probe`, over
//! `bench/migrations`): the lock alone, with no no-transaction migration in play. Sixteen processes over fifty
//! schemas through four server connections apply every migration once per schema, and no advisory lock is left on
//! the pooled server connections. (app-example's own set, with its no-transaction index, is tested the same way
//! in `app-example/tests/app/fleet_pooler.rs`.)

use crate::probe;
use integration_tests::pgbouncer::{advisory_locks, PgBouncer, PoolMode};
use integration_tests::{catalog_fingerprint, history_rows_of, SchemasFile, TestDatabase};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator};

static PROBE_SET: MigrationSet = embed_migrations!("../bench/migrations");

#[test]
fn sixteen_probe_processes_over_fifty_schemas_through_pgbouncer_apply_each_migration_once_and_leave_no_lock() {
    let database = TestDatabase::labelled("pooled_fleet");
    Migrator::new(&PROBE_SET).migrate(&mut database.client(), "reference").unwrap();
    let reference = catalog_fingerprint(&mut database.client(), "reference");
    let bouncer = PgBouncer::start(PoolMode::Transaction, 4, &[("ignore_startup_parameters", "options")]);
    let url = bouncer.url(&database.name);
    let schemas: Vec<String> = (0..50).map(|i| format!("tenant-{i}")).collect();
    let file = SchemasFile::new(&schemas);
    let applied = integration_tests::race((0..16).map(|_| {
        let mut command =
            probe(&["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "2", "--format", "json"]);
        command.env("DATABASE_URL", &url);
        command
    }));
    assert_eq!(applied, 50 * PROBE_SET.len(), "each migration of each schema applied once across all processes");
    let expected: Vec<(i64, String, bool)> = PROBE_SET.iter().map(|m| (m.version, m.name.to_string(), false)).collect();
    let mut client = database.client();
    for schema in &schemas {
        assert_eq!(history_rows_of(&mut client, schema), expected, "{schema}");
        assert_eq!(catalog_fingerprint(&mut client, schema), reference, "{schema}");
    }
    assert!(bouncer.servers().iter().any(|s| s.database == database.name), "PgBouncer keeps its server connections");
    assert_eq!(advisory_locks(&database.name), [], "no advisory lock left on a pooled server connection");
}
