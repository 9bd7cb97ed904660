//! Behind PgBouncer 1.18 in transaction mode (no prepared-statement tracking), pool size 1: the service migrates
//! through it with sqlx and serves two tenants over the one server connection. What sqlx needs there, exactly as
//! the service does it (docs/drivers.md): every query `persistent(false)` inside a `begin_in_schema_sqlx`
//! transaction, and no `extra_float_digits` startup parameter. The control shows why: sqlx's default named
//! statements collide across clients on that one server connection.

use integration_tests::pgbouncer::{PgBouncer, PoolMode};
use integration_tests::TestDatabase;

#[test]
fn behind_pgbouncer_in_transaction_mode_the_service_migrates_and_serves_each_tenant_its_own_rows() {
    let database = TestDatabase::labelled("axum_pooler");
    let bouncer = PgBouncer::start(PoolMode::Transaction, 1, &[]);
    let through_bouncer = bouncer.url(&database.name);

    // Tenant a migrates at boot through PgBouncer with the service's sqlx pool; tenant b is migrated by the CLI.
    let a = crate::start("tenant-a", &[("DATABASE_URL", &through_bouncer)]).unwrap();
    assert!(a.boot_log.contains("at version 8 (8 migration(s) applied)"), "{}", a.boot_log);
    crate::migrate(&database.url, &["upgrade", "--create", "-s", "tenant-b"]);
    database
        .client()
        .batch_execute(r#"INSERT INTO "tenant-b".products (sku, name, price_cents) VALUES ('B-ONLY', 'b', 5)"#)
        .unwrap();
    let b = crate::start("tenant-b", &[("DATABASE_URL", &through_bouncer)]).unwrap();
    assert!(b.boot_log.contains("(0 migration(s) applied)"), "{}", b.boot_log);

    // Requests of both services and both tenants interleaved from several threads: every answer is its own
    // tenant's, though all share one server connection.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(crate::skus(&a.get("/products")), ["MUG-001", "TEA-001", "TEA-002"]);
                    assert_eq!(crate::skus(&b.get("/products")), ["B-ONLY", "MUG-001", "TEA-001", "TEA-002"]);
                    assert_eq!(crate::skus(&a.get("/tenants/tenant-b/products"))[0], "B-ONLY");
                    assert_eq!(b.get("/health")["current_schema"], "tenant-b");
                }
            });
        }
    });
    let servers: Vec<_> = bouncer.servers().into_iter().filter(|s| s.database == database.name).collect();
    assert_eq!(servers.len(), 1, "{servers:?}");

    // Control: sqlx's default (a named, cached statement per query) through the same PgBouncer. Two clients each
    // prepare "sqlx_s_1" on the one server connection; the second is refused.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime.block_on(async {
        let options: sqlx::postgres::PgConnectOptions = through_bouncer.parse().unwrap();
        let options = options.extra_float_digits(None);
        let mut first = sqlx::ConnectOptions::connect(&options).await.unwrap();
        let mut second = sqlx::ConnectOptions::connect(&options).await.unwrap();
        let _: (i32,) = sqlx::query_as("SELECT 1").fetch_one(&mut first).await.unwrap();
        sqlx::query_as::<_, (i32,)>("SELECT 2").fetch_one(&mut second).await.unwrap_err()
    });
    assert!(error.to_string().contains("prepared statement \"sqlx_s_1\" already exists"), "{error}");
}
