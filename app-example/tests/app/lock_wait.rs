//! Waiting for a schema's migration lock held by another process (issue 10): the CLI says on stderr, and the
//! service in its boot log, who holds it (application name, backend pid), and `--lock-wait` ends in a
//! `LockTimeout` that names the holder, with exit code 1.

use std::process::Command;
use std::time::{Duration, Instant};

use integration_tests::{connect, database_url, history_rows, migration_lock_key, TestSchema, XactLockHolder};
use migrate_runtime::DEFAULT_HISTORY_TABLE;

use crate::boot::Service;

const HOLDER: &str = "lock-holder-test";

/// Hold `schema`'s migration lock the way a migrating process does: a transaction-level advisory lock on the
/// engine's key, in a transaction of a connection named [`HOLDER`].
fn hold(schema: &TestSchema) -> XactLockHolder {
    let key = migration_lock_key(&schema.name, DEFAULT_HISTORY_TABLE);
    XactLockHolder::take(&database_url(), HOLDER, key)
}

fn migrate(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_app-example"));
    command
        .arg("migrate")
        .args(args)
        .env("DATABASE_URL", database_url())
        .env_remove("DEFAULT_SCHEMA_NAME")
        .env_remove("MIGRATE_PROTECTED_SCHEMAS");
    command
}

#[test]
fn waiting_for_a_held_lock_names_the_holder_and_the_timeout_names_it_too() {
    let schema = TestSchema::new("lock-held");
    let holder = hold(&schema);
    let started = Instant::now();
    let output = migrate(&["upgrade", "--create", "-s", &schema.name, "--lock-wait", "3s"]).output().unwrap();
    let waited = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "LockTimeout exits 1\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(waited >= Duration::from_secs(3), "it waited the whole --lock-wait ({waited:?})");
    let pid = holder.pid.to_string();
    let holder_text = format!("\"{HOLDER}\" (backend pid {pid}");
    // While waiting (after about a second), stderr says who holds the lock.
    let waiting = format!("schema \"{}\": waiting for the migration lock held by {holder_text}", schema.name);
    assert!(stderr.lines().any(|l| l.contains(&waiting)), "stderr names the holder while waiting:\n{stderr}");
    // The error itself: the schema, the holder, and that it held the lock for the whole wait.
    let both = format!("{stdout}\n{stderr}");
    let error = both
        .lines()
        .find(|l| l.contains("held the migration lock for all of"))
        .unwrap_or_else(|| panic!("a LockTimeout message:\n{both}"));
    assert!(error.contains(&format!("schema \"{}\": {holder_text}", schema.name)), "it names the holder: {error}");
    assert!(history_rows_exist(&schema).is_none(), "nothing was created while the lock was held");

    holder.release();
    let output = migrate(&["upgrade", "--create", "-s", &schema.name, "--lock-wait", "3s"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

/// The history table's rows, or `None` when it does not exist.
fn history_rows_exist(schema: &TestSchema) -> Option<usize> {
    let table: Option<String> = connect()
        .query_one("SELECT to_regclass($1)::text", &[&format!("{}.schema_migrations", schema.quoted())])
        .unwrap()
        .get(0);
    table.map(|_| history_rows(&mut connect(), schema).len())
}

#[test]
fn a_booting_service_logs_who_holds_the_lock_while_it_waits_then_comes_up() {
    let schema = TestSchema::new("lock-boot");
    let holder = hold(&schema);
    let pid = holder.pid.to_string();
    let service = std::thread::scope(|scope| {
        let booting = scope.spawn(|| Service::start(&schema.name));
        // The message comes after about a second of waiting and repeats: hold the lock past the first one.
        std::thread::sleep(Duration::from_millis(2500));
        holder.release();
        booting.join().unwrap()
    });
    let service =
        service.unwrap_or_else(|(code, log)| panic!("the service came up once the lock was free ({code:?}):\n{log}"));
    let waiting =
        format!("schema \"{}\": waiting for the migration lock held by \"{HOLDER}\" (backend pid {pid}", schema.name);
    assert!(
        service.boot_log.lines().any(|l| l.contains(&waiting)),
        "the boot log names the holder {HOLDER} (pid {pid}):\n{}",
        service.boot_log
    );
    assert_eq!(service.get("/health")["version"], 8);
}
