//! The runtime against the real server: fresh schemas, idempotence, concurrency, refusals, failures, downgrades.

use std::path::Path;

use integration_tests::{connect, history_rows, migration, set, tables, TestSchema};
use migrate_runtime::{embed_migrations, Direction, ErrorKind, Execution, MigrationSet, Migrator, Refusal, Target};

static APP_MIGRATIONS: MigrationSet = embed_migrations!("../migrations");

const APP_TABLES: [&str; 6] = ["customers", "order_items", "order_totals", "orders", "products", "schema_migrations"];

#[test]
fn fresh_schema_gets_every_table_one_history_row_each_and_nothing_in_public() {
    let schema = TestSchema::new("fresh");
    let mut client = connect();
    let report = Migrator::new(&APP_MIGRATIONS).migrate(&mut client, &schema.name).unwrap();
    assert_eq!(report.version_before, None);
    assert_eq!(report.version_after, Some(8));
    assert_eq!(report.steps.len(), 8);

    assert_eq!(tables(&mut client, &schema.name), APP_TABLES);
    let rows = history_rows(&mut client, &schema);
    let versions: Vec<i64> = rows.iter().map(|r| r.0).collect();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    assert!(rows.iter().all(|r| !r.2), "no row is dirty");
    let checksums: Vec<String> = client
        .query(&format!("SELECT checksum FROM {}.schema_migrations ORDER BY version", schema.quoted()), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let embedded: Vec<String> = APP_MIGRATIONS.iter().map(|m| m.up.checksum.to_string()).collect();
    assert_eq!(checksums, embedded);
    for table in ["customers", "products", "orders", "schema_migrations"] {
        let in_public: Option<String> =
            client.query_one("SELECT to_regclass($1)::text", &[&format!("public.{table}")]).unwrap().get(0);
        assert_eq!(in_public, None, "public.{table} must not exist");
    }
    // The no-transaction migration built its index in the schema.
    let index: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&format!("{}.orders_customer_id_idx", schema.quoted())])
        .unwrap()
        .get(0);
    assert!(index.is_some());

    let again = Migrator::new(&APP_MIGRATIONS).migrate(&mut client, &schema.name).unwrap();
    assert!(again.steps.is_empty(), "a second run applies nothing");
    assert_eq!(again.version_after, Some(8));
    assert_eq!(history_rows(&mut client, &schema).len(), 8);
}

#[test]
fn replicas_booting_together_apply_each_migration_once() {
    let schema = TestSchema::new("replicas");
    let reports: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| Migrator::new(&APP_MIGRATIONS).migrate(&mut connect(), &schema.name)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    let applied: usize = reports.iter().map(|r| r.steps.len()).sum();
    assert_eq!(applied, 8, "the eight migrations were applied eight times in all, not more");
    assert!(reports.iter().all(|r| r.version_after == Some(8)));
    let rows = history_rows(&mut connect(), &schema);
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
}

#[test]
fn an_edited_applied_file_is_refused_naming_schema_version_and_file() {
    let schema = TestSchema::new("edited");
    let mut client = connect();
    let original = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "b", "CREATE TABLE b (id int);", None),
    ]);
    Migrator::new(&original).migrate(&mut client, &schema.name).unwrap();
    let edited = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "b", "CREATE TABLE b (id bigint);", None),
        migration(3, "c", "CREATE TABLE c (id int);", None),
    ]);
    let error = Migrator::new(&edited).migrate(&mut client, &schema.name).unwrap_err();
    assert!(
        matches!(error.refusal(), Some(Refusal::ChecksumMismatch { version: 2, file, .. }) if file == "migrations/2_b.up.sql")
    );
    let message = error.to_string();
    assert!(message.contains(&format!("schema {:?}", schema.name)) && message.contains("migration 2"), "{message}");
    assert_eq!(tables(&mut client, &schema.name), ["a", "b", "schema_migrations"], "migration 3 did not run");
}

#[test]
fn a_failing_migration_names_its_position_and_leaves_nothing_of_itself() {
    let schema = TestSchema::new("failing");
    let mut client = connect();
    let first = set(vec![migration(1, "ok", "CREATE TABLE ok (id int);", None)]);
    Migrator::new(&first).migrate(&mut client, &schema.name).unwrap();
    let migrations = set(vec![
        migration(1, "ok", "CREATE TABLE ok (id int);", None),
        migration(2, "broken", "CREATE TABLE half (id int);\n\nSELECT no_such_column FROM half;\n", None),
    ]);
    let error = Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap_err();
    match error.kind() {
        ErrorKind::MigrationFailed { version, file, code, message, position, .. } => {
            assert_eq!(*version, 2);
            assert_eq!(file, "migrations/2_broken.up.sql");
            assert_eq!(code.as_ref().map(|c| c.as_str()), Some("42703"));
            assert!(message.contains("no_such_column"), "{message}");
            assert_eq!(*position, Some((3, 8)));
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(error.to_string().contains("failed at line 3, column 8"), "{error}");
    assert_eq!(tables(&mut client, &schema.name), ["ok", "schema_migrations"], "table `half` was rolled back");
    assert_eq!(history_rows(&mut client, &schema), [(1, "ok".to_owned(), false)]);
    let advisory: i64 = client
        .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    assert_eq!(advisory, 0, "the migration lock is released after an error");
}

#[test]
fn single_transaction_mode_is_all_or_nothing() {
    let schema = TestSchema::new("single-tx");
    let mut client = connect();
    let migrations = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "b", "CREATE TABLE b (id int);", None),
        migration(3, "bad", "INSERT INTO a VALUES ('x');", None),
    ]);
    let migrator = Migrator::new(&migrations).single_transaction(true);
    let error = migrator.migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::MigrationFailed { version: 3, .. }), "{error}");
    assert!(!schema_exists(&mut client, &schema.name), "not even the schema is left");

    let fixed = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "b", "CREATE TABLE b (id int);", None),
        migration(3, "bad", "INSERT INTO a VALUES (1);", None),
    ]);
    let report = Migrator::new(&fixed).single_transaction(true).migrate(&mut client, &schema.name).unwrap();
    assert_eq!(report.steps.len(), 3);
    assert_eq!(history_rows(&mut client, &schema).len(), 3);
}

#[test]
fn single_transaction_mode_refuses_a_no_transaction_migration_before_running_anything() {
    let schema = TestSchema::new("single-notx");
    let mut client = connect();
    Migrator::new(&APP_MIGRATIONS).migrate_to(&mut client, &schema.name, Target::Version(4)).unwrap();
    let migrator = Migrator::new(&APP_MIGRATIONS).single_transaction(true);
    let error = migrator.migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::NoTransactionInSingleTransaction { version: 5, .. })), "{error}");
    assert_eq!(history_rows(&mut client, &schema).len(), 4, "nothing ran");
    // A schema the run creates builds that index plainly in its one transaction: accepted.
    let fresh = TestSchema::new("single-fresh");
    assert_eq!(migrator.migrate(&mut client, &fresh.name).unwrap().steps.len(), 8);
}

#[test]
fn a_failed_no_transaction_migration_is_recorded_dirty_and_refused_next_time() {
    let schema = TestSchema::new("dirty");
    let mut client = connect();
    let migrations = crate::failing_concurrent_indexes();
    // On a schema the run creates, the index statements run in its one transaction: nothing is left.
    let error = Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::MigrationFailed { version: 2, position: Some((3, 48)), .. }), "{error}");
    assert!(!schema_exists(&mut client, &schema.name), "{error}");
    // On a schema that exists, they run concurrently, outside any transaction: the first one stays.
    Migrator::new(&migrations).migrate_to(&mut client, &schema.name, Target::Version(1)).unwrap();
    let error = Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::MigrationFailed { version: 2, position: Some((3, 48)), .. }), "{error}");
    assert_eq!(history_rows(&mut client, &schema), [(1, "t".to_owned(), false), (2, "idx".to_owned(), true)]);
    let search_path: String = client.query_one("SHOW search_path", &[]).unwrap().get(0);
    assert_eq!(search_path, "\"$user\", public", "the session's search_path is restored");

    let error = Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::Dirty { version: 2, .. })), "{error}");
    assert!(error.to_string().contains("fix the schema by hand"), "{error}");
}

fn schema_exists(client: &mut postgres::Client, schema: &str) -> bool {
    client.query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema]).unwrap().get(0)
}

#[test]
fn a_fresh_schema_is_created_with_its_migrations_or_not_at_all() {
    let schema = TestSchema::new("fresh-atomic");
    let mut client = connect();
    let migrations = set(vec![
        migration(1, "a", "CREATE TABLE a (id int PRIMARY KEY);", None),
        migration(2, "seed", "INSERT INTO a VALUES (1), (1);", None),
    ]);
    let error = Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap_err();
    // A unique violation has no position: the failing step is found by replaying the steps.
    assert!(
        matches!(error.kind(), ErrorKind::MigrationFailed { version: 2, code: Some(code), position: None, .. } if code == "23505"),
        "{error}"
    );
    assert!(!schema_exists(&mut client, &schema.name));
}

#[test]
fn batched_steps_name_the_failing_migration_and_keep_the_ones_before_it() {
    let schema = TestSchema::new("batched");
    let mut client = connect();
    let first = set(vec![migration(1, "a", "CREATE TABLE a (id int PRIMARY KEY);", None)]);
    Migrator::new(&first).migrate(&mut client, &schema.name).unwrap();
    let more = set(vec![
        migration(1, "a", "CREATE TABLE a (id int PRIMARY KEY);", None),
        migration(2, "b", "CREATE TABLE b (id int);", None),
        migration(3, "dup", "INSERT INTO a VALUES (1), (1);", None),
        migration(4, "c", "CREATE TABLE c (id int);", None),
    ]);
    let error = Migrator::new(&more).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::MigrationFailed { version: 3, .. }), "{error}");
    assert_eq!(history_rows(&mut client, &schema).iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(tables(&mut client, &schema.name), ["a", "b", "schema_migrations"]);
}

#[test]
fn a_migration_that_changes_search_path_cannot_misplace_the_next_one() {
    let schema = TestSchema::new("search-path");
    let mut client = connect();
    let migrations = set(vec![
        migration(1, "wander", "SET search_path TO public;", None),
        migration(2, "t", "CREATE TABLE placed (id int);", None),
    ]);
    // Fresh (one transaction), then step by step in their own transactions.
    Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap();
    assert_eq!(tables(&mut client, &schema.name), ["placed", "schema_migrations"]);
    client
        .batch_execute(&format!("DROP TABLE {0}.placed; DELETE FROM {0}.schema_migrations", schema.quoted()))
        .unwrap();
    Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap();
    assert_eq!(tables(&mut client, &schema.name), ["placed", "schema_migrations"]);
}

#[test]
fn applied_versions_missing_from_the_binary_are_refused_unless_allowed() {
    let schema = TestSchema::new("missing");
    let mut client = connect();
    let newer = set(vec![migration(1, "a", "SELECT 1;", None), migration(2, "b", "SELECT 2;", None)]);
    Migrator::new(&newer).migrate(&mut client, &schema.name).unwrap();
    let older = set(vec![migration(1, "a", "SELECT 1;", None)]);
    let error = Migrator::new(&older).migrate(&mut client, &schema.name).unwrap_err();
    assert!(
        matches!(error.refusal(), Some(Refusal::MissingFromBinary { version: 2, name, .. }) if name == "b"),
        "{error}"
    );
    let report = Migrator::new(&older).allow_missing(true).migrate(&mut client, &schema.name).unwrap();
    assert!(report.steps.is_empty());
}

#[test]
fn downgrade_reverts_newest_first_and_removes_history_rows() {
    let schema = TestSchema::new("down");
    let mut client = connect();
    let migrator = Migrator::new(&APP_MIGRATIONS);
    migrator.migrate(&mut client, &schema.name).unwrap();

    let report = migrator.downgrade(&mut client, &schema.name, Target::Relative(-1)).unwrap();
    assert_eq!(report.steps.iter().map(|s| (s.direction, s.version)).collect::<Vec<_>>(), [(Direction::Down, 8)]);
    assert_eq!(report.version_after, Some(7));
    let updated_at: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'updated_at'",
            &[&schema.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(updated_at, 0);

    // Through the no-transaction down file of version 5.
    let report = migrator.downgrade(&mut client, &schema.name, Target::Base).unwrap();
    assert_eq!(report.steps.len(), 7);
    assert_eq!(report.version_after, None);
    assert_eq!(tables(&mut client, &schema.name), ["schema_migrations"]);
    assert!(history_rows(&mut client, &schema).is_empty());

    migrator.migrate_to(&mut client, &schema.name, Target::Version(3)).unwrap();
    assert_eq!(history_rows(&mut client, &schema).len(), 3);
}

#[test]
fn hostile_schema_names_are_used_exactly_as_given() {
    let schema = TestSchema::named(format!("x\"; DROP SCHEMA public; -- {}", std::process::id()));
    let mut client = connect();
    let migrations = set(vec![migration(1, "it's", "CREATE TABLE t (id int);", None)]);
    Migrator::new(&migrations).migrate(&mut client, &schema.name).unwrap();
    assert_eq!(tables(&mut client, &schema.name), ["schema_migrations", "t"]);
    let public: bool =
        client.query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')", &[]).unwrap().get(0);
    assert!(public);
    assert_eq!(history_rows(&mut client, &schema), [(1, "it's".to_owned(), false)]);
}

#[test]
fn invalid_schema_names_are_refused_before_any_sql() {
    let mut client = connect();
    for name in ["", "pg_evil", "a\nb", &"x".repeat(64)] {
        let error = Migrator::new(&APP_MIGRATIONS).migrate(&mut client, name).unwrap_err();
        assert!(matches!(error.kind(), ErrorKind::InvalidName(_)), "{name:?}: {error}");
    }
}

#[test]
fn the_app_connection_option_sets_search_path_to_the_schema() {
    let schema = TestSchema::new("app conn");
    let mut client = connect();
    Migrator::new(&APP_MIGRATIONS).migrate(&mut client, &schema.name).unwrap();
    let name = migrate_runtime::SchemaName::new(&schema.name).unwrap();
    let mut config: postgres::Config = integration_tests::database_url().parse().unwrap();
    config.options(&name.search_path_option());
    let mut app = config.connect(postgres::NoTls).unwrap();
    let current: String = app.query_one("SELECT current_schema()", &[]).unwrap().get(0);
    assert_eq!(current, schema.name);
    let products: i64 = app.query_one("SELECT count(*) FROM products", &[]).unwrap().get(0);
    assert_eq!(products, 3);
}

#[test]
fn the_macro_and_the_runtime_resolver_give_the_same_set() {
    let at_run_time = MigrationSet::from_folder(Path::new(env!("CARGO_MANIFEST_DIR")), "../migrations").unwrap();
    assert_eq!(at_run_time, APP_MIGRATIONS);
}

#[test]
fn an_up_to_date_boot_costs_exactly_one_round_trip() {
    let schema = TestSchema::new("round-trips");
    Migrator::new(&APP_MIGRATIONS).migrate(&mut connect(), &schema.name).unwrap();

    let config: postgres::Config = integration_tests::database_url().parse().unwrap();
    let upstream = match (&config.get_hosts()[0], config.get_ports().first()) {
        (postgres::config::Host::Tcp(host), port) => format!("{host}:{}", port.copied().unwrap_or(5432)),
        #[allow(unreachable_patterns)]
        _ => panic!("this test needs a TCP DATABASE_URL"),
    };
    let proxy = integration_tests::proxy::RoundTripProxy::start(upstream);
    let mut proxied = postgres::Config::new();
    proxied.host("127.0.0.1").port(proxy.port).user(config.get_user().unwrap_or("postgres"));
    proxied.dbname(config.get_dbname().unwrap_or("postgres")).ssl_mode(postgres::config::SslMode::Disable);
    if let Some(password) = config.get_password() {
        proxied.password(password);
    }
    let mut client = proxied.connect(postgres::NoTls).unwrap();
    assert_eq!(proxy.round_trips(), 0, "connecting sends no query");
    let report = Migrator::new(&APP_MIGRATIONS).migrate(&mut client, &schema.name).unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(proxy.round_trips(), 1, "reading the history is the only round trip of an up-to-date boot");
}

#[test]
fn the_async_api_migrates_like_the_sync_one() {
    // The schema guard uses the sync driver, so it lives outside the runtime.
    let schema = TestSchema::new("async");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let name = schema.name.clone();
    let (first, second) = runtime.block_on(async move {
        let (client, connection) =
            tokio_postgres::connect(&integration_tests::database_url(), tokio_postgres::NoTls).await.unwrap();
        let connection = tokio::spawn(connection);
        let first = Migrator::new(&APP_MIGRATIONS).migrate_async(&client, &name).await.unwrap();
        // Spawning proves the future is Send.
        let second = tokio::spawn(async move { Migrator::new(&APP_MIGRATIONS).migrate_async(&client, &name).await })
            .await
            .unwrap()
            .unwrap();
        connection.abort();
        (first, second)
    });
    assert_eq!(first.steps.len(), 8);
    assert!(second.steps.is_empty());
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

#[test]
fn reset_rebuilds_the_schema_and_a_failing_reset_leaves_the_old_one_exactly_as_it_was() {
    let schema = TestSchema::new("reset");
    let mut client = connect();
    let good = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "seed", "INSERT INTO a VALUES (1);", None),
    ]);
    Migrator::new(&good).migrate(&mut client, &schema.name).unwrap();
    client
        .batch_execute(&format!("INSERT INTO {0}.a VALUES (2); CREATE TABLE {0}.stray (id int);", schema.quoted()))
        .unwrap();

    let failing = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "seed", "INSERT INTO a VALUES ('not a number');", None),
    ]);
    let error = Migrator::new(&failing).reset(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::MigrationFailed { version: 2, .. }), "{error}");
    assert_eq!(tables(&mut client, &schema.name), ["a", "schema_migrations", "stray"], "old schema untouched");
    let rows: i64 = client.query_one(&format!("SELECT count(*) FROM {}.a", schema.quoted()), &[]).unwrap().get(0);
    assert_eq!(rows, 2);

    let report = Migrator::new(&good).reset(&mut client, &schema.name).unwrap();
    assert_eq!((report.version_before, report.version_after, report.steps.len()), (Some(2), Some(2), 2));
    assert_eq!(tables(&mut client, &schema.name), ["a", "schema_migrations"]);
    let rows: i64 = client.query_one(&format!("SELECT count(*) FROM {}.a", schema.quoted()), &[]).unwrap().get(0);
    assert_eq!(rows, 1, "only the seed row is left");
}

#[test]
fn reset_of_a_set_with_a_no_transaction_migration_still_rebuilds_everything() {
    let schema = TestSchema::new("reset-notx");
    let mut client = connect();
    let migrator = Migrator::new(&APP_MIGRATIONS);
    migrator.migrate(&mut client, &schema.name).unwrap();
    client.batch_execute(&format!("CREATE TABLE {}.stray (id int)", schema.quoted())).unwrap();
    let report = migrator.reset(&mut client, &schema.name).unwrap();
    assert_eq!(report.steps.len(), 8);
    assert_eq!(tables(&mut client, &schema.name), APP_TABLES);
    assert_eq!(history_rows(&mut client, &schema).len(), 8);
}

#[test]
fn a_dry_run_changes_nothing_and_shows_the_sql() {
    let schema = TestSchema::new("dry");
    let mut client = connect();
    let migrator = Migrator::new(&APP_MIGRATIONS);
    let preview =
        migrator.dry_run(&mut client, &schema.name, migrate_runtime::Operation::Upgrade(Target::Head)).unwrap();
    assert_eq!(preview.steps.len(), 8);
    assert!(preview.steps[0].sql.contains("CREATE TABLE customers"));
    // A fresh schema builds migration 5's index plainly in the one transaction that creates it.
    assert_eq!(preview.steps[4].execution, Execution::InCreatingTransaction);
    assert!(preview.steps[4].sql.contains("CREATE INDEX IF NOT EXISTS orders_customer_id_idx"), "{}", preview.sql());
    assert!(!preview.sql().contains("CONCURRENTLY"), "{}", preview.sql());
    let exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema.name])
        .unwrap()
        .get(0);
    assert!(!exists, "a dry run does not even create the schema");
    // A schema that exists may be in use: there the index is built concurrently, outside any transaction.
    migrator.migrate_to(&mut client, &schema.name, Target::Version(4)).unwrap();
    let preview =
        migrator.dry_run(&mut client, &schema.name, migrate_runtime::Operation::Upgrade(Target::Head)).unwrap();
    assert_eq!(preview.steps[0].execution, Execution::Untransacted);
    assert!(preview.steps[0].sql.contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON \""));
}

#[test]
fn the_survey_finds_which_schemas_need_work() {
    let current = TestSchema::new("survey-cur");
    let behind = TestSchema::new("survey-behind");
    let drifted = TestSchema::new("survey-drift");
    let missing = TestSchema::new("survey-none");
    let mut client = connect();
    let migrator = Migrator::new(&APP_MIGRATIONS);
    migrator.migrate(&mut client, &current.name).unwrap();
    migrator.migrate_to(&mut client, &behind.name, Target::Version(6)).unwrap();
    migrator.migrate(&mut client, &drifted.name).unwrap();
    client
        .batch_execute(&format!(
            "UPDATE {}.schema_migrations SET checksum = repeat('0', 64) WHERE version = 1",
            drifted.quoted()
        ))
        .unwrap();
    let schemas: Vec<migrate_runtime::SchemaName> = [&current, &behind, &drifted, &missing]
        .iter()
        .map(|s| migrate_runtime::SchemaName::new(&s.name).unwrap())
        .collect();
    let fleet = migrate_ops::Fleet::new(&migrator, vec![integration_tests::database_url().parse().unwrap()]);
    let standings = fleet.survey(0, &schemas).unwrap();
    use migrate_ops::Standing;
    assert_eq!(
        standings,
        [Standing::Current { version: Some(8) }, Standing::Differs, Standing::Differs, Standing::Uninitialized]
    );
}

#[test]
fn out_of_order_migrations_are_refused_unless_allowed() {
    let schema = TestSchema::new("ooo");
    let mut client = connect();
    let shipped = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(3, "c", "CREATE TABLE c (id int);", None),
    ]);
    Migrator::new(&shipped).migrate(&mut client, &schema.name).unwrap();
    let late = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "b", "CREATE TABLE b (id int);", None),
        migration(3, "c", "CREATE TABLE c (id int);", None),
    ]);
    let error = Migrator::new(&late).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::OutOfOrder { version: 2, newest_applied: 3, .. })), "{error}");
    assert!(error.to_string().contains("allow out-of-order"), "{error}");
    Migrator::new(&late).allow_out_of_order(true).migrate(&mut client, &schema.name).unwrap();
    assert_eq!(tables(&mut client, &schema.name), ["a", "b", "c", "schema_migrations"]);
}

#[test]
fn repair_accepts_reviewed_edits_and_resolve_settles_dirty_records() {
    let schema = TestSchema::new("repair");
    let mut client = connect();
    let original = set(vec![migration(1, "a", "CREATE TABLE a (id int);", Some("DROP TABLE a;"))]);
    Migrator::new(&original).migrate(&mut client, &schema.name).unwrap();
    let edited = set(vec![migration(
        1,
        "a",
        "CREATE TABLE a (id int); -- reviewed: same effect",
        Some("DROP TABLE IF EXISTS a;"),
    )]);
    let error = Migrator::new(&edited).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::ChecksumMismatch { .. })), "{error}");
    let report = Migrator::new(&edited).repair(&mut client, &schema.name).unwrap();
    let recorded = |m: &migrate_runtime::Migration| migrate_runtime::Recorded {
        name: m.name.to_string(),
        checksum: m.up.checksum,
        down_checksum: m.down.as_ref().map(|d| d.checksum),
    };
    let (before, after) = (recorded(original.get(1).unwrap()), recorded(edited.get(1).unwrap()));
    assert_eq!(
        report.fixes,
        [migrate_runtime::Fix { version: 1, kind: migrate_runtime::FixKind::Repaired { before, after } }]
    );
    assert!(Migrator::new(&edited).migrate(&mut client, &schema.name).unwrap().steps.is_empty());
    assert!(
        Migrator::new(&edited).repair(&mut client, &schema.name).unwrap().fixes.is_empty(),
        "nothing left to repair"
    );

    client.batch_execute(&format!("UPDATE {}.schema_migrations SET dirty = true", schema.quoted())).unwrap();
    let error = Migrator::new(&edited).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::Dirty { version: 1, .. })), "{error}");
    let resolution = migrate_runtime::Resolution::NotApplied;
    let error = Migrator::new(&edited).resolve(&mut client, &schema.name, 2, resolution).unwrap_err();
    assert!(
        matches!(
            error.refusal(),
            Some(Refusal::NothingToResolve { version: 2, problem: migrate_runtime::ResolveProblem::NoHistoryRow, .. })
        ),
        "{error}"
    );
    client.batch_execute(&format!("DROP TABLE {}.a", schema.quoted())).unwrap();
    Migrator::new(&edited).resolve(&mut client, &schema.name, 1, resolution).unwrap();
    assert!(history_rows(&mut client, &schema).is_empty());
    assert_eq!(
        Migrator::new(&edited).migrate(&mut client, &schema.name).unwrap().steps.len(),
        1,
        "the migration runs again"
    );
    let error =
        Migrator::new(&edited).resolve(&mut client, &schema.name, 1, migrate_runtime::Resolution::Applied).unwrap_err();
    assert!(
        matches!(
            error.refusal(),
            Some(Refusal::NothingToResolve { version: 1, problem: migrate_runtime::ResolveProblem::NotDirty, .. })
        ),
        "{error}"
    );
}

#[test]
fn lock_timeout_makes_a_migration_waiting_on_a_busy_table_fail_fast() {
    let schema = TestSchema::new("lock-timeout");
    let mut client = connect();
    let first = set(vec![migration(1, "t", "CREATE TABLE t (id int);", None)]);
    Migrator::new(&first).migrate(&mut client, &schema.name).unwrap();
    let mut holder = connect();
    holder.batch_execute(&format!("BEGIN; LOCK TABLE {}.t IN ACCESS EXCLUSIVE MODE", schema.quoted())).unwrap();
    let second = set(vec![
        migration(1, "t", "CREATE TABLE t (id int);", None),
        migration(2, "alter", "ALTER TABLE t ADD COLUMN x int;", None),
    ]);
    let migrator = Migrator::new(&second).lock_timeout(Some(std::time::Duration::from_millis(200))).lock_retries(0);
    let error = migrator.migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::TableLocked { version: 2, attempts: 1, .. }), "{error}");
    holder.batch_execute("ROLLBACK").unwrap();
    migrator.migrate(&mut client, &schema.name).unwrap();
}

#[test]
fn statement_timeout_cancels_a_migration_that_runs_too_long() {
    let schema = TestSchema::new("statement-timeout");
    let mut client = connect();
    let slow = set(vec![migration(1, "slow", "CREATE TABLE t (id int);\nSELECT pg_sleep(5);", None)]);
    let migrator = Migrator::new(&slow).statement_timeout(Some(std::time::Duration::from_millis(200)));
    let started = std::time::Instant::now();
    let error = migrator.migrate(&mut client, &schema.name).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::MigrationFailed { version: 1, code: Some(code), .. } if code == "57014"),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "cancelled, not slept through");
    assert_eq!(tables(&mut client, &schema.name), Vec::<String>::new(), "nothing of the fresh schema was kept");
}

#[test]
fn a_failed_run_reports_the_steps_it_committed() {
    let schema = TestSchema::new("partial");
    let mut client = connect();
    let first = set(vec![migration(1, "a", "CREATE TABLE a (id int);", None)]);
    Migrator::new(&first).migrate(&mut client, &schema.name).unwrap();
    let five = set(vec![
        migration(1, "a", "CREATE TABLE a (id int);", None),
        migration(2, "b", "CREATE TABLE b (id int);", None),
        migration(3, "c", "CREATE TABLE c (id int);", None),
        migration(4, "broken", "CREATE TABLE d (id int);\nSELECT * FROM no_such_table;", None),
        migration(5, "e", "CREATE TABLE e (id int);", None),
    ]);
    let error = Migrator::new(&five).migrate(&mut client, &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::MigrationFailed { version: 4, position: Some((2, 15)), .. }), "{error}");
    let committed: Vec<(Direction, i64)> = error.committed().iter().map(|s| (s.direction, s.version)).collect();
    assert_eq!(committed, [(Direction::Up, 2), (Direction::Up, 3)]);
    let versions: Vec<i64> = history_rows(&mut client, &schema).iter().map(|r| r.0).collect();
    assert_eq!(versions, [1, 2, 3], "what the error says committed is what the history holds");
    assert_eq!(tables(&mut client, &schema.name), ["a", "b", "c", "schema_migrations"]);
}

#[test]
fn the_wait_for_another_process_lock_is_bounded_and_reported() {
    let schema = TestSchema::new("lock-wait");
    let slow = set(vec![migration(1, "slow", "SELECT pg_sleep(3);", None)]);
    std::thread::scope(|scope| {
        let holder = scope.spawn(|| Migrator::new(&slow).migrate(&mut connect(), &schema.name));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let error = Migrator::new(&slow)
            .lock_wait(std::time::Duration::from_millis(300))
            .migrate(&mut connect(), &schema.name)
            .unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::LockTimeout { waited, holder: Some(holder), .. }
                if *waited >= std::time::Duration::from_millis(300) && holder.pid > 0),
            "{error}"
        );
        assert!(error.to_string().contains("held the migration lock for all of 3"), "{error}");
        holder.join().unwrap().unwrap();
    });
}

#[test]
fn a_downgrade_of_a_schema_never_migrated_creates_nothing() {
    let schema = TestSchema::new("never");
    let mut client = connect();
    let report = Migrator::new(&APP_MIGRATIONS).downgrade(&mut client, &schema.name, Target::Base).unwrap();
    assert!(report.steps.is_empty());
    assert!(!schema_exists(&mut client, &schema.name), "no schema or history table was created");
}

/// Whether the digest in the comment of `schema`'s history table is that of its rows, computed here from the rows
/// independently of the trigger and of the engine.
fn digest_matches_rows(client: &mut postgres::Client, schema: &TestSchema) -> bool {
    let table = format!("{}.schema_migrations", schema.quoted());
    let sql = format!(
        "SELECT obj_description('{}'::regclass, 'pg_class') = 'migrate-digest:' || encode(sha256(convert_to(\
         coalesce(string_agg(concat_ws(':', version, checksum, down_checksum, dirty), ',' ORDER BY version), ''), \
         'UTF8')), 'hex') FROM {table}",
        table.replace('\'', "''")
    );
    client.query_one(&sql, &[]).unwrap().get(0)
}

/// A schema built in the transaction that creates it gets its digest written as a literal, from the plan, with the
/// trigger function never called: it must still be the digest of the rows (in version order, whatever order the
/// set runs in), whether the schema is built to head or to a target.
#[test]
fn a_schema_built_in_its_creating_transaction_carries_the_digest_of_its_rows() {
    // Diesel's order, the versions' digits as text: not numeric order.
    let versions = [20260527120000, 202605271200000000, 20270101000000];
    let migrations = versions.iter().map(|&v| migration(v, &format!("m{v}"), &format!("CREATE TABLE t{v} ();"), None));
    let texts = MigrationSet::from_ordered(migrations.collect());
    assert_eq!(texts.iter().map(|m| m.version).collect::<Vec<_>>(), versions);
    let mut client = connect();
    let migrator = Migrator::new(&texts);
    let fleet = migrate_ops::Fleet::new(&migrator, vec![integration_tests::database_url().parse().unwrap()]);
    let head = TestSchema::new("digest-created");
    assert_eq!(migrator.migrate(&mut client, &head.name).unwrap().steps.len(), 3);
    assert!(digest_matches_rows(&mut client, &head), "the digest of a schema built to head");
    let name = migrate_runtime::SchemaName::new(&head.name).unwrap();
    assert_eq!(fleet.survey(0, &[name]).unwrap(), [migrate_ops::Standing::Current { version: Some(versions[2]) }]);
    let partial = TestSchema::new("digest-created-partial");
    migrator.migrate_to(&mut client, &partial.name, Target::Version(versions[1])).unwrap();
    assert_eq!(history_rows(&mut client, &partial).len(), 2);
    assert!(digest_matches_rows(&mut client, &partial), "the digest of a schema built to a target");
    let name = migrate_runtime::SchemaName::new(&partial.name).unwrap();
    assert_eq!(fleet.survey(0, &[name]).unwrap(), [migrate_ops::Standing::Differs]);
    migrator.migrate(&mut client, &partial.name).unwrap();
    assert!(digest_matches_rows(&mut client, &partial), "the digest after the rest, through the trigger");
}

/// The engine defers the digest trigger inside its own transactions and writes the digest once before each commit;
/// every kind of run must still leave the digest of exactly what the table holds, and writes made outside the
/// engine keep it too. The fleet's one-query survey trusts it.
#[test]
fn the_history_digest_matches_the_rows_after_every_kind_of_run() {
    let schema = TestSchema::new("digest");
    let mut client = connect();
    let migrator = Migrator::new(&APP_MIGRATIONS);
    let table = format!("{}.schema_migrations", schema.quoted());
    let check = |client: &mut postgres::Client, after: &str| {
        assert!(digest_matches_rows(client, &schema), "the digest is stale after {after}");
    };
    // A fresh schema in one transaction, the concurrent index built in it.
    assert_eq!(migrator.migrate(&mut client, &schema.name).unwrap().steps.len(), 8);
    check(&mut client, "a fresh schema");
    // Down past the index (dropped concurrently, outside any transaction), then up again step by step.
    migrator.downgrade(&mut client, &schema.name, Target::Version(4)).unwrap();
    check(&mut client, "a downgrade");
    migrator.migrate_to(&mut client, &schema.name, Target::Version(6)).unwrap();
    check(&mut client, "an upgrade through a no-transaction migration");
    // Written by hand, outside the engine: the trigger digests at once.
    client.batch_execute(&format!("UPDATE {table} SET dirty = true WHERE version = 6")).unwrap();
    check(&mut client, "an UPDATE by hand");
    migrator.resolve(&mut client, &schema.name, 6, migrate_runtime::Resolution::Applied).unwrap();
    check(&mut client, "resolve");
    client.batch_execute(&format!("UPDATE {table} SET checksum = repeat('a', 64) WHERE version = 2")).unwrap();
    check(&mut client, "an edited checksum");
    assert_eq!(migrator.repair(&mut client, &schema.name).unwrap().fixes.len(), 1);
    check(&mut client, "repair");
    migrator.migrate(&mut client, &schema.name).unwrap();
    check(&mut client, "an upgrade to head");
    client.batch_execute(&format!("DELETE FROM {table} WHERE version = 8")).unwrap();
    check(&mut client, "a DELETE by hand");
    migrator.reset(&mut client, &schema.name).unwrap();
    check(&mut client, "reset");
    let fleet = migrate_ops::Fleet::new(&migrator, vec![integration_tests::database_url().parse().unwrap()]);
    let name = migrate_runtime::SchemaName::new(&schema.name).unwrap();
    assert_eq!(fleet.survey(0, &[name]).unwrap(), [migrate_ops::Standing::Current { version: Some(8) }]);
    // A failed run rolls its transaction back: the digest is the one before it.
    let failing =
        set(vec![migration(1, "a", "CREATE TABLE a (id int);", None), migration(2, "b", "SELECT 1/0;", None)]);
    let other = TestSchema::new("digest-fail");
    let failing_migrator = Migrator::new(&failing);
    failing_migrator.migrate_to(&mut client, &other.name, Target::Version(1)).unwrap();
    assert!(failing_migrator.migrate(&mut client, &other.name).is_err());
    assert!(digest_matches_rows(&mut client, &other), "the digest is stale after a failed run");
}
