//! Field crashes around no-transaction migrations (issue 10): `cic-probe` (the CLI over `tests/fixtures/crash_cic`,
//! with two `CREATE INDEX CONCURRENTLY` in a no-transaction migration) SIGKILLed over a 100-schema fan-out and in
//! the middle of index builds, with and without its backend; then one plain re-run must bring every schema to head
//! with the catalog of a clean run, no INVALID index and an exact, clean history, without `migrate resolve`. And a
//! no-transaction migration that failed with an SQL error says at once that it is dirty and how to settle it.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{
    catalog_fingerprint, expire_claims, history_rows_of, index_builds, invalid_indexes, terminate_backend, wait_for,
    SchemasFile, TestDatabase, TestSchema,
};
use migrate_runtime::{embed_migrations, ErrorKind, MigrationSet, Migrator, Refusal, SchemaName};

/// The set `cic-probe` embeds.
static CIC_SET: MigrationSet = embed_migrations!("fixtures/crash_cic");

/// Rows of `events` for the kill-during-the-build tests: each of the two builds takes 1.5 to 2 s on the 2-core CI
/// machine (measured: 600 000 rows, 1.5 s and 1.7 s).
const BIG_ROWS: &str = "600000";

/// `cic-probe ARGS` against `database`.
fn cic_probe(database: &TestDatabase, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cic-probe"));
    command.args(args).env("DATABASE_URL", &database.url).env_remove("DEFAULT_SCHEMA_NAME");
    command
}

/// A database of the test's own whose `events` tables get `rows` rows.
fn database_with_rows(label: &str, rows: &str) -> TestDatabase {
    let database = TestDatabase::labelled(label);
    database
        .client()
        .batch_execute(&format!("ALTER DATABASE \"{}\" SET crash_cic.rows = '{rows}'", database.name))
        .unwrap();
    database
}

/// The catalog of a clean run of the set, migrated in `database` (with a small table: the row count is not part
/// of the fingerprint).
fn clean_reference(database: &TestDatabase) -> String {
    let mut client = database.client();
    client.batch_execute("SET crash_cic.rows = '10'").unwrap();
    Migrator::new(&CIC_SET).migrate(&mut client, "reference").unwrap();
    catalog_fingerprint(&mut database.client(), "reference")
}

/// Every schema at head with an exact, clean history, the reference catalog and no INVALID index.
fn assert_whole(database: &TestDatabase, schemas: &[String], reference: &str) {
    let mut client = database.client();
    let expected: Vec<(i64, String, bool)> = CIC_SET.iter().map(|m| (m.version, m.name.to_string(), false)).collect();
    for schema in schemas {
        assert_eq!(history_rows_of(&mut client, schema), expected, "{schema}: history");
        assert_eq!(invalid_indexes(&mut client, schema), Vec::<String>::new(), "{schema}: no INVALID index");
        assert_eq!(catalog_fingerprint(&mut client, schema), reference, "{schema}: catalog");
        let marks: i64 =
            client.query_one(&format!("SELECT count(*) FROM \"{schema}\".backfill_marks"), &[]).unwrap().get(0);
        assert_eq!(marks, 1, "{schema}: the gated backfill ran its INSERT once");
    }
}

/// Whether any schema has a dirty history row now (a no-transaction migration claimed and not finished).
fn dirty_schemas(database: &TestDatabase, schemas: &[String]) -> usize {
    let mut client = database.client();
    schemas
        .iter()
        .filter(|schema| {
            let table: Option<String> = client
                .query_one("SELECT to_regclass($1)::text", &[&format!("\"{schema}\".schema_migrations")])
                .unwrap()
                .get(0);
            table.is_some() && history_rows_of(&mut client, schema).iter().any(|r| r.2)
        })
        .count()
}

/// Backends of `cic-probe` runs in `client`'s database (by their application_name).
fn probe_backends(client: &mut postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name LIKE 'cic-probe%'",
            &[],
        )
        .unwrap()
        .get(0)
}

/// Relations (tables, indexes, views, ...) in `schemas` now: how far a fan-out has come, in one query.
fn relations(client: &mut postgres::Client, schemas: &[String]) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ANY($1)",
            &[&schemas],
        )
        .unwrap()
        .get(0)
}

fn kill(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// The one plain re-run: exit 0, and what it printed when it did not.
fn rerun(database: &TestDatabase, args: &[&str]) {
    let output = cic_probe(database, args).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "the plain re-run succeeds\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_fan_out_over_a_hundred_schemas_killed_at_twenty_points_some_mid_index_build_completes_on_one_rerun() {
    let started = Instant::now();
    let database = database_with_rows("crash_cic_fanout", "20000");
    let reference = clean_reference(&database);
    let schemas: Vec<String> = (0..100).map(|i| format!("tenant-{i}")).collect();
    let file = SchemasFile::new(&schemas);
    let mut watcher = database.client();
    let (mut killed_mid_run, mut killed_mid_build) = (0, 0);
    // --keep-going: a schema the engine gives up on must not end the runs early, or the kills would land after
    // them; the one plain re-run at the end reports any such schema.
    for point in 0..20u64 {
        let mut child = cic_probe(
            &database,
            &["upgrade", "--create", "--keep-going", "--schemas-file", file.path(), "--jobs", "4"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        if point % 2 == 0 {
            // After some progress, more at each point: a few relations more in the tenants' schemas.
            let before = relations(&mut watcher, &schemas);
            wait_for(Duration::from_secs(5), || {
                relations(&mut watcher, &schemas) >= before + 2 + point as i64 / 2
                    || child.try_wait().unwrap().is_some()
            });
        } else {
            // In the middle of a concurrent index build of some schema.
            let building = wait_for(Duration::from_secs(5), || {
                index_builds(&mut watcher, &schemas).iter().any(|b| b.phase.starts_with("building index"))
                    || child.try_wait().unwrap().is_some()
            });
            if building && child.try_wait().unwrap().is_none() {
                killed_mid_build += 1;
            }
        }
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        kill(&mut child);
        // The next run comes later than the lease. A killed client's backends finish the query string they
        // were given (a build, or a claim written after the kill) and then exit; once they have, what the killed
        // run claimed is resumable.
        assert!(wait_for(Duration::from_secs(30), || probe_backends(&mut watcher) == 0), "orphaned backends exit");
        expire_claims(&mut watcher, &schemas);
    }
    eprintln!("kills: {killed_mid_run} mid-run, {killed_mid_build} mid-build, after {:?}", started.elapsed());
    assert!(killed_mid_run >= 16, "most kills landed mid-run ({killed_mid_run} of 20)");
    assert!(killed_mid_build >= 4, "kills landed during index builds ({killed_mid_build} of 10)");
    assert!(dirty_schemas(&database, &schemas) >= 1, "some no-transaction migration was left claimed and unfinished");

    rerun(&database, &["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "4"]);
    assert_whole(&database, &schemas, &reference);
    // Idempotent: a second run applies nothing.
    let output =
        cic_probe(&database, &["upgrade", "--schemas-file", file.path(), "--format", "json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let applied: usize =
        report["schemas"].as_array().unwrap().iter().map(|s| s["steps"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(applied, 0);
    eprintln!("fan-out crash test: {:?}", started.elapsed());
}

/// Start `cic-probe upgrade -s schema` and SIGKILL it while `index` is in the build phase; the build's backend.
fn kill_during_build(database: &TestDatabase, schema: &str, index: &str) -> i32 {
    kill_during_build_through(database, &database.url, schema, index)
}

/// [`kill_during_build`] with the CLI connecting to `url` (PgBouncer, say).
fn kill_during_build_through(database: &TestDatabase, url: &str, schema: &str, index: &str) -> i32 {
    let mut watcher = database.client();
    let mut child = cic_probe(database, &["upgrade", "--create", "-s", schema])
        .env("DATABASE_URL", url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let schemas = [schema.to_owned()];
    let mut build = None;
    let found = wait_for(Duration::from_secs(45), || {
        build = index_builds(&mut watcher, &schemas)
            .into_iter()
            .find(|b| b.index == index && b.phase.starts_with("building index"));
        build.is_some() || child.try_wait().unwrap().is_some()
    });
    let running = child.try_wait().unwrap().is_none();
    kill(&mut child);
    let build = build.unwrap_or_else(|| panic!("{schema}: never saw {index} being built (found {found})"));
    assert!(running, "{schema}: the CLI was killed while {index} was being built");
    build.pid
}

#[test]
fn a_kill_during_an_index_build_with_its_backend_gone_is_resumed_by_a_plain_rerun() {
    let started = Instant::now();
    let database = database_with_rows("crash_cic_build", BIG_ROWS);
    let reference = clean_reference(&database);
    let schemas = ["first-build".to_owned(), "second-build".to_owned()];
    // The process and its connection die together (a lost node): the build stops and leaves an INVALID index.
    for (schema, index) in schemas.iter().zip(["events_kind_idx", "events_kind_id_idx"]) {
        let pid = kill_during_build(&database, schema, index);
        terminate_backend(pid);
        let mut client = database.client();
        assert_eq!(
            invalid_indexes(&mut client, schema),
            [index],
            "{schema}: the interrupted build left {index} INVALID"
        );
        let rows = history_rows_of(&mut client, schema);
        assert_eq!(rows.iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(), [(1, false), (2, true)], "{schema}");
    }
    // As after the 60-second lease (the gated test below waits for a live one).
    expire_claims(&mut database.client(), &schemas);
    rerun(&database, &["upgrade", "--schemas", &schemas.join(",")]);
    assert_whole(&database, &schemas, &reference);
    eprintln!("kill during build, backend terminated: {:?}", started.elapsed());
}

/// Behind PgBouncer in transaction mode: the runner's statements may run on any pooled server connection, and
/// whatever a server connection was last given (an application_name) stays on it while it idles in the pool.
/// The re-run, through the same PgBouncer, must find the runner gone, resume, and leave no lock on the pool.
#[test]
fn a_kill_during_an_index_build_behind_pgbouncer_is_resumed_by_a_plain_rerun_through_it() {
    use integration_tests::pgbouncer::{advisory_locks, PgBouncer, PoolMode};

    let started = Instant::now();
    let database = database_with_rows("crash_cic_pooled", BIG_ROWS);
    let reference = clean_reference(&database);
    let bouncer = PgBouncer::start(PoolMode::Transaction, 4, &[("ignore_startup_parameters", "options")]);
    let url = bouncer.url(&database.name);
    let schema = "pooled-build".to_owned();
    let pid = kill_during_build_through(&database, &url, &schema, "events_kind_idx");
    terminate_backend(pid);
    let mut client = database.client();
    assert_eq!(invalid_indexes(&mut client, &schema), ["events_kind_idx"]);
    expire_claims(&mut client, std::slice::from_ref(&schema));

    let output = cic_probe(&database, &["upgrade", "-s", &schema]).env("DATABASE_URL", &url).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "the plain re-run through PgBouncer succeeds\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_whole(&database, std::slice::from_ref(&schema), &reference);
    assert!(bouncer.servers().iter().any(|s| s.database == database.name));
    assert_eq!(advisory_locks(&database.name), [], "no advisory lock left on a pooled server connection");
    eprintln!("kill during build behind PgBouncer: {:?}", started.elapsed());
}

#[test]
fn a_build_that_finishes_after_its_client_was_killed_is_not_run_twice() {
    let started = Instant::now();
    let database = database_with_rows("crash_cic_orphan", BIG_ROWS);
    let reference = clean_reference(&database);
    let schema = "orphan-build".to_owned();
    // Only the process dies (SIGKILL of a pod): its backend goes on building the index, commits it VALID, and
    // exits when it finds the client gone, before the run could record the statement as done.
    let pid = kill_during_build(&database, &schema, "events_kind_idx");
    assert!(wait_for(Duration::from_secs(30), || !integration_tests::backend_alive(pid)), "the orphaned backend exits");
    let mut client = database.client();
    assert_eq!(invalid_indexes(&mut client, &schema), Vec::<String>::new(), "the orphaned build completed");
    let built: Option<String> =
        client.query_one("SELECT to_regclass('\"orphan-build\".events_kind_idx')::text", &[]).unwrap().get(0);
    assert!(built.is_some(), "events_kind_idx exists, built by the orphaned backend");
    assert_eq!(
        history_rows_of(&mut client, &schema).iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
        [(1, false), (2, true)]
    );
    // As after the 60-second lease (waiting it out for real passes too, in a minute more).
    expire_claims(&mut client, std::slice::from_ref(&schema));

    rerun(&database, &["upgrade", "-s", &schema]);
    assert_whole(&database, std::slice::from_ref(&schema), &reference);
    eprintln!("orphaned build: {:?}", started.elapsed());
}

/// Hold the gate of `schema`'s migration 4 and start `cic-probe upgrade -s schema`; once it waits inside the
/// backfill's INSERT, SIGKILL it. Returns the gate's connection (drop it, or unlock, to open the gate) and the
/// backend left waiting.
fn kill_inside_the_backfill(database: &TestDatabase, schema: &str) -> (postgres::Client, i32) {
    let mut gate = database.client();
    gate.query_one("SELECT pg_advisory_lock(hashtext($1)::bigint)", &[&schema]).unwrap();
    let mut child = cic_probe(database, &["upgrade", "--create", "-s", schema])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waiting = None;
    let mut watcher = database.client();
    assert!(wait_for(Duration::from_secs(30), || {
        waiting = watcher
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' \
                 AND query LIKE '%pg_advisory_xact_lock(hashtext(current_schema())%'",
                &[],
            )
            .unwrap()
            .map(|r| r.get::<_, i32>(0));
        waiting.is_some() || child.try_wait().unwrap().is_some()
    }));
    assert!(child.try_wait().unwrap().is_none(), "the CLI is inside the gated statement");
    kill(&mut child);
    let mut client = database.client();
    assert_eq!(
        history_rows_of(&mut client, schema).iter().map(|r| (r.0, r.2)).collect::<Vec<_>>(),
        [(1, false), (2, false), (3, false), (4, true)],
        "migration 4 is left claimed, inside its second statement"
    );
    (gate, waiting.unwrap())
}

#[test]
fn an_interrupted_no_transaction_statement_is_resumed_without_running_finished_statements_again() {
    let database = database_with_rows("crash_cic_gate", "100");
    let reference = clean_reference(&database);
    let schema = "gated".to_owned();
    // The process is killed and its connection with it: the INSERT never happens.
    let (gate, backend) = kill_inside_the_backfill(&database, &schema);
    terminate_backend(backend);
    drop(gate);

    // Within the claim's lease a runner behind a transaction pooler may be between two server connections: the
    // backend that last renewed its lease (a pooled server connection, which outlives its client) is still
    // there, so a run waits for it, says so, and gives up at --lock-wait without touching the migration. Here the
    // renewing backend is made one that lives on, as a pooled one would.
    let mut pooled = database.client();
    let table = format!("{}.schema_migrations", SchemaName::new(&schema).unwrap().quoted());
    pooled
        .batch_execute(&format!(
            "UPDATE {table} SET runner_backend = pg_backend_pid(), runner_backend_start = \
             (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()) WHERE version = 4"
        ))
        .unwrap();
    let output = cic_probe(&database, &["upgrade", "-s", &schema, "--lock-wait", "2s"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr
            .contains("migration 4 was claimed by a runner that shows no backend now; waiting for its claim to expire"),
        "it says what it waits for:\n{stderr}"
    );
    assert!(!stderr.contains("which is running"), "{stderr}");
    let mut client = database.client();
    assert_eq!(history_rows_of(&mut client, &schema).last().map(|r| (r.0, r.2)), Some((4, true)));

    // Over a direct connection the renewing backend was the runner's own: once it is gone, the runner is seen as
    // dead at once, and a plain re-run resumes without waiting the lease out: CREATE TABLE backfill_marks (done)
    // is not run again, the INSERT runs once.
    drop(pooled);
    assert!(wait_for(Duration::from_secs(10), || {
        let pids: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} t JOIN pg_stat_activity a ON a.pid = t.runner_backend"),
                &[],
            )
            .unwrap()
            .get(0);
        pids == 0
    }));
    // `--lock-wait 1s`: a run that had to wait the lease out (60 s) would give up, exit 1.
    let output = cic_probe(&database, &["upgrade", "-s", &schema, "--lock-wait", "1s"]).output().unwrap();
    integration_tests::succeeded(&output);
    assert_whole(&database, std::slice::from_ref(&schema), &reference);
}

/// The other way a pod dies: only the process. Its backend, waiting in the INSERT, goes on once the gate opens,
/// commits the row and exits; the run never recorded the statement as done. A resume must not insert again.
#[test]
fn a_statement_that_finishes_after_its_client_was_killed_is_not_run_again() {
    let database = database_with_rows("crash_cic_orphan_insert", "100");
    let reference = clean_reference(&database);
    let schema = "orphan-insert".to_owned();
    let (gate, backend) = kill_inside_the_backfill(&database, &schema);
    drop(gate);
    assert!(wait_for(Duration::from_secs(30), || !integration_tests::backend_alive(backend)), "the orphan exits");
    let mut client = database.client();
    let marks: i64 = client.query_one("SELECT count(*) FROM \"orphan-insert\".backfill_marks", &[]).unwrap().get(0);
    assert_eq!(marks, 1, "the orphaned backend finished the INSERT");
    expire_claims(&mut client, std::slice::from_ref(&schema));

    rerun(&database, &["upgrade", "-s", &schema]);
    assert_whole(&database, std::slice::from_ref(&schema), &reference);
}

#[test]
fn a_no_transaction_migration_that_fails_says_at_once_it_is_dirty_and_how_to_settle_it_and_keeps_refusing() {
    let schema = TestSchema::new("notx-fails");
    let migrations = crate::failing_concurrent_indexes();
    // The schema exists, so the index statements run concurrently, outside any transaction (in a schema the run
    // created they would run in its one transaction, and a failure would leave nothing).
    let migrator = Migrator::new(&migrations);
    migrator.migrate_to(&mut integration_tests::connect(), &schema.name, migrate_runtime::Target::Version(1)).unwrap();
    let error = migrator.migrate(&mut integration_tests::connect(), &schema.name).unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::MigrationFailed { version: 2, position: Some((3, 48)), .. }), "{error}");
    assert_eq!(migrate_cli::exit::code_of_migration(&error), migrate_cli::ExitCode::MigrationFailed);
    let message = error.to_string();
    assert!(message.contains("nonsense"), "PostgreSQL's message: {message}");
    assert!(message.contains("dirty"), "the first failure says the version is now dirty: {message}");
    let advice = migrate_cli::advice(&error).unwrap_or_default();
    assert!(advice.contains("migrate resolve --version 2"), "and the CLI says how to settle it: {advice}");

    // From new connections, the failing one gone: a statement that failed with an SQL error is never resumed.
    for _ in 0..2 {
        let error = Migrator::new(&migrations).migrate(&mut integration_tests::connect(), &schema.name).unwrap_err();
        assert!(matches!(error.refusal(), Some(Refusal::Dirty { version: 2, .. })), "{error}");
        assert_eq!(migrate_cli::exit::code_of_migration(&error), migrate_cli::ExitCode::Refused);
        assert!(migrate_cli::advice(&error).unwrap_or_default().contains("migrate resolve --version 2"), "{error}");
    }
    let mut client = integration_tests::connect();
    assert_eq!(
        integration_tests::history_rows(&mut client, &schema),
        [(1, "t".to_owned(), false), (2, "idx".to_owned(), true)]
    );
}
