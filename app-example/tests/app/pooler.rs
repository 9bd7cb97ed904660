//! The service behind a PgBouncer of the test's own in transaction mode: each tenant is served its own schema's
//! rows, never those of `public`, even when tenants share one server connection; a connection whose names cannot
//! resolve in the schema stops the service before it serves; and the harness itself starts and stops PgBouncer.

use std::net::TcpStream;
use std::path::Path;

use integration_tests::pgbouncer::{PgBouncer, PgBouncerConfig, PoolMode};
use integration_tests::TestDatabase;

use crate::boot::Service;

/// A `products` table and a history table in the database's `public`, with rows no tenant has: what the service
/// would answer if its queries resolved in `public`.
fn plant_decoys(database: &TestDatabase) {
    database
        .client()
        .batch_execute(
            "CREATE TABLE public.products (sku text, name text, price_cents integer);
             INSERT INTO public.products VALUES ('DECOY-1', 'decoy', 1), ('DECOY-2', 'decoy', 2);
             CREATE TABLE public.schema_migrations (version bigint);
             INSERT INTO public.schema_migrations VALUES (999);",
        )
        .unwrap();
}

fn skus(service: &integration_tests::service::ServiceProcess) -> Vec<String> {
    let products = service.get("/products");
    products["products"].as_array().unwrap().iter().map(|p| p["sku"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn behind_pgbouncer_in_transaction_mode_each_tenant_is_served_its_own_rows_not_public() {
    let database = TestDatabase::labelled("pooler_rows");
    plant_decoys(&database);
    // One server connection for everyone, and the search_path startup option silently dropped: the setup that
    // served `public`'s rows before.
    let bouncer = PgBouncer::start(PoolMode::Transaction, 1, &[("ignore_startup_parameters", "options")]);
    let through_bouncer = bouncer.url(&database.name);

    // Tenant a does everything through PgBouncer; tenant b migrates directly and serves through PgBouncer.
    let a = Service::start_with("tenant-a", &[("DATABASE_URL", &through_bouncer)]).unwrap();
    let b = Service::start_with("tenant-b", &[("DATABASE_URL", &database.url), ("APP_DATABASE_URL", &through_bouncer)])
        .unwrap();
    database
        .client()
        .batch_execute(r#"INSERT INTO "tenant-b".products (sku, name, price_cents) VALUES ('B-ONLY', 'b', 5)"#)
        .unwrap();

    let seeded = ["MUG-001", "TEA-001", "TEA-002"];
    for _ in 0..3 {
        assert_eq!(skus(&a), seeded);
        assert_eq!(skus(&b), ["B-ONLY", "MUG-001", "TEA-001", "TEA-002"]);
        for (service, schema) in [(&a, "tenant-a"), (&b, "tenant-b")] {
            let health = service.get("/health");
            assert_eq!(health["current_schema"], schema);
            assert_eq!(health["version"], 8, "the tenant's history, not public's decoy 999");
        }
    }
    // Both tenants were served over PgBouncer's one server connection to this database.
    let servers: Vec<_> = bouncer.servers().into_iter().filter(|s| s.database == database.name).collect();
    assert_eq!(servers.len(), 1, "{servers:?}");

    // Control: the connection-time setting the service used to rely on is dropped here, and reads the decoys.
    let mut config: postgres::Config = through_bouncer.parse().unwrap();
    config.options(&migrate_runtime::SchemaName::new("tenant-a").unwrap().search_path_option());
    let mut old_way = config.connect(postgres::NoTls).unwrap();
    let row = old_way.query_one("SELECT current_schema(), min(sku) FROM products", &[]).unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, String>(1)), ("public".to_owned(), "DECOY-1".to_owned()));
}

/// A role for the application's connection, dropped (with its grants in `database`) at the end.
struct AppRole {
    name: String,
    database_url: String,
}

impl AppRole {
    fn new(database: &TestDatabase) -> AppRole {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("pooler_app_{}_{nanos}", std::process::id());
        integration_tests::connect().batch_execute(&format!("CREATE ROLE \"{name}\" LOGIN")).unwrap();
        AppRole { name, database_url: database.url.clone() }
    }
}

impl Drop for AppRole {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.database_url, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP OWNED BY \"{}\"", self.name));
        }
        let _ = integration_tests::connect().batch_execute(&format!("DROP ROLE IF EXISTS \"{}\"", self.name));
    }
}

#[test]
fn an_application_connection_that_cannot_resolve_names_in_the_schema_stops_the_service_before_it_serves() {
    let database = TestDatabase::labelled("pooler_refuse");
    plant_decoys(&database);
    let role = AppRole::new(&database);
    let bouncer = PgBouncerConfig::new(PoolMode::Transaction, 1)
        .user(&role.name)
        .setting("ignore_startup_parameters", "options")
        .start();
    // The migrations run as the owner, directly; the service's own queries go through PgBouncer as a role that
    // was never granted USAGE on the schema, so PostgreSQL skips the schema in search_path.
    let env =
        [("DATABASE_URL", database.url.clone()), ("APP_DATABASE_URL", bouncer.url_as(&role.name, &database.name))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let (code, stderr) = Service::start_with("tenant", &env).err().expect("the service must refuse to start");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("at version 8 (8 migration(s) applied)"), "the migrations ran: {stderr}");
    assert!(
        stderr.contains(&format!(
            "error: refusing to serve: schema \"tenant\": as role \"{}\" in database \"{}\", with search_path \
                 set to it for the transaction, current_schema() is null: unqualified names resolve in no schema; the \
                 schema does not exist in this database, or the role lacks USAGE on it",
            role.name, database.name
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("GRANT USAGE ON SCHEMA \"tenant\" TO \"{}\"", role.name)), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");

    // Control: with the grants the message names, the same setup serves the tenant's rows.
    database
        .client()
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA \"tenant\" TO \"{0}\"; GRANT SELECT ON ALL TABLES IN SCHEMA \"tenant\" TO \"{0}\"",
            role.name
        ))
        .unwrap();
    let service = Service::start_with("tenant", &env).unwrap();
    assert!(service.boot_log.contains("(0 migration(s) applied)"), "{}", service.boot_log);
    assert_eq!(skus(&service), ["MUG-001", "TEA-001", "TEA-002"]);
    drop(service);
    drop(bouncer);
}

#[test]
fn the_harness_starts_pgbouncer_on_a_free_port_and_stops_it_by_pid_when_dropped() {
    let bouncer = PgBouncer::start(PoolMode::Transaction, 2, &[]);
    let (pid, port) = (bouncer.pid(), bouncer.port);
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    let mut client = postgres::Client::connect(&bouncer.url("postgres"), postgres::NoTls).unwrap();
    let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let servers = bouncer.servers();
    assert!(servers.iter().any(|s| s.remote_pid == Some(backend)), "SHOW SERVERS lists backend {backend}: {servers:?}");
    drop(client);

    drop(bouncer);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "pgbouncer (pid {pid}) still runs");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still accepts connections");
}
