//! The sqlx driver: the example service's set (a no-transaction `CREATE INDEX CONCURRENTLY` among it) migrated
//! with a service's own sqlx 0.9 pool, with the same history, structure, errors and refusals as the other drivers.

use integration_tests::{catalog_fingerprint, history_rows, TestSchema};
use migrate_runtime::{embed_migrations, ErrorKind, MigrationSet, Migrator, Operation, Refusal, Target};

static SET: MigrationSet = embed_migrations!("../migrations");

fn pool(runtime: &tokio::runtime::Runtime) -> sqlx::PgPool {
    runtime.block_on(async {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&integration_tests::database_url())
            .await
            .unwrap()
    })
}

#[test]
fn a_sqlx_pool_migrates_as_the_postgres_driver_does() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = pool(&runtime);
    let (by_sqlx, by_postgres) = (TestSchema::new("sqlx-drv"), TestSchema::new("sqlx-ref"));
    let migrator = Migrator::new(&SET);
    let report = runtime.block_on(migrator.migrate_sqlx(&pool, &by_sqlx.name)).unwrap();
    assert_eq!((report.steps.len(), report.version_after), (8, Some(8)));
    let again = runtime.block_on(migrator.migrate_sqlx(&pool, &by_sqlx.name)).unwrap();
    assert!(again.is_unchanged(), "{again:?}");
    migrator.migrate(&mut integration_tests::connect(), &by_postgres.name).unwrap();

    let mut client = integration_tests::connect();
    assert_eq!(history_rows(&mut client, &by_sqlx), history_rows(&mut client, &by_postgres));
    assert_eq!(catalog_fingerprint(&mut client, &by_sqlx.name), catalog_fingerprint(&mut client, &by_postgres.name));

    // Down and up again through sqlx, the concurrent index (a no-transaction migration on an existing schema)
    // among the steps.
    let down =
        runtime.block_on(migrator.run_sqlx(&pool, &by_sqlx.name, Operation::Downgrade(Target::Version(4)))).unwrap();
    assert_eq!(down.version_after, Some(4));
    runtime.block_on(migrator.migrate_sqlx(&pool, &by_sqlx.name)).unwrap();
    assert_eq!(catalog_fingerprint(&mut client, &by_sqlx.name), catalog_fingerprint(&mut client, &by_postgres.name));

    // The same refusal, and a failed migration with PostgreSQL's code and the file's line and column.
    let error =
        runtime.block_on(migrator.run_sqlx(&pool, &by_sqlx.name, Operation::Upgrade(Target::Version(99)))).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::TargetNotInSet { target: 99 })), "{error}");
    let broken = integration_tests::set(vec![
        integration_tests::migration(1, "ok", "CREATE TABLE ok (id int);", None),
        integration_tests::migration(
            2,
            "broken",
            "CREATE TABLE half (id int);\n\nSELECT no_such_column FROM half;\n",
            None,
        ),
    ]);
    let failing = TestSchema::new("sqlx-fail");
    let error = runtime.block_on(Migrator::new(&broken).migrate_sqlx(&pool, &failing.name)).unwrap_err();
    match error.kind() {
        ErrorKind::MigrationFailed { version, code, position, message, .. } => {
            assert_eq!((*version, code.as_ref().map(|c| c.as_str()), *position), (2, Some("42703"), Some((3, 8))));
            assert!(message.contains("no_such_column"), "{message}");
        }
        other => panic!("expected the migration to fail: {other}"),
    }
    let exists: i64 =
        client.query_one("SELECT count(*) FROM pg_namespace WHERE nspname = $1", &[&failing.name]).unwrap().get(0);
    assert_eq!(exists, 0, "nothing half-applied: a fresh schema is built in one transaction, rolled back whole");
}

/// The application's side on sqlx: a transaction in the tenant's schema from the pool, and the boot check, the
/// same as for the postgres driver.
#[test]
fn sqlx_transactions_in_a_schema_and_the_boot_check() {
    use migrate_runtime::{begin_in_schema_sqlx, check_schema_sqlx, SchemaCheckError, SchemaName};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = pool(&runtime);
    let tenant = TestSchema::new("sqlx-app");
    runtime.block_on(Migrator::new(&SET).migrate_sqlx(&pool, &tenant.name)).unwrap();
    let schema = SchemaName::new(&tenant.name).unwrap();
    runtime.block_on(async {
        let mut transaction = begin_in_schema_sqlx(&pool, &schema, &[]).await.unwrap();
        let current: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&mut *transaction).await.unwrap();
        assert_eq!(current, tenant.name, "unqualified names resolve in the tenant's schema");
        let products: i64 =
            sqlx::query_scalar("SELECT count(*) FROM products").fetch_one(&mut *transaction).await.unwrap();
        assert!(products >= 0);
        transaction.commit().await.unwrap();
        // SET LOCAL ended with the transaction: the pooled connection is back to its own search_path.
        let mut connection = pool.acquire().await.unwrap();
        let after: Option<String> =
            sqlx::query_scalar("SELECT current_schema()").fetch_one(&mut *connection).await.unwrap();
        assert_ne!(after.as_deref(), Some(tenant.name.as_str()));

        check_schema_sqlx(&mut connection, &schema).await.unwrap();
        let missing = SchemaName::new(&format!("{}-nope", tenant.name)).unwrap();
        let error = check_schema_sqlx(&mut connection, &missing).await.unwrap_err();
        assert!(matches!(&error, SchemaCheckError::WrongSchema { current_schema: None, .. }), "{error}");
    });
}
