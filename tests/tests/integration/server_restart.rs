//! The server restarted in the middle of a fan-out. This test restarts the machine's PostgreSQL, so it is ignored
//! by default and `.ci/run` runs it on its own after everything else: `cargo test -p integration-tests --test
//! server_restart -- --ignored`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::probe;
use integration_tests::{history_rows, Tenants};
use migrate_runtime::{embed_migrations, MigrationSet};

static PROBE_SET: MigrationSet = embed_migrations!("../bench/migrations");

fn restart_server() {
    let versions = std::fs::read_dir("/etc/postgresql").expect("a Debian PostgreSQL cluster");
    let version = versions.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).max().unwrap();
    let status = Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart", "-m", "fast"])
        .status()
        .unwrap();
    assert!(status.success(), "pg_ctlcluster restart failed");
}

fn wait_for_server() {
    let deadline = Instant::now() + Duration::from_secs(60);
    while postgres::Client::connect(&integration_tests::database_url(), postgres::NoTls).is_err() {
        assert!(Instant::now() < deadline, "the server did not come back");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[ignore = "restarts the server: run alone, as .ci/run does"]
fn a_server_restart_mid_run_fails_clearly_leaves_nothing_half_applied_and_a_rerun_completes() {
    let Tenants { schemas, file, .. } = Tenants::new("restart", 60);
    let child = probe(&["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "2", "--keep-going"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    restart_server();
    let output = child.wait_with_output().unwrap();
    wait_for_server();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_ne!(output.status.code(), Some(0), "the run reports the failures:\n{stdout}");
    let failed: Vec<&str> = stdout.lines().filter(|l| l.contains("FAILED")).collect();
    assert!(!failed.is_empty(), "{stdout}");
    for line in &failed {
        assert!(
            [
                "terminating connection",
                "connection closed",
                "could not connect",
                "shutting down",
                "starting up",
                "error connecting"
            ]
            .iter()
            .any(|reason| line.contains(reason)),
            "a failure names the connection problem: {line}"
        );
    }
    // Nothing half applied: every schema is either whole or not there at all (fresh schemas are built in one
    // transaction).
    let mut client = integration_tests::connect();
    for schema in &schemas {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{}.schema_migrations", schema.quoted())])
            .unwrap()
            .get(0);
        if exists {
            assert_eq!(history_rows(&mut client, schema).len(), PROBE_SET.len(), "{}", schema.name);
        } else {
            assert_eq!(integration_tests::tables(&mut client, &schema.name), Vec::<String>::new(), "{}", schema.name);
        }
    }
    let status = probe(&["upgrade", "--create", "--schemas-file", file.path(), "--jobs", "2"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    for schema in &schemas {
        assert_eq!(history_rows(&mut client, schema).len(), PROBE_SET.len(), "{}", schema.name);
    }
}
