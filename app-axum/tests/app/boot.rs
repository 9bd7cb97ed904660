//! Boot: the service migrates its schema with its own sqlx pool, a restart applies nothing, sixteen replicas
//! racing apply each migration once (the no-transaction `CREATE INDEX CONCURRENTLY` among them), and bad input
//! stops it before it serves.

use integration_tests::service::ServiceProcess;
use integration_tests::{connect, history_rows, tables, TestSchema};

#[test]
fn the_service_migrates_with_its_sqlx_pool_serves_and_a_restart_applies_nothing() {
    let schema = TestSchema::new("axum-boot");
    let service = crate::start(&schema.name, &[]).unwrap();
    assert!(service.boot_log.contains("at version 8 (8 migration(s) applied)"), "{}", service.boot_log);
    let health = service.get("/health");
    assert_eq!(health["current_schema"], schema.name.as_str(), "the handlers' transactions resolve in the schema");
    assert_eq!(health["version"], 8);
    assert_eq!(crate::skus(&service.get("/products")), ["MUG-001", "TEA-001", "TEA-002"]);
    drop(service);

    let restarted = crate::start(&schema.name, &[]).unwrap();
    assert!(restarted.boot_log.contains("(0 migration(s) applied)"), "{}", restarted.boot_log);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

/// Sixteen at once on a schema at version 4: one of them builds the concurrent index (migration 5) outside a
/// transaction while the others poll the lock; all come up, each pending migration applied once in all.
#[test]
fn sixteen_replicas_racing_at_boot_all_come_up_and_apply_each_migration_once() {
    let schema = TestSchema::new("axum-race");
    crate::migrate(&integration_tests::database_url(), &["upgrade", "--create", "-s", &schema.name, "--target", "4"]);
    let services: Vec<ServiceProcess> = std::thread::scope(|scope| {
        let starting: Vec<_> = (0..16).map(|_| scope.spawn(|| crate::start(&schema.name, &[]))).collect();
        starting.into_iter().map(|s| s.join().unwrap().unwrap()).collect()
    });
    for service in &services {
        assert_eq!(service.get("/health")["version"], 8);
    }
    let applied: usize = services.iter().map(ServiceProcess::applied).sum();
    assert_eq!(applied, 4, "migrations 5 to 8 applied once in all across the replicas");
    let rows = history_rows(&mut connect(), &schema);
    assert_eq!(rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(), (1..=8).map(|v| (v, false)).collect::<Vec<_>>());
    assert_eq!(tables(&mut connect(), &schema.name).len(), 6);
    assert!(integration_tests::invalid_indexes(&mut connect(), &schema.name).is_empty());
}

#[test]
fn bad_input_stops_the_service_before_it_serves_and_touches_nothing() {
    let (code, stderr) = crate::start("pg_nope", &[]).err().expect("an invalid schema name must stop the service");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("invalid schema name \"pg_nope\""), "{stderr}");

    let (code, stderr) = crate::start("axum-any", &[("DATABASE_URL", "mysql://localhost/db")])
        .err()
        .expect("a URL of another database must stop the service");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("error: DATABASE_URL is not a postgres:// URL"), "{stderr}");

    // An edited applied migration: the same refusal as through the postgres driver.
    let schema = TestSchema::new("axum-edit");
    drop(crate::start(&schema.name, &[]).unwrap());
    connect()
        .batch_execute(&format!(
            "UPDATE {}.schema_migrations SET checksum = repeat('a', 64) WHERE version = 3",
            schema.quoted()
        ))
        .unwrap();
    let (code, stderr) = crate::start(&schema.name, &[]).err().expect("the service must refuse to start");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("migration 3 (../migrations/3_create_orders.up.sql) was edited after it was applied"),
        "{stderr}"
    );
}
