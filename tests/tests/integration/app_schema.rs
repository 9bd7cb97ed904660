//! The application-side helpers (`in_schema`, `check_schema`, `check_session_schema`) directly and through a
//! PgBouncer of the test's own in transaction mode, and the harness's view of the server (`SHOW SERVERS`,
//! `pg_locks`).

use std::time::{Duration, Instant};

use integration_tests::pgbouncer::{advisory_locks, PgBouncer, PoolMode};
use integration_tests::{connect, TestSchema};
use migrate_runtime::{
    check_schema, check_schema_async, check_session_schema, in_schema, in_schema_async, SchemaCheckError, SchemaName,
    SearchPathScope,
};

/// A schema holding `t(v text)` with one row, `value`.
fn schema_with_value(label: &str, value: &str) -> (TestSchema, SchemaName) {
    let schema = TestSchema::new(label);
    connect()
        .batch_execute(&format!(
            "CREATE SCHEMA {0}; CREATE TABLE {0}.t (v text); INSERT INTO {0}.t VALUES ('{value}')",
            schema.quoted()
        ))
        .unwrap();
    let name = SchemaName::new(&schema.name).unwrap();
    (schema, name)
}

fn read_value(client: &mut postgres::Client, schema: &SchemaName) -> String {
    in_schema(client, schema, |tx| tx.query_typed_one("SELECT v FROM t", &[])).unwrap().get(0)
}

#[test]
fn through_transaction_pooling_each_client_reads_its_own_schema_and_leaves_nothing_behind() {
    let (_a, a) = schema_with_value("pool-a", "from a");
    let (_b, b) = schema_with_value("pool-b", "from b");
    // One server connection: the two clients' transactions take turns on it.
    let bouncer = PgBouncer::start(PoolMode::Transaction, 1, &[]);
    let mut first = postgres::Client::connect(&bouncer.url("postgres"), postgres::NoTls).unwrap();
    let mut second = postgres::Client::connect(&bouncer.url("postgres"), postgres::NoTls).unwrap();
    for _ in 0..3 {
        assert_eq!(read_value(&mut first, &a), "from a");
        assert_eq!(read_value(&mut second, &b), "from b");
    }
    assert_eq!(bouncer.servers().len(), 1, "both clients shared one server connection");
    // SET LOCAL ended with each transaction: the server connection is back to the default search_path.
    let row = first.query_typed_one("SELECT current_setting('search_path')", &[]).unwrap();
    assert_eq!(row.get::<_, String>(0), "\"$user\", public");
    check_schema(&mut first, &a).unwrap();
    check_schema(&mut second, &b).unwrap();
}

#[test]
fn in_schema_commits_on_success_and_rolls_back_on_error() {
    let (schema, name) = schema_with_value("in-schema-tx", "x");
    let mut client = connect();
    in_schema(&mut client, &name, |tx| tx.batch_execute("CREATE TABLE kept (id int)")).unwrap();
    let failed: Result<(), postgres::Error> = in_schema(&mut client, &name, |tx| {
        tx.batch_execute("CREATE TABLE dropped (id int)")?;
        tx.batch_execute("SELECT * FROM no_such_table")
    });
    let error = failed.unwrap_err();
    assert!(integration_tests::chain(&error).contains("no_such_table"), "{error:?}");
    assert_eq!(integration_tests::tables(&mut client, &schema.name), ["kept", "t"]);
}

#[test]
fn the_check_costs_one_round_trip() {
    let (_schema, name) = schema_with_value("check-round-trip", "x");
    let config: postgres::Config = integration_tests::database_url().parse().unwrap();
    let proxy = integration_tests::proxy::RoundTripProxy::start("127.0.0.1:5432".to_owned());
    let mut proxied = postgres::Config::new();
    proxied.host("127.0.0.1").port(proxy.port).user(config.get_user().unwrap_or("postgres"));
    proxied.dbname(config.get_dbname().unwrap_or("postgres")).ssl_mode(postgres::config::SslMode::Disable);
    if let Some(password) = config.get_password() {
        proxied.password(password);
    }
    let mut client = proxied.connect(postgres::NoTls).unwrap();
    assert_eq!(proxy.round_trips(), 0);
    check_schema(&mut client, &name).unwrap();
    assert_eq!(proxy.round_trips(), 1);
}

#[test]
fn a_missing_schema_or_a_role_without_usage_fails_the_check_with_what_to_do() {
    let mut client = connect();
    let missing = SchemaName::new(&TestSchema::new("check-missing").name).unwrap();
    let error = check_schema(&mut client, &missing).unwrap_err();
    assert!(
        matches!(
            &error,
            SchemaCheckError::WrongSchema { current_schema: None, scope: SearchPathScope::Transaction, .. }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("the schema does not exist in this database, or the role lacks USAGE"));

    let (schema, name) = schema_with_value("check-usage", "x");
    let role = format!("check_usage_{}", std::process::id());
    client.batch_execute(&format!("DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN")).unwrap();
    let mut config: postgres::Config = integration_tests::database_url().parse().unwrap();
    config.user(&role);
    let result = config.connect(postgres::NoTls).map(|mut as_role| check_schema(&mut as_role, &name));
    client.batch_execute(&format!("DROP ROLE {role}")).unwrap();
    let error = result.unwrap().unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "as role \"{role}\" in database \"postgres\", with search_path set to it for the transaction, \
             current_schema() is null"
        )),
        "{message}"
    );
    assert!(message.contains(&format!("GRANT USAGE ON SCHEMA {} TO \"{role}\"", schema.quoted())), "{message}");
}

#[test]
fn the_session_check_catches_a_pooler_that_dropped_the_search_path_startup_option() {
    let (_schema, name) = schema_with_value("session-check", "x");
    let mut config: postgres::Config = integration_tests::database_url().parse().unwrap();
    config.options(&name.search_path_option());
    check_session_schema(&mut config.connect(postgres::NoTls).unwrap(), &name).unwrap();

    let bouncer = PgBouncer::start(PoolMode::Transaction, 1, &[("ignore_startup_parameters", "options")]);
    let mut pooled: postgres::Config = bouncer.url("postgres").parse().unwrap();
    pooled.options(&name.search_path_option());
    let mut client = pooled.connect(postgres::NoTls).unwrap();
    let error = check_session_schema(&mut client, &name).unwrap_err();
    assert!(
        matches!(&error, SchemaCheckError::WrongSchema { current_schema: Some(current), scope: SearchPathScope::Session, .. } if current == "public"),
        "{error:?}"
    );
    assert!(error.to_string().contains("the search_path startup option did not take effect"), "{error}");
    // The per-transaction way works on the same connection.
    check_schema(&mut client, &name).unwrap();
    assert_eq!(read_value(&mut client, &name), "x");
}

#[test]
fn without_ignore_startup_parameters_pgbouncer_refuses_the_search_path_startup_option() {
    let bouncer = PgBouncer::start(PoolMode::Transaction, 1, &[]);
    let mut config: postgres::Config = bouncer.url("postgres").parse().unwrap();
    config.options(&SchemaName::new("dev").unwrap().search_path_option());
    let error = config.connect(postgres::NoTls).err().expect("PgBouncer refuses the options parameter");
    assert!(integration_tests::chain(&error).contains("unsupported startup parameter"), "{error}");
}

#[test]
fn the_async_helpers_work_through_transaction_pooling() {
    let (_a, a) = schema_with_value("async-pool", "async a");
    let bouncer = PgBouncer::start(PoolMode::Transaction, 1, &[("ignore_startup_parameters", "options")]);
    let url = bouncer.url("postgres");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let value = runtime.block_on(async move {
        let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        check_schema_async(&client, &a).await.unwrap();
        // Spawning proves the future is Send.
        tokio::spawn(async move {
            in_schema_async(&mut client, &a, async |tx| -> Result<String, tokio_postgres::Error> {
                Ok(tx.query_typed_one("SELECT v FROM t", &[]).await?.get(0))
            })
            .await
        })
        .await
        .unwrap()
        .unwrap()
    });
    assert_eq!(value, "async a");
}

/// What the engine's lock tests need from the harness: a session-level advisory lock taken through transaction
/// pooling stays on the server connection after the client is gone, visible in `pg_locks` under the pid
/// `SHOW SERVERS` gives for that connection.
#[test]
fn pg_locks_shows_a_session_advisory_lock_left_on_a_pooled_server_connection() {
    let key: i64 = 0x5eed_0000_0000 + i64::from(std::process::id());
    let bouncer = PgBouncer::start(PoolMode::Transaction, 1, &[]);
    let mut client = postgres::Client::connect(&bouncer.url("postgres"), postgres::NoTls).unwrap();
    client.query_typed("SELECT pg_advisory_lock($1)", &[(&key, postgres::types::Type::INT8)]).unwrap();
    drop(client);

    let server_pid = bouncer.servers().iter().find_map(|s| s.remote_pid).expect("one server connection");
    let held: Vec<_> = advisory_locks("postgres").into_iter().filter(|l| l.advisory_key == Some(key)).collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!((held[0].pid, held[0].granted, held[0].objsubid), (Some(server_pid), true, Some(1)));

    // Stopping PgBouncer closes the server connection, and the lock goes with it.
    drop(bouncer);
    let deadline = Instant::now() + Duration::from_secs(5);
    while advisory_locks("postgres").iter().any(|l| l.advisory_key == Some(key)) {
        assert!(Instant::now() < deadline, "the lock outlived PgBouncer");
        std::thread::sleep(Duration::from_millis(20));
    }
}
