//! The service's own drivers (sqlx 0.9, diesel 2.4, diesel-async 0.10): the example service's set (a
//! no-transaction `CREATE INDEX CONCURRENTLY` among it) migrated with each, with the same history, structure,
//! errors and refusals as the postgres driver; and each driver's application side (a transaction in a tenant's
//! schema, the boot check); SeaORM through its sqlx pool.

use integration_tests::{catalog_fingerprint, history_rows, TestSchema};
use migrate_runtime::{
    embed_migrations, Error, ErrorKind, MigrationSet, Migrator, Operation, Refusal, Report, SchemaCheckError,
    SchemaName, Target,
};

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

/// The same runs through `driver` and through the postgres driver end the same: history rows, catalog, a
/// downgrade and upgrade across the no-transaction migration, a refusal, and a failed migration that names
/// PostgreSQL's code and the file's line and column and leaves nothing behind.
fn behaves_as_the_postgres_driver(
    name: &str,
    driver: impl Fn(&MigrationSet, &str, Operation) -> Result<Report, Error>,
) {
    let (by_driver, by_postgres) = (TestSchema::new(&format!("{name}-drv")), TestSchema::new(&format!("{name}-ref")));
    let up = Operation::Upgrade(Target::Head);
    let report = driver(&SET, &by_driver.name, up).unwrap();
    assert_eq!((report.steps.len(), report.version_after), (8, Some(8)));
    let again = driver(&SET, &by_driver.name, up).unwrap();
    assert!(again.is_unchanged(), "{again:?}");
    Migrator::new(&SET).migrate(&mut integration_tests::connect(), &by_postgres.name).unwrap();

    let mut client = integration_tests::connect();
    assert_eq!(history_rows(&mut client, &by_driver), history_rows(&mut client, &by_postgres));
    assert_eq!(catalog_fingerprint(&mut client, &by_driver.name), catalog_fingerprint(&mut client, &by_postgres.name));

    // Down and up again, the concurrent index (a no-transaction migration on an existing schema) among the steps.
    let down = driver(&SET, &by_driver.name, Operation::Downgrade(Target::Version(4))).unwrap();
    assert_eq!((down.steps.len(), down.version_after), (4, Some(4)));
    driver(&SET, &by_driver.name, up).unwrap();
    assert_eq!(catalog_fingerprint(&mut client, &by_driver.name), catalog_fingerprint(&mut client, &by_postgres.name));

    // The same refusal, and a failed migration with PostgreSQL's code and the file's line and column.
    let error = driver(&SET, &by_driver.name, Operation::Upgrade(Target::Version(99))).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::TargetNotInSet { target: 99 })), "{error}");

    // Reset (drop the schema, recreate it, apply everything): a row planted in the schema is gone, and the
    // schema is what the postgres driver built.
    client.batch_execute(&format!("CREATE TABLE {}.planted (id int)", by_driver.quoted())).unwrap();
    let reset = driver(&SET, &by_driver.name, Operation::Reset).unwrap();
    assert_eq!((reset.steps.len(), reset.version_after), (8, Some(8)));
    assert_eq!(catalog_fingerprint(&mut client, &by_driver.name), catalog_fingerprint(&mut client, &by_postgres.name));
    assert_eq!(history_rows(&mut client, &by_driver), history_rows(&mut client, &by_postgres));
    let broken = integration_tests::set(vec![
        integration_tests::migration(1, "ok", "CREATE TABLE ok (id int);", None),
        integration_tests::migration(
            2,
            "broken",
            "CREATE TABLE half (id int);\n\nSELECT no_such_column FROM half;\n",
            None,
        ),
    ]);
    let failing = TestSchema::new(&format!("{name}-fail"));
    let error = driver(&broken, &failing.name, up).unwrap_err();
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

#[test]
fn a_sqlx_pool_migrates_as_the_postgres_driver_does() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = pool(&runtime);
    behaves_as_the_postgres_driver("sqlx", |set, schema, operation| {
        runtime.block_on(Migrator::new(set).run_sqlx(&pool, schema, operation))
    });
}

#[test]
fn a_diesel_connection_migrates_as_the_postgres_driver_does() {
    use diesel::Connection;
    let mut connection = diesel::PgConnection::establish(&integration_tests::database_url()).unwrap();
    let connection = std::cell::RefCell::new(&mut connection);
    behaves_as_the_postgres_driver("diesel", |set, schema, operation| {
        Migrator::new(set).run_diesel(&mut connection.borrow_mut(), schema, operation)
    });
}

#[test]
fn a_diesel_async_connection_migrates_as_the_postgres_driver_does() {
    use diesel_async::AsyncConnection;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let connection =
        runtime.block_on(diesel_async::AsyncPgConnection::establish(&integration_tests::database_url())).unwrap();
    let connection = std::cell::RefCell::new(connection);
    behaves_as_the_postgres_driver("diesel-async", |set, schema, operation| {
        runtime.block_on(Migrator::new(set).run_diesel_async(&mut connection.borrow_mut(), schema, operation))
    });
}

/// The application's side on sqlx: a transaction in the tenant's schema from the pool, and the boot check, the
/// same as for the postgres driver.
#[test]
fn sqlx_transactions_in_a_schema_and_the_boot_check() {
    use migrate_runtime::{begin_in_schema_sqlx, check_schema_sqlx};
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

/// The application's side on diesel: work in the tenant's schema, committed or rolled back with it, and the boot
/// check.
#[test]
fn diesel_work_in_a_schema_and_the_boot_check() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, RunQueryDsl};
    use migrate_runtime::{check_schema_diesel, in_schema_diesel};
    let tenant = TestSchema::new("diesel-app");
    let mut connection = diesel::PgConnection::establish(&integration_tests::database_url()).unwrap();
    Migrator::new(&SET).migrate_diesel(&mut connection, &tenant.name).unwrap();
    let schema = SchemaName::new(&tenant.name).unwrap();

    let current = in_schema_diesel(&mut connection, &schema, &[], |connection| {
        connection.batch_execute("INSERT INTO customers (full_name, email) VALUES ('Ana', 'ana@example.com')")?;
        diesel::sql_query("SELECT current_schema() AS name").get_result::<SchemaRow>(connection)
    })
    .unwrap();
    assert_eq!(current.name, tenant.name, "unqualified names resolve in the tenant's schema");
    let failed: Result<(), diesel::result::Error> = in_schema_diesel(&mut connection, &schema, &[], |connection| {
        connection.batch_execute("INSERT INTO customers (full_name, email) VALUES ('Bo', 'bo@example.com')")?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(failed.is_err());
    let mut client = integration_tests::connect();
    let names: Vec<String> = client
        .query(&format!("SELECT full_name FROM {}.customers ORDER BY full_name", tenant.quoted()), &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(names, ["Ana"], "the committed row is there, the rolled-back one is not");
    let after = diesel::sql_query("SELECT current_schema() AS name").get_result::<SchemaRow>(&mut connection).unwrap();
    assert_ne!(after.name, tenant.name, "SET LOCAL ended with the transaction");

    check_schema_diesel(&mut connection, &schema).unwrap();
    let missing = SchemaName::new(&format!("{}-nope", tenant.name)).unwrap();
    let error = check_schema_diesel(&mut connection, &missing).unwrap_err();
    assert!(matches!(&error, SchemaCheckError::WrongSchema { current_schema: None, .. }), "{error}");
}

/// The same on diesel-async.
#[test]
fn diesel_async_work_in_a_schema_and_the_boot_check() {
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
    use migrate_runtime::{check_schema_diesel_async, in_schema_diesel_async};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tenant = TestSchema::new("diesel-async-app");
    let schema = SchemaName::new(&tenant.name).unwrap();
    runtime.block_on(async {
        let mut connection =
            diesel_async::AsyncPgConnection::establish(&integration_tests::database_url()).await.unwrap();
        Migrator::new(&SET).migrate_diesel_async(&mut connection, &tenant.name).await.unwrap();
        let current = in_schema_diesel_async(&mut connection, &schema, &[], async |connection| {
            connection
                .batch_execute("INSERT INTO customers (full_name, email) VALUES ('Ana', 'ana@example.com')")
                .await?;
            diesel::sql_query("SELECT current_schema() AS name").get_result::<SchemaRow>(connection).await
        })
        .await
        .unwrap();
        assert_eq!(current.name, tenant.name);
        let failed: Result<(), diesel::result::Error> =
            in_schema_diesel_async(&mut connection, &schema, &[], async |connection| {
                connection
                    .batch_execute("INSERT INTO customers (full_name, email) VALUES ('Bo', 'bo@example.com')")
                    .await?;
                Err(diesel::result::Error::RollbackTransaction)
            })
            .await;
        assert!(failed.is_err());
        let count = diesel::sql_query(format!("SELECT count(*)::text AS name FROM {}.customers", tenant.quoted()))
            .get_result::<SchemaRow>(&mut connection)
            .await
            .unwrap();
        assert_eq!(count.name, "1", "the committed row is there, the rolled-back one is not");

        check_schema_diesel_async(&mut connection, &schema).await.unwrap();
        let missing = SchemaName::new(&format!("{}-nope", tenant.name)).unwrap();
        let error = check_schema_diesel_async(&mut connection, &missing).await.unwrap_err();
        assert!(matches!(&error, SchemaCheckError::WrongSchema { current_schema: None, .. }), "{error}");
    });
}

#[derive(diesel::QueryableByName)]
struct SchemaRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// SeaORM through its sqlx pool: the service's `DatabaseConnection` hands its pool to the sqlx driver at boot, and
/// its own transactions run in the tenant's schema with `SET LOCAL search_path`.
#[test]
fn sea_orm_migrates_through_its_sqlx_pool_and_its_transactions_run_in_the_schema() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tenant = TestSchema::new("sea-orm");
    let schema = SchemaName::new(&tenant.name).unwrap();
    runtime.block_on(async {
        let db = sea_orm::Database::connect(integration_tests::database_url()).await.unwrap();
        let report = Migrator::new(&SET).migrate_sqlx(db.get_postgres_connection_pool(), &tenant.name).await.unwrap();
        assert_eq!((report.steps.len(), report.version_after), (8, Some(8)));

        let transaction = db.begin().await.unwrap();
        transaction.execute_unprepared(&schema.set_local_search_path_sql()).await.unwrap();
        let statement = Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_schema()::text AS current, count(*) AS products FROM products",
        );
        let row = transaction.query_one_raw(statement).await.unwrap().unwrap();
        let (current, products): (String, i64) =
            (row.try_get("", "current").unwrap(), row.try_get("", "products").unwrap());
        assert_eq!((current.as_str(), products), (tenant.name.as_str(), 3), "the seeded products of the tenant");
        transaction.commit().await.unwrap();
    });
    assert_eq!(history_rows(&mut integration_tests::connect(), &tenant).len(), 8);
}
