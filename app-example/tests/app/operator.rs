//! What an operator meets, with the real binary: dry-run counts, refusals said and counted as refusals, typos
//! refused with the nearest names, one JSON document for every outcome, and the smaller roughnesses.

use integration_tests::{connect, history_rows, TestSchema};
use serde_json::Value;

use crate::cli::migrate;

pub(crate) fn output(mut command: assert_cmd::Command) -> (Option<i32>, String, String) {
    let output = command.output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

/// Run, check the exit code, and return stdout.
fn expect(command: assert_cmd::Command, code: i32) -> String {
    let (got, out, err) = output(command);
    assert_eq!(got, Some(code), "stdout:\n{out}\nstderr:\n{err}");
    out
}

pub(crate) fn document(command: assert_cmd::Command, code: i32) -> Value {
    let out = expect(command, code);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{out}"))
}

/// Two schemas at head.
fn two_at_head(label: &str) -> (TestSchema, TestSchema) {
    let (a, b) = (TestSchema::new(&format!("{label}-a")), TestSchema::new(&format!("{label}-b")));
    expect(migrate(&["upgrade", "--create", "--schemas", &format!("{},{}", a.name, b.name)]), 0);
    (a, b)
}

#[test]
fn a_dry_run_counts_what_would_change_and_changes_nothing() {
    let (a, b) = two_at_head("dry");
    let both = format!("{},{}", a.name, b.name);
    let out = expect(migrate(&["downgrade", "--schemas", &both, "-t", "6", "--dry-run"]), 0);
    let summary = out.lines().last().unwrap();
    assert_eq!(summary, "2 schema(s): 2 would change, 0 already current, 0 failed (dry run: nothing was changed)");
    let json = document(migrate(&["downgrade", "--schemas", &both, "-t", "6", "--dry-run", "--format", "json"]), 0);
    assert_eq!(json["summary"]["would_change"], 2, "{json}");
    assert_eq!(json["summary"]["unchanged"], 0, "{json}");
    // An upgrade at head would change nothing, and says so.
    let json = document(migrate(&["upgrade", "--schemas", &both, "--dry-run", "--format", "json"]), 0);
    assert_eq!((json["summary"]["would_change"].as_u64(), json["summary"]["unchanged"].as_u64()), (Some(0), Some(2)));
    assert_eq!(history_rows(&mut connect(), &a).len(), 8, "nothing was changed");
}

#[test]
fn refusals_are_said_and_counted_as_refused() {
    let (a, _b) = two_at_head("refused");
    let out = expect(migrate(&["upgrade", "-s", &a.name, "-t", "99"]), 2);
    assert!(out.contains(": REFUSED: ") && out.contains("target version 99 is not in this binary"), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
    let json = document(migrate(&["baseline", "-s", &a.name, "--version", "2", "--format", "json"]), 3);
    assert_eq!(json["schemas"][0]["outcome"], "refused", "{json}");
    assert_eq!((json["summary"]["refused"].as_u64(), json["summary"]["failed"].as_u64()), (Some(1), Some(0)));
    assert_eq!(json["exit_code"], 3);
}

#[test]
fn reads_refuse_a_schema_that_does_not_exist_and_name_the_nearest() {
    let (a, _b) = two_at_head("typo");
    // Two letters swapped, as `prdo` for `prod`.
    let typo = a.name.replacen("typo", "tyop", 1);
    for command in ["current", "status", "history"] {
        let (code, out, err) = output(migrate(&[command, "--schema", &typo]));
        assert_eq!(code, Some(3), "{command}: {out}\n{err}");
        assert!(err.contains(&format!("schema {typo:?} (did you mean {:?}", a.name)), "{command}: {err}");
        assert!(err.contains("does not exist; check the name"), "{command}: {err}");
        assert!(!err.contains("nothing was changed"), "{command}: a read changes nothing anyway: {err}");
    }
}

#[test]
fn a_list_with_spaces_and_a_misspelt_target_name() {
    let (a, b) = two_at_head("spaces");
    let json = document(migrate(&["status", "--schemas", &format!("{}, {}", a.name, b.name), "--format", "json"]), 0);
    assert_eq!(json["summary"]["states"]["at head"], 2, "{json}");
    // A target by migration name, one letter off: the nearest names are offered.
    let (code, _, err) = output(migrate(&["downgrade", "-s", &a.name, "-t", "create_prodcts"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("(did you mean \"create_products\""), "{err}");
}

/// A port nothing listens on: bind one, then let it go.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=2")
}

#[test]
fn with_format_json_every_outcome_is_one_json_document_with_its_exit_code() {
    let (a, _b) = two_at_head("json");
    let json = |args: &[&str], code: i32| {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let value = document(migrate(&all), code);
        assert_eq!(value["exit_code"], code, "{value}");
        value
    };
    // A schema that does not exist, for a change and for a read.
    let missing = format!("{}x", a.name);
    let value = json(&["upgrade", "-s", &missing], 3);
    assert_eq!(value["kind"], "missing_schemas", "{value}");
    assert_eq!(value["missing"][0]["schema"], missing.as_str());
    assert_eq!(value["missing"][0]["nearest"][0], a.name.as_str());
    assert_eq!(json(&["status", "-s", &missing], 3)["kind"], "missing_schemas");
    // A bad target, a target the other way.
    assert_eq!(json(&["upgrade", "-s", &a.name, "-t", "nonsense"], 2)["kind"], "bad_target");
    assert_eq!(json(&["upgrade", "-s", &a.name, "-t", "base"], 2)["kind"], "wrong_direction");
    // A protected schema off a terminal.
    let mut protected = migrate(&["downgrade", "-s", &a.name, "-t", "7", "--format", "json"]);
    protected.env("MIGRATE_PROTECTED_SCHEMAS", &a.name);
    let value = document(protected, 3);
    assert_eq!(
        (value["kind"].as_str(), value["protected"][0].as_str()),
        (Some("not_confirmed"), Some(a.name.as_str()))
    );
    // The database is unreachable: listing its schemas fails (exit 1).
    let value = json(&["status", "-s", &a.name, "--database-url", &closed_port_url()], 1);
    assert_eq!(value["kind"], "list_schemas", "{value}");
    assert!(value["error"].as_str().unwrap().contains("could not connect"), "{value}");
}

#[test]
fn status_and_history_say_dirty_of_the_same_row_and_downgrade_help_lists_what_it_takes() {
    let schema = TestSchema::new("dirty-words");
    expect(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    connect()
        .batch_execute(&format!("UPDATE {}.schema_migrations SET dirty = true WHERE version = 5", schema.quoted()))
        .unwrap();
    let status = document(migrate(&["status", "-s", &schema.name, "--format", "json"]), 5);
    assert_eq!(status["schemas"][0]["state"], "dirty", "{status}");
    let history = document(migrate(&["history", "-s", &schema.name, "--format", "json"]), 5);
    assert_eq!(history["schemas"][0]["migrations"][4]["state"], "dirty", "{history}");

    let help = expect(migrate(&["downgrade", "--help"]), 0);
    assert!(help.contains("--allow-missing") && !help.contains("--allow-out-of-order"), "{help}");
    assert!(help.contains("default: 10m"), "the lock wait's default: {help}");
}

#[test]
fn revision_writes_where_the_operator_is_and_says_why_not_with_the_right_code() {
    // A checkout of the service elsewhere: its own `migrations` folder in the current directory.
    let checkout = std::env::temp_dir().join(format!("revision-checkout-{}", std::process::id()));
    let folder = checkout.join("migrations");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("1_init.up.sql"), "SELECT 1;").unwrap();
    let in_checkout = |args: &[&str]| {
        let mut command = migrate(args);
        command.current_dir(&checkout);
        command
    };
    let out = expect(in_checkout(&["revision", "-m", "Ünïcode Straße"]), 0);
    let written = folder.canonicalize().unwrap().join("2_unicode_strasse.up.sql");
    assert!(out.contains(&written.display().to_string()), "written where the operator is: {out}");
    assert!(written.is_file() && folder.join("2_unicode_strasse.down.sql").is_file());

    // The same message again would make two migrations of one name: refused (exit 3), nothing written.
    let (code, _, err) = output(in_checkout(&["revision", "-m", "unicode strasse"]));
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("already has a migration named \"unicode_strasse\""), "{err}");
    // No message, or one without a Latin letter: a usage error (exit 2).
    let (code, _, err) = output(in_checkout(&["revision", "-m", ""]));
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = output(in_checkout(&["revision", "-m", "добавить"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be written in a migration's file name"), "{err}");
    let files = std::fs::read_dir(&folder).unwrap().count();
    assert_eq!(files, 3, "nothing else was written");
    std::fs::remove_dir_all(checkout).unwrap();
}

#[test]
fn a_changing_run_names_its_database_and_says_when_protection_protects_nothing() {
    // A database of its own, so that a schema named prod is this test's.
    let database = integration_tests::TestDatabase::labelled("protect");
    let on_database = |args: &[&str], protected: Option<&str>| {
        let mut command = migrate(args);
        command.env("DATABASE_URL", &database.url);
        if let Some(protected) = protected {
            command.env("MIGRATE_PROTECTED_SCHEMAS", protected);
        }
        command
    };
    // prod is protected by default: refused off a terminal, nothing created.
    let (code, _, err) = output(on_database(&["upgrade", "--create", "-s", "prod"], None));
    assert_eq!(code, Some(3), "{err}");
    // A list that leaves prod out protects it no more, and a pattern that matches nothing protects nothing: said.
    let (code, _, err) = output(on_database(&["upgrade", "--create", "-s", "prod"], Some("tenant-*")));
    assert_eq!(code, Some(0), "{err}");
    let label = database.url.rsplit('@').next().unwrap().split('?').next().unwrap().to_owned();
    assert!(err.contains(&format!("note: upgrade on {label}")), "which database: {err}");
    assert!(!err.contains("built-in default"), "{err}");
    assert!(err.contains("protected pattern \"tenant-*\" (MIGRATE_PROTECTED_SCHEMAS) matches no schema"), "{err}");
    assert!(
        err.contains("schema \"prod\" is not protected: MIGRATE_PROTECTED_SCHEMAS (tenant-*) replaces the default"),
        "{err}"
    );
    assert_eq!(database.versions("prod").len(), 8);
}

/// Alembic itself (from PyPI; scripts/setup.sh installs it) writes its `alembic_version` into a schema that our
/// migrations built, as after a move from Alembic that keeps the old table: `verify` does not report it, and
/// `baseline --version` takes a migration's name as `--target` does.
#[test]
fn alembics_own_table_is_no_drift_and_baseline_takes_a_name() {
    let schema = TestSchema::new("alembic");
    expect(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    let env = std::env::temp_dir().join(format!("alembic-{}", schema.name));
    std::fs::create_dir_all(env.join("versions")).unwrap();
    std::fs::write(env.join("alembic.ini"), "[alembic]\nscript_location = %(here)s\n").unwrap();
    std::fs::write(
        env.join("env.py"),
        "import os\nfrom alembic import context\nfrom sqlalchemy import create_engine\n\
         engine = create_engine(os.environ['ALEMBIC_URL'])\n\
         with engine.connect() as connection:\n\
         \x20   context.configure(connection=connection, version_table_schema=os.environ['ALEMBIC_SCHEMA'])\n\
         \x20   with context.begin_transaction():\n\
         \x20       context.run_migrations()\n\
         \x20   connection.commit()\n",
    )
    .unwrap();
    std::fs::write(
        env.join("versions/8285db59cac3_initial.py"),
        "revision = '8285db59cac3'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\
         def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n",
    )
    .unwrap();
    let url = integration_tests::database_url().replacen("postgres://", "postgresql+psycopg2://", 1);
    let alembic = std::process::Command::new("python3")
        .args(["-m", "alembic", "-c"])
        .arg(env.join("alembic.ini"))
        .args(["upgrade", "head"])
        .env("ALEMBIC_URL", url)
        .env("ALEMBIC_SCHEMA", &schema.name)
        .output()
        .expect("python3 runs");
    assert!(
        alembic.status.success(),
        "alembic (bash scripts/setup.sh installs it): {}",
        String::from_utf8_lossy(&alembic.stderr)
    );
    let version: String = connect()
        .query_one(&format!("SELECT version_num FROM {}.alembic_version", schema.quoted()), &[])
        .unwrap()
        .get(0);
    assert_eq!(version, "8285db59cac3", "Alembic wrote its own table");

    let verified = document(migrate(&["verify", "-s", &schema.name, "--format", "json"]), 0);
    assert_eq!(verified["schemas"][0]["outcome"], "equal", "{verified}");

    // `--version` by name, as `--target` takes it: already applied, so nothing to record.
    let out = expect(migrate(&["baseline", "-s", &schema.name, "--version", "customers_updated_at"]), 0);
    assert!(out.contains("nothing to do"), "{out}");
    let (code, _, err) = output(migrate(&["baseline", "-s", &schema.name, "--version", "customers_updated"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("did you mean \"customers_updated_at\""), "{err}");
    std::fs::remove_dir_all(env).unwrap();
}

#[test]
fn a_run_that_creates_a_schema_beside_one_of_a_near_name_says_so() {
    let database = integration_tests::TestDatabase::labelled("near_names");
    let on_database = |args: &[&str]| {
        let mut command = migrate(args);
        command.env("DATABASE_URL", &database.url);
        command
    };
    expect(on_database(&["upgrade", "--create", "-s", "dev"]), 0);
    let (code, _, err) = output(on_database(&["reset", "-s", "Dev"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("schema \"Dev\" does not exist: this run creates it (did you mean \"dev\"?)"), "{err}");
}

#[test]
fn a_dry_run_names_files_without_the_climb_and_shows_no_lone_semicolons() {
    let schema = TestSchema::new("dry-text");
    let out = expect(migrate(&["upgrade", "--create", "-s", &schema.name, "--dry-run"]), 0);
    assert!(out.contains("-- apply 1 create_customers (migrations/1_create_customers.up.sql)"), "{out}");
    assert!(!out.contains("../migrations"), "{out}");
    assert!(!out.lines().any(|line| line.trim() == ";"), "no lone `;` line:\n{out}");
    // What the dry run shows is what runs: the same SQL applies the set.
    expect(migrate(&["upgrade", "--create", "-s", &schema.name]), 0);
    assert_eq!(history_rows(&mut connect(), &schema).len(), 8);
}

#[test]
fn status_only_problems_lists_the_schemas_that_need_a_look_and_counts_them_all() {
    let (a, b) = two_at_head("problems");
    expect(migrate(&["downgrade", "-s", &b.name, "-t", "7"]), 0);
    let both = format!("{},{}", a.name, b.name);
    let out = expect(migrate(&["status", "--schemas", &both, "--only-problems"]), 0);
    assert!(out.contains(&b.name) && !out.contains(&format!("{} ", a.name)), "{out}");
    assert!(out.ends_with("2 schema(s): 1 at head, 1 behind\n"), "{out}");
    let json = document(migrate(&["current", "--schemas", &both, "--only-problems", "--format", "json"]), 0);
    let listed: Vec<&str> = json["schemas"].as_array().unwrap().iter().map(|s| s["schema"].as_str().unwrap()).collect();
    assert_eq!(listed, [b.name.as_str()]);
    assert_eq!(json["summary"]["schemas"], 2);
}

/// Two operators upgrade the same thirty schemas at once: each migration is applied once, and each run's entry for
/// a schema says what this run applied and what another process did meanwhile, which together are the schema's
/// whole change from the version the run started at.
#[test]
fn two_operators_at_once_each_report_their_own_work_and_the_others() {
    let schemas: Vec<TestSchema> = (0..30).map(|i| TestSchema::new(&format!("two-ops-{i}"))).collect();
    let list = schemas.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(",");
    expect(migrate(&["upgrade", "--create", "--schemas", &list, "-t", "4"]), 0);
    let spawn = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_app-example"));
        command
            .args(["migrate", "upgrade", "--schemas", &list, "--format", "json", "-j", "3"])
            .env("DATABASE_URL", integration_tests::database_url())
            .env_remove("MIGRATE_PROTECTED_SCHEMAS")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let runs: Vec<Value> = [first, second]
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect();
    let versions = |list: &Value| -> Vec<i64> {
        let mut versions: Vec<i64> = list.as_array().unwrap().iter().map(|s| s["version"].as_i64().unwrap()).collect();
        versions.sort_unstable();
        versions
    };
    for schema in &schemas {
        let mut applied_by_runs: Vec<i64> = Vec::new();
        for run in &runs {
            let entry =
                run["schemas"].as_array().unwrap().iter().find(|e| e["schema"] == schema.name.as_str()).unwrap();
            let (ours, theirs) = (versions(&entry["steps"]), versions(&entry["by_others"]));
            let from = entry["version_before"].as_i64().unwrap();
            let mut whole: Vec<i64> = ours.iter().chain(&theirs).copied().collect();
            whole.sort_unstable();
            assert_eq!(whole, ((from + 1)..=8).collect::<Vec<_>>(), "{}: {entry}", schema.name);
            applied_by_runs.extend(ours);
        }
        applied_by_runs.sort_unstable();
        assert_eq!(applied_by_runs, [5, 6, 7, 8], "{}: each migration applied once", schema.name);
        assert_eq!(history_rows(&mut connect(), schema).len(), 8);
    }
    for run in &runs {
        let with_others = run["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| !e["by_others"].as_array().unwrap().is_empty())
            .count();
        assert_eq!(run["summary"]["by_others"], with_others, "{}", run["summary"]);
    }
}

/// Ctrl-C in the middle of a fan-out, while one schema waits on a table lock: the query waiting is canceled on
/// the server (nothing runs on after the client), no schema is started after it, the report says what was done and
/// not started, and the schema that was interrupted is as it was.
#[test]
fn an_interrupt_cancels_the_query_in_flight_starts_nothing_new_and_reports_what_was_done() {
    let schemas: Vec<TestSchema> = (1..=4).map(|i| TestSchema::new(&format!("sigint-{i}"))).collect();
    let list = schemas.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(",");
    expect(migrate(&["upgrade", "--create", "--schemas", &list]), 0);
    // Another session holds the second schema's table: its down migration waits.
    let mut holder = connect();
    let mut lock = holder.transaction().unwrap();
    lock.batch_execute(&format!("LOCK TABLE {}.customers IN ACCESS EXCLUSIVE MODE", schemas[1].quoted())).unwrap();

    let child = std::process::Command::new(env!("CARGO_BIN_EXE_app-example"))
        .args(["migrate", "downgrade", "--schemas", &list, "-t", "7", "-j", "1", "--yes"])
        .env("DATABASE_URL", integration_tests::database_url())
        .env_remove("MIGRATE_PROTECTED_SCHEMAS")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = |client: &mut postgres::Client| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'app-example migrate%' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0)
    };
    let mut watcher = connect();
    assert!(
        integration_tests::wait_for(std::time::Duration::from_secs(20), || waiting(&mut watcher) == 1),
        "the downgrade of the second schema waits on the lock"
    );
    let signal = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(signal.success());
    let output = child.wait_with_output().unwrap();
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("interrupted: canceling the queries in flight"), "{err}");
    assert!(out.contains(&format!("{}: reverted 1 migration(s)", schemas[0].name)), "{out}");
    assert!(out.contains(&format!("{}: INTERRUPTED", schemas[1].name)), "{out}");
    assert!(out.contains("2 not started (interrupted)"), "{out}");
    // The server is not left running the query the client sent.
    assert_eq!(waiting(&mut watcher), 0, "the waiting query was canceled");
    lock.commit().unwrap();
    for (schema, rows) in schemas.iter().zip([7, 8, 8, 8]) {
        assert_eq!(history_rows(&mut connect(), schema).len(), rows, "{}", schema.name);
    }
    let clean = document(migrate(&["status", "--schemas", &list, "--format", "json"]), 0);
    let states: Vec<&str> = clean["schemas"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["behind", "at head", "at head", "at head"], "nothing half-done: {clean}");
}
