//! Table-lock timeouts by default: a migration on an existing schema waits at most `lock_timeout` for a table
//! lock, is rolled back and tried again after a pause, and finally fails that schema cleanly, nothing of it
//! applied; the transaction that creates a schema runs without a timeout.

use std::time::Duration;

use integration_tests::{connect, history_rows, TestSchema};
use migrate_runtime::{embed_migrations, ErrorKind, MigrationSet, Migrator, Operation, Target};

static SET: MigrationSet = embed_migrations!("../migrations");

/// An open transaction that has read `customers` (migration 4 alters it): what a long request or report looks like
/// to a migration that needs an exclusive lock.
struct Reader {
    client: postgres::Client,
}

impl Reader {
    fn holding(schema: &TestSchema) -> Reader {
        let mut client = connect();
        client.batch_execute(&format!("BEGIN; SELECT count(*) FROM {}.customers", schema.quoted())).unwrap();
        Reader { client }
    }

    fn finish(mut self) {
        self.client.batch_execute("COMMIT").unwrap();
    }
}

fn at_version(label: &str, version: i64) -> TestSchema {
    let schema = TestSchema::new(label);
    Migrator::new(&SET).run(&mut connect(), &schema.name, Operation::Upgrade(Target::Version(version))).unwrap();
    schema
}

#[test]
fn a_migration_behind_a_long_transaction_gives_up_after_its_retries_and_applies_nothing_of_it() {
    let schema = at_version("lock-gives-up", 3);
    let reader = Reader::holding(&schema);
    let migrator = Migrator::new(&SET).lock_timeout(Some(Duration::from_millis(200))).lock_retries(1);
    let error = migrator.migrate(&mut connect(), &schema.name).unwrap_err();
    match error.kind() {
        ErrorKind::TableLocked { version, file, lock_timeout, attempts, committed, resumes_at } => {
            assert_eq!((*version, file.as_str(), *attempts), (4, "../migrations/4_add_cpf_and_address.up.sql", 2));
            assert_eq!(*lock_timeout, Duration::from_millis(200));
            assert!(committed.is_empty());
            assert_eq!(*resumes_at, None, "a migration in a transaction is rolled back whole");
        }
        other => panic!("expected the table lock to time out: {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("could not lock a table within 200 ms (lock_timeout), 2 attempt(s)"), "{message}");
    let mut client = connect();
    assert_eq!(history_rows(&mut client, &schema).len(), 3, "nothing of migration 4 or later applied");
    let cpf: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'cpf'",
            &[&schema.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(cpf, 0);
    // The reader was never blocked: its transaction is still there and ends normally.
    reader.finish();
    let report = migrator.migrate(&mut connect(), &schema.name).unwrap();
    assert_eq!(report.version_after, Some(8));
}

#[test]
fn a_retry_after_the_long_transaction_ends_applies_the_migration() {
    let schema = at_version("lock-retry", 3);
    let reader = Reader::holding(&schema);
    // The first attempt times out after 200 ms; the reader ends at about 500 ms, during the one-second pause.
    let finishing = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        reader.finish();
    });
    let migrator = Migrator::new(&SET).lock_timeout(Some(Duration::from_millis(200))).lock_retries(2);
    let report = migrator.migrate(&mut connect(), &schema.name).unwrap();
    finishing.join().unwrap();
    assert_eq!((report.steps.len(), report.version_after), (5, Some(8)));
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

#[test]
fn an_existing_schema_migrates_under_the_default_lock_timeout_and_a_created_one_without() {
    let migrator = Migrator::new(&SET);
    let fresh = TestSchema::new("lock-fresh");
    let preview = migrator.dry_run(&mut connect(), &fresh.name, Operation::Upgrade(Target::Head)).unwrap();
    let prologue = preview.prologue.unwrap_or_default();
    assert!(prologue.contains("SET LOCAL lock_timeout = 0;\nCREATE SCHEMA"), "{prologue}");

    let existing = at_version("lock-existing", 3);
    let preview = migrator.dry_run(&mut connect(), &existing.name, Operation::Upgrade(Target::Head)).unwrap();
    let sent: String = preview.prologue.iter().cloned().chain(preview.steps.iter().map(|s| s.sql.clone())).collect();
    assert!(sent.contains("SET LOCAL lock_timeout = 2000;"), "{sent}");
    assert!(!sent.contains("SET LOCAL lock_timeout = 0"), "{sent}");
    // Only the concurrent index build runs without it, and the timeout is set again after it.
    let unlimited: Vec<&str> = sent.split("SET lock_timeout = 0;\n").skip(1).collect();
    assert_eq!(unlimited.len(), 1, "{sent}");
    let (build, _) = unlimited[0].split_once("SET lock_timeout = 2000;").expect("the timeout set again");
    assert!(build.contains("CREATE INDEX CONCURRENTLY") && !build.contains("UPDATE"), "{build}");
}

/// The failure of such a run, recorded for `status` ([`migrate_ops::LastFailure`]), reads back in a session with
/// another time zone and date style (the history's state is compared as text); recording gives up after its own
/// lock timeout (2 s) while another session holds the history table exclusively; the record no longer reads back
/// once the history moved on. A comment of someone else's on the column is not a record.
#[test]
fn the_failure_recorded_for_status_reads_back_until_the_history_moves_on() {
    use migrate_ops::{read_last_failure, record_failure, Inspect, LastFailure};
    let schema = at_version("failure-record", 3);
    let name = migrate_runtime::SchemaName::new(&schema.name).unwrap();
    let migrator = Migrator::new(&SET).lock_timeout(Some(Duration::from_millis(200))).lock_retries(0);
    let reader = Reader::holding(&schema);
    let error = migrator.migrate(&mut connect(), &schema.name).unwrap_err();
    reader.finish();
    let failure = LastFailure::of(&error, std::time::SystemTime::now()).expect("a failure worth recording");
    assert_eq!((failure.version, failure.sqlstate.as_deref()), (Some(4), Some("55P03")));

    let mut recorder = connect();
    recorder.batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'").unwrap();
    record_failure(&mut recorder, &name, "schema_migrations", &failure).unwrap();
    let mut reader = connect();
    reader.batch_execute("SET TimeZone = 'America/Sao_Paulo'; SET DateStyle = 'German'").unwrap();
    assert_eq!(read_last_failure(&mut reader, &name, "schema_migrations").unwrap(), Some(failure.clone()));
    assert_eq!(migrator.status(&mut reader, &schema.name).unwrap().last_failure, Some(failure.clone()));

    // The history table held exclusively by someone else: the record gives up after its own lock timeout.
    let mut holder = connect();
    holder.batch_execute(&format!("BEGIN; LOCK TABLE {}.schema_migrations", schema.quoted())).unwrap();
    let started = std::time::Instant::now();
    let refused = record_failure(&mut connect(), &name, "schema_migrations", &failure).unwrap_err();
    assert_eq!(refused.code(), Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up in {:?}", started.elapsed());
    holder.batch_execute("ROLLBACK").unwrap();

    migrator.migrate_to(&mut connect(), &schema.name, Target::Version(4)).unwrap();
    assert_eq!(read_last_failure(&mut connect(), &name, "schema_migrations").unwrap(), None, "stale");
    connect()
        .batch_execute(&format!("COMMENT ON COLUMN {}.schema_migrations.dirty IS 'a note'", schema.quoted()))
        .unwrap();
    assert_eq!(read_last_failure(&mut connect(), &name, "schema_migrations").unwrap(), None);
}

/// A concurrent index build waits for every older transaction of the database before its index is valid, and
/// PostgreSQL waits for each as for a lock. Under the migration's `lock_timeout` it would fail, dirty, whenever any
/// transaction anywhere in the database ran longer; it never blocks the tenant's reads or writes, so it runs
/// without one: migration 5 (`CREATE INDEX CONCURRENTLY`) waits for a transaction open in another schema for
/// longer than the 300 ms timeout, then completes, clean and valid.
#[test]
fn a_concurrent_index_build_waits_for_an_old_transaction_elsewhere_instead_of_failing_dirty() {
    let schema = at_version("cic-old-transaction", 4);
    let elsewhere = TestSchema::new("cic-elsewhere");
    let mut old = connect();
    old.batch_execute(&format!("CREATE SCHEMA {0}; CREATE TABLE {0}.t (id int)", elsewhere.quoted())).unwrap();
    old.batch_execute(&format!("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM {}.t", elsewhere.quoted()))
        .unwrap();
    let migrator = Migrator::new(&SET).lock_timeout(Some(Duration::from_millis(300))).lock_retries(0);
    let started = std::time::Instant::now();
    let (result, waited) = std::thread::scope(|scope| {
        let run = scope.spawn(|| migrator.migrate_to(&mut connect(), &schema.name, Target::Version(5)));
        std::thread::sleep(Duration::from_millis(1500));
        let waited = !run.is_finished();
        old.batch_execute("COMMIT").unwrap();
        (run.join().unwrap(), waited)
    });
    assert!(waited, "the build waited for the old transaction (finished after {:?})", started.elapsed());
    let report = result.expect("the build completes once the old transaction ends");
    assert_eq!(report.steps.iter().map(|s| s.version).collect::<Vec<_>>(), [5]);
    let rows = history_rows(&mut connect(), &schema);
    assert_eq!(rows.last().map(|r| (r.0, r.2)), Some((5, false)), "clean");
    assert_eq!(integration_tests::invalid_indexes(&mut connect(), &schema.name), Vec::<String>::new());
}

/// A statement of a no-transaction migration that cannot lock its table in time is rolled back (a statement is
/// atomic) and the claim released: the run fails with `TableLocked` naming the statement, the statements before it
/// stay done, and the next run resumes at it, without `migrate resolve` and without running the first again.
#[test]
fn a_no_transaction_statement_that_cannot_lock_in_time_is_resumed_by_the_next_run() {
    let schema = TestSchema::new("untransacted-lock");
    let first = integration_tests::migration(1, "a", "CREATE TABLE a (id int);", None);
    let second = integration_tests::migration(
        2,
        "backfill",
        "-- migrate:no-transaction\nCREATE TABLE b (id int);\nINSERT INTO a VALUES (1);\nINSERT INTO b VALUES (2);",
        None,
    );
    let set = integration_tests::set(vec![first, second]);
    let migrator = Migrator::new(&set).lock_timeout(Some(Duration::from_millis(300))).lock_retries(0);
    migrator.migrate_to(&mut connect(), &schema.name, Target::Version(1)).unwrap();

    let mut holder = connect();
    holder.batch_execute(&format!("BEGIN; LOCK TABLE {}.a IN ACCESS EXCLUSIVE MODE", schema.quoted())).unwrap();
    let error = migrator.migrate(&mut connect(), &schema.name).unwrap_err();
    holder.batch_execute("ROLLBACK").unwrap();
    assert!(
        matches!(error.kind(), ErrorKind::TableLocked { version: 2, attempts: 1, resumes_at: Some(2), .. }),
        "{error}"
    );
    assert!(error.to_string().contains("the next run resumes at statement 2"), "{error}");
    let rows = history_rows(&mut connect(), &schema);
    assert_eq!(rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(), [(1, false), (2, true)], "dirty, in progress");
    assert_eq!(integration_tests::tables(&mut connect(), &schema.name), ["a", "b", "schema_migrations"]);

    // The next run resumes at statement 2: `CREATE TABLE b` is not run again (it would fail), and each row is
    // inserted once.
    let report = migrator.migrate(&mut connect(), &schema.name).unwrap();
    assert_eq!(report.steps.iter().map(|s| s.version).collect::<Vec<_>>(), [2]);
    let rows = history_rows(&mut connect(), &schema);
    assert_eq!(rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(), [(1, false), (2, false)], "clean");
    let counts: (i64, i64) = {
        let row = connect()
            .query_one(
                &format!("SELECT (SELECT count(*) FROM {0}.a), (SELECT count(*) FROM {0}.b)", schema.quoted()),
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(counts, (1, 1));
}
