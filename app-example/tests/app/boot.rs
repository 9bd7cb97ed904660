//! The example service as a process: boot-time migration of its configured schema, restarts, replicas booting
//! together, and refusing to start on an edited applied migration.

use integration_tests::service::ServiceProcess;
use integration_tests::{connect, history_rows, tables, TestSchema};

/// A running `app-example` on a system-chosen port, killed when dropped.
pub(crate) struct Service;

impl Service {
    /// Start the service for `schema`; `Err` holds its exit code and stderr when it stops instead of serving.
    pub(crate) fn start(schema: &str) -> Result<ServiceProcess, (Option<i32>, String)> {
        Service::start_with(schema, &[])
    }

    /// [`Service::start`] with more environment (`DATABASE_URL` and the others can be overridden).
    pub(crate) fn start_with(schema: &str, env: &[(&str, &str)]) -> Result<ServiceProcess, (Option<i32>, String)> {
        ServiceProcess::start(env!("CARGO_BIN_EXE_app-example"), schema, env)
    }
}

#[test]
fn the_service_migrates_its_schema_serves_it_and_a_restart_applies_nothing() {
    let schema = TestSchema::new("boot");
    let service = Service::start(&schema.name).unwrap();
    assert!(service.boot_log.contains("at version 8 (8 migration(s) applied)"), "{}", service.boot_log);
    let health = service.get("/health");
    assert_eq!(health["schema"], schema.name.as_str());
    assert_eq!(health["current_schema"], schema.name.as_str(), "the app connection's search_path is the schema");
    assert_eq!(health["version"], 8);
    assert_eq!(service.get("/products")["products"].as_array().unwrap().len(), 3);
    drop(service);

    let restarted = Service::start(&schema.name).unwrap();
    assert!(restarted.boot_log.contains("(0 migration(s) applied)"), "{}", restarted.boot_log);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

/// Eight at once on a schema none of them has: one creates it and applies everything in one transaction.
#[test]
fn eight_replicas_booting_at_once_all_come_up_and_apply_each_migration_once() {
    replicas_booting_at_once(8, 0);
}

/// Sixteen at once on a schema at version 4, so the no-transaction `CREATE INDEX CONCURRENTLY` (migration 5) is
/// built concurrently by one of them (a schema a run creates builds it plainly, in the creating transaction): the
/// lock is polled, never waited on inside a transaction, so the index build cannot deadlock against a waiting
/// replica.
#[test]
fn sixteen_replicas_booting_at_once_all_come_up_and_apply_each_migration_once() {
    replicas_booting_at_once(16, 4);
}

fn replicas_booting_at_once(count: usize, from: i64) {
    let schema = TestSchema::new("boot-many");
    if from > 0 {
        let target = from.to_string();
        crate::cli::migrate(&["upgrade", "--create", "-s", &schema.name, "--target", &target]).assert().success();
    }
    let services: Vec<ServiceProcess> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..count).map(|_| scope.spawn(|| Service::start(&schema.name))).collect();
        starting.into_iter().map(|s| s.join().unwrap().unwrap()).collect()
    });
    for service in &services {
        assert_eq!(service.get("/health")["version"], 8);
    }
    let applied: usize = services.iter().map(ServiceProcess::applied).sum();
    assert_eq!(applied, 8 - from as usize, "each pending migration applied once in all across the replicas");
    let rows = history_rows(&mut connect(), &schema);
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
    assert_eq!(tables(&mut connect(), &schema.name).len(), 6);
}

#[test]
fn an_edited_applied_migration_stops_the_service_before_it_serves() {
    let schema = TestSchema::new("boot-edit");
    drop(Service::start(&schema.name).unwrap());
    // What an edited and rebuilt file looks like from the database: the recorded checksum no longer matches.
    connect()
        .batch_execute(&format!(
            "UPDATE {}.schema_migrations SET checksum = repeat('a', 64) WHERE version = 3",
            schema.quoted()
        ))
        .unwrap();
    let (code, stderr) = Service::start(&schema.name).err().expect("the service must refuse to start");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("migration 3 (../migrations/3_create_orders.up.sql) was edited after it was applied"),
        "{stderr}"
    );
}

#[test]
fn an_invalid_schema_name_stops_the_service_with_a_clear_error() {
    let (code, stderr) = Service::start("pg_nope").err().expect("the service must refuse to start");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("invalid schema name \"pg_nope\""), "{stderr}");
}

#[test]
fn verify_at_boot_logs_a_hand_change_and_the_service_still_serves() {
    let schema = TestSchema::new("boot-verify");
    let verify = [("VERIFY_SCHEMA_AT_BOOT", "1")];
    let service = Service::start_with(&schema.name, &verify).unwrap();
    assert!(service.boot_log.contains(&format!("verify: schema {:?}: equal", schema.name)), "{}", service.boot_log);
    drop(service);

    connect().batch_execute(&format!("DROP INDEX {}.orders_customer_id_idx", schema.quoted())).unwrap();
    let service = Service::start_with(&schema.name, &verify).unwrap();
    let log = &service.boot_log;
    assert!(log.contains(&format!("verify: schema {:?} differs from what its migrations build", schema.name)), "{log}");
    assert!(log.contains("verify:   missing index orders_customer_id_idx\n"), "{log}");
    assert_eq!(service.get("/health")["version"], 8, "the service serves all the same");
    drop(service);

    // Without the option, nothing is verified.
    let service = Service::start(&schema.name).unwrap();
    assert!(!service.boot_log.contains("verify:"), "{}", service.boot_log);
}
