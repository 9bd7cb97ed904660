//! `status` says why a schema's last run failed: the run records it after rolling back, and the record stands
//! while the schema's history is as that run left it.

use integration_tests::{connect, history_rows, TestSchema};

use crate::cli::{json, migrate, stdout};

/// Run `upgrade ARGS` on `schema` while another session holds `customers` locked: it fails with 55P03.
fn fail_on_the_lock(schema: &TestSchema, args: &[&str]) -> String {
    let mut holder = connect();
    holder.batch_execute(&format!("BEGIN; LOCK TABLE {}.customers IN ACCESS EXCLUSIVE MODE", schema.quoted())).unwrap();
    let mut all = vec!["upgrade", "-s", &schema.name, "--lock-timeout", "300ms", "--lock-retries", "0"];
    all.extend_from_slice(args);
    let out = stdout(migrate(&all), 4);
    holder.batch_execute("ROLLBACK").unwrap();
    out
}

fn last_failure(schema: &TestSchema) -> serde_json::Value {
    let document = json(migrate(&["status", "-s", &schema.name, "--format", "json"]), 0);
    document["schemas"][0]["last_failure"].clone()
}

#[test]
fn status_shows_the_last_failed_run_until_the_history_moves_on() {
    let schema = TestSchema::new("last-failure");
    stdout(migrate(&["upgrade", "--create", "-s", &schema.name, "-t", "1"]), 0);
    fail_on_the_lock(&schema, &[]);
    let versions: Vec<i64> = history_rows(&mut connect(), &schema).iter().map(|r| r.0).collect();
    assert_eq!(versions, [1, 2], "migration 2 committed, 3 could not lock customers");

    let status = stdout(migrate(&["status", "-s", &schema.name]), 0);
    assert!(status.contains("last run failed at "), "{status}");
    assert!(status.contains("migration 3 (../migrations/3_create_orders.up.sql) could not lock a table"), "{status}");
    assert!(status.contains("(SQLSTATE 55P03)"), "{status}");
    let failure = last_failure(&schema);
    assert_eq!(failure["version"], 3);
    assert_eq!(failure["sqlstate"], "55P03");
    let at = failure["at"].as_str().unwrap();
    assert!(at.len() == 20 && at.ends_with('Z') && at.starts_with("20"), "{at}");

    // The next run applies migration 3: the history moved on, the record no longer stands (the schema is still
    // behind, and nothing is said of a failure).
    stdout(migrate(&["upgrade", "-s", &schema.name, "-t", "3"]), 0);
    assert_eq!(last_failure(&schema), serde_json::Value::Null);
    let status = stdout(migrate(&["status", "-s", &schema.name]), 0);
    assert!(status.contains("behind") && !status.contains("last run failed"), "{status}");

    // A second failure is recorded over the first, and an upgrade to head leaves nothing to show.
    fail_on_the_lock(&schema, &["--keep-going"]);
    assert_eq!(last_failure(&schema)["version"], 4, "{}", stdout(migrate(&["status", "-s", &schema.name]), 0));
    stdout(migrate(&["upgrade", "-s", &schema.name]), 0);
    let status = stdout(migrate(&["status", "-s", &schema.name]), 0);
    assert!(status.contains("at head") && !status.contains("last run failed"), "{status}");
}
