//! The history table's name, from `--history-table` or `MIGRATE_HISTORY_TABLE`, as every command and the service
//! at boot must agree on it; and a schema holding another tool's `schema_migrations` (dbmate's, made by dbmate).

use std::process::Command;

use integration_tests::{connect, tables, TestSchema};
use serde_json::Value;

use crate::boot::Service;
use crate::cli::migrate;
use crate::operator::{document, output};

/// A successful command's JSON document.
fn json(command: assert_cmd::Command) -> Value {
    document(command, 0)
}

fn rows(schema: &TestSchema, table: &str) -> i64 {
    connect().query_one(&format!("SELECT count(*) FROM {}.{table}", schema.quoted()), &[]).unwrap().get(0)
}

#[test]
fn every_command_uses_the_history_table_named_by_the_flag_or_the_environment() {
    let schema = TestSchema::new("names");
    let name = schema.name.as_str();
    let (code, out, err) = output(migrate(&["upgrade", "-s", name, "--create", "--history-table", "app_history"]));
    assert_eq!(code, Some(0), "{out}\n{err}");
    let found = tables(&mut connect(), name);
    assert!(found.contains(&"app_history".to_owned()) && !found.contains(&"schema_migrations".to_owned()), "{found:?}");
    assert_eq!(rows(&schema, "app_history"), 8);

    let status = json(migrate(&["status", "-s", name, "--history-table", "app_history", "--format", "json"]));
    assert_eq!(status["schemas"][0]["state"], "at head", "{status}");

    let with_env = |args: &[&str]| {
        let mut command = migrate(args);
        command.env("MIGRATE_HISTORY_TABLE", "app_history");
        command
    };
    let history = json(with_env(&["history", "-s", name, "--format", "json"]));
    let states: Vec<&str> =
        history["schemas"][0]["migrations"].as_array().unwrap().iter().map(|m| m["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["applied"; 8]);
    let verified = json(with_env(&["verify", "-s", name, "--format", "json"]));
    assert_eq!(verified["schemas"][0]["outcome"], "equal", "{verified}");
    let (code, out, err) = output(with_env(&["downgrade", "-s", name, "-t", "7", "--yes"]));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(rows(&schema, "app_history"), 7);
    // The survey behind `--all-schemas` and `upgrade` looks for the same table.
    let (code, out, err) = output(with_env(&["upgrade", "-s", name]));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(rows(&schema, "app_history"), 8);
    assert!(!tables(&mut connect(), name).contains(&"schema_migrations".to_owned()));

    // A name that cannot be a table is refused before anything runs.
    let (code, _, err) = output(migrate(&["status", "-s", name, "--history-table", "bad\u{7}name"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--history-table"), "{err}");
}

#[test]
fn the_service_at_boot_uses_the_history_table_the_environment_names() {
    let schema = TestSchema::new("names-boot");
    let service = Service::start_with(&schema.name, &[("MIGRATE_HISTORY_TABLE", "app_history")]).unwrap();
    drop(service);
    assert_eq!(rows(&schema, "app_history"), 8);
    assert!(!tables(&mut connect(), &schema.name).contains(&"schema_migrations".to_owned()));
    // And the operator's command, given the same variable, sees it at head.
    let mut status = migrate(&["status", "-s", &schema.name, "--format", "json"]);
    status.env("MIGRATE_HISTORY_TABLE", "app_history");
    assert_eq!(json(status)["schemas"][0]["state"], "at head");
}

/// A schema that dbmate migrated (dbmate's own `schema_migrations`, written by dbmate from npm, installed by
/// scripts/setup.sh): refused with a clear message and nothing changed; with a history table of its own, migrated
/// beside dbmate's, which is left as it was.
#[test]
fn another_tools_schema_migrations_is_refused_until_this_tool_has_a_table_of_its_own() {
    let schema = TestSchema::new("dbmate");
    connect().batch_execute(&format!("CREATE SCHEMA {}", schema.quoted())).unwrap();
    let folder = std::env::temp_dir().join(format!("dbmate-{}", schema.name));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("20240101000000_legacy.sql"),
        "-- migrate:up\nCREATE TABLE legacy (id int);\n\n-- migrate:down\nDROP TABLE legacy;\n",
    )
    .unwrap();
    let base = integration_tests::database_url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}sslmode=disable&search_path={}", schema.name);
    let dbmate = Command::new("dbmate")
        .args(["--no-dump-schema", "--migrations-dir"])
        .arg(&folder)
        .args(["--url", &url, "up"])
        .output()
        .expect("dbmate is not installed: bash scripts/setup.sh installs it");
    assert!(dbmate.status.success(), "{}", String::from_utf8_lossy(&dbmate.stderr));
    assert_eq!(rows(&schema, "schema_migrations"), 1, "dbmate recorded its migration");

    let (code, out, err) = output(migrate(&["upgrade", "-s", &schema.name, "--yes"]));
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(out.contains("was not made by this tool") && out.contains("history table of its own"), "{out}");
    assert_eq!(tables(&mut connect(), &schema.name), ["legacy", "schema_migrations"], "nothing was changed");

    let (code, out, err) = output(migrate(&["upgrade", "-s", &schema.name, "--history-table", "app_history"]));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(rows(&schema, "app_history"), 8);
    assert_eq!(rows(&schema, "schema_migrations"), 1, "dbmate's history is left as it was");
    let columns: i64 = connect()
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'schema_migrations'",
            &[&schema.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(columns, 1, "dbmate's table gained no column of ours");
    std::fs::remove_dir_all(folder).unwrap();
}
