//! `upgrade --canary` and `--waves` as an operator runs them: canaries first, then waves; a failure stops every
//! later wave from starting, and the run says where it stopped; a second run resumes.

use integration_tests::{connect, history_rows_of, Tenants};

use crate::cli::migrate;

fn exists(schema: &str) -> bool {
    connect().query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema]).unwrap().get(0)
}

/// A schema that will fail at migration 2: it already has a `products` table.
fn poisoned(schema: &str) {
    connect()
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\"; CREATE TABLE \"{schema}\".products (id int)"))
        .unwrap();
}

#[test]
fn a_canary_then_waves_migrate_every_schema_and_say_each_wave() {
    let tenants = Tenants::new("waves", 5);
    let output =
        migrate(&["upgrade", "--create", "--schemas-file", tenants.file.path(), "--canary", "1", "--waves", "2"])
            .output()
            .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    for line in ["wave 1 of 3 (canary): 1 schema(s)", "wave 2 of 3: 2 schema(s)", "wave 3 of 3: 2 schema(s)"] {
        assert!(stderr.contains(line), "{stderr}");
    }
    for name in &tenants.names {
        assert_eq!(history_rows_of(&mut connect(), name).len(), 8, "{name}");
    }
}

#[test]
fn a_failing_canary_starts_no_other_schema() {
    let tenants = Tenants::new("canary-fails", 4);
    poisoned(&tenants.names[2]);
    let canary = tenants.names[2].as_str();
    let output =
        migrate(&["upgrade", "--create", "--schemas-file", tenants.file.path(), "--canary", canary, "--keep-going"])
            .output()
            .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(4), "{stdout}{stderr}");
    assert!(stderr.contains("wave 1 of 2 (canary): 1 schema(s)"), "{stderr}");
    assert!(
        stderr.contains("stopped after wave 1 of 2: a schema failed in it; 3 schema(s) of the later waves not started"),
        "{stderr}"
    );
    assert!(stdout.contains("relation \"products\" already exists"), "{stdout}");
    for (i, name) in tenants.names.iter().enumerate().filter(|(i, _)| *i != 2) {
        assert!(!exists(name), "schema {i} was started after the canary failed");
    }
}

#[test]
fn a_failure_in_a_wave_stops_the_later_waves_and_a_second_run_resumes() {
    let tenants = Tenants::new("wave-fails", 6);
    poisoned(&tenants.names[2]);
    let args = ["upgrade", "--create", "--schemas-file", tenants.file.path(), "--waves", "2", "-j", "1"];
    let output = migrate(&args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(4), "{stdout}{stderr}");
    assert!(
        stderr.contains("stopped after wave 2 of 3: a schema failed in it; 2 schema(s) of the later waves"),
        "{stderr}"
    );
    let at_head: Vec<bool> =
        tenants.names.iter().map(|n| exists(n) && history_rows_of(&mut connect(), n).len() == 8).collect();
    assert_eq!(
        at_head,
        [true, true, false, false, false, false],
        "wave 1 done; the failure stopped wave 2; wave 3 not started"
    );
    assert!(!exists(&tenants.names[4]) && !exists(&tenants.names[5]));

    // Fixed, the same command resumes: the schemas at head are skipped, the rest migrated.
    connect().batch_execute(&format!("DROP TABLE \"{}\".products", tenants.names[2])).unwrap();
    let output = migrate(&args).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("wave 1 of 2: 2 schema(s)") && stderr.contains("wave 2 of 2: 2 schema(s)"), "{stderr}");
    for name in &tenants.names {
        assert_eq!(history_rows_of(&mut connect(), name).len(), 8, "{name}");
    }
}

#[test]
fn a_canary_that_is_not_selected_is_refused_before_anything_runs() {
    let tenants = Tenants::new("canary-unknown", 2);
    let output = migrate(&["upgrade", "--create", "--schemas-file", tenants.file.path(), "--canary", "not-selected"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("canary schema \"not-selected\" is not among the selected schemas"), "{stderr}");
    assert!(!exists(&tenants.names[0]) && !exists(&tenants.names[1]));
}
