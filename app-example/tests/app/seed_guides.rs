//! The two seed guides (`shared/seeds/`, the Alembic workflows this product replaces) run end to end with
//! `app-example migrate` in place of `migrate.py`, `multi_schema_migration.py` and `migrate_to_prod.sh`.
//! The guides name their schemas `dev`, `prod`, `tenant-1`, ...; to use those names as written without touching
//! anyone else's, the test runs in a database of its own.

use assert_cmd::Command;
use integration_tests::TestDatabase;
use serde_json::Value;

/// `app-example migrate` against a test database.
trait Migrate {
    /// Run with `args`; asserts the exit code and returns stdout.
    fn migrate(&self, args: &[&str], code: i32) -> String {
        self.migrate_with(args, &[], code)
    }

    fn migrate_with(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> String;
}

impl Migrate for TestDatabase {
    fn migrate_with(&self, args: &[&str], env: &[(&str, &str)], code: i32) -> String {
        let mut command = assert_cmd::cargo::cargo_bin_cmd!("app-example");
        command
            .arg("migrate")
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env_remove("DEFAULT_SCHEMA_NAME")
            .env_remove("MIGRATE_PROTECTED_SCHEMAS");
        command.envs(env.iter().copied());
        let output = Command::output(&mut command).unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}\nstdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

const HEAD: [i64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// Guide 1: `migrate.py reset|revision|upgrade|downgrade|current|history --schema S`.
#[test]
fn guide_one_migrate_py_workflow() {
    let db = TestDatabase::new();

    // Quick start: reset and initialise dev, prod and a tenant. prod is protected: off a terminal it needs --yes.
    db.migrate(&["reset", "--schema", "dev"], 0);
    db.migrate(&["reset", "--schema", "prod"], 3);
    db.migrate(&["reset", "--schema", "prod", "--yes"], 0);
    db.migrate(&["reset", "--schema", "tenant-1"], 0);
    for schema in ["dev", "prod", "tenant-1"] {
        assert_eq!(db.versions(schema), HEAD, "{schema}");
    }

    // Creating new migrations: the pair lands in the source folder (here a copy of it).
    let folder = std::env::temp_dir().join(format!("{}_migrations", db.name));
    std::fs::create_dir_all(&folder).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), folder.join(entry.file_name())).unwrap();
    }
    let dir = folder.to_str().unwrap();
    let out = db.migrate(&["revision", "--schema", "dev", "--message", "add new feature", "--migrations-dir", dir], 0);
    assert!(out.contains("9_add_new_feature.up.sql") && folder.join("9_add_new_feature.down.sql").exists(), "{out}");
    std::fs::remove_dir_all(&folder).unwrap();

    // Running migrations, and to a specific revision.
    db.migrate(&["downgrade", "--schema", "dev", "--target", "base"], 0);
    db.migrate(&["upgrade", "--schema", "dev", "--target", "4"], 0);
    assert_eq!(db.versions("dev"), [1, 2, 3, 4]);
    assert!(db.has_column("dev", "customers", "cpf"));
    db.migrate(&["upgrade", "--schema", "dev"], 0);
    // prod is protected: every change to it, an upgrade too, is confirmed (--yes off a terminal).
    db.migrate(&["upgrade", "--schema", "prod"], 3);
    db.migrate(&["upgrade", "--schema", "prod", "--yes"], 0);
    assert_eq!(db.versions("dev"), HEAD);

    // Status and history.
    let current = json(&db.migrate(&["current", "--schema", "dev", "--format", "json"], 0));
    assert_eq!(current["schemas"][0]["state"], "at head");
    let history = db.migrate(&["history", "--schema", "dev"], 0);
    assert_eq!(history.lines().filter(|l| l.contains(" applied ")).count(), 8, "{history}");

    // Rolling back one step.
    db.migrate(&["downgrade", "--schema", "dev", "--target", "-1"], 0);
    assert_eq!(db.versions("dev"), [1, 2, 3, 4, 5, 6, 7]);
    assert!(!db.has_column("dev", "customers", "updated_at"));

    // DEFAULT_SCHEMA_NAME picks the schema when --schema is absent.
    db.migrate_with(&["upgrade"], &[("DEFAULT_SCHEMA_NAME", "dev")], 0);
    assert_eq!(db.versions("dev"), HEAD);

    // Tenants.
    db.migrate(&["reset", "--schema", "tenant-2"], 0);
    db.migrate(&["upgrade", "--schema", "tenant-1"], 0);
    db.migrate(&["upgrade", "--schema", "tenant-2"], 0);
    assert_eq!(db.versions("tenant-2"), HEAD);
    let public: i64 =
        db.client().query_one("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", &[]).unwrap().get(0);
    assert_eq!(public, 0, "nothing lands in public");
}

/// Guide 2: `multi_schema_migration.py --schemas dev,prod --action ...` and `migrate_to_prod.sh`.
#[test]
fn guide_two_multi_schema_and_prod_scripts() {
    let db = TestDatabase::new();
    // The schemas do not exist yet: upgrade creates them only when asked (a typo must not create a schema).
    db.migrate(&["upgrade", "--schemas", "dev,prod", "--target", "3", "--yes"], 3);
    db.migrate(&["upgrade", "--schemas", "dev,prod", "--target", "3", "--create", "--yes"], 0);

    // --action current
    let current = json(&db.migrate(&["current", "--schemas", "dev,prod", "--format", "json"], 0));
    let states: Vec<(&str, &str)> = current["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["schema"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("dev", "behind"), ("prod", "behind")]);

    // --action upgrade --target add_cpf_and_address (a migration's name works as a target)
    db.migrate(&["upgrade", "--schemas", "dev", "--target", "add_cpf_and_address"], 0);
    assert_eq!(db.versions("dev"), [1, 2, 3, 4]);
    assert!(db.has_column("dev", "customers", "cpf"));

    // --action upgrade on prod, with a dry run first that changes nothing.
    let plan = db.migrate(&["upgrade", "--schemas", "prod", "--dry-run"], 0);
    assert!(plan.contains("version 3 -> 8, 5 step(s)"), "{plan}");
    assert_eq!(db.versions("prod"), [1, 2, 3]);
    db.migrate(&["upgrade", "--schemas", "prod", "--yes"], 0);
    assert_eq!(db.versions("prod"), HEAD);

    // --action rollback --target PREVIOUS: protected prod refuses without confirmation, then rolls back.
    db.migrate(&["downgrade", "--schemas", "prod", "--target", "4"], 3);
    assert_eq!(db.versions("prod"), HEAD);
    db.migrate(&["downgrade", "--schemas", "prod", "--target", "4", "--auto-confirm"], 0);
    assert_eq!(db.versions("prod"), [1, 2, 3, 4]);
    let current = json(&db.migrate(&["current", "--schemas", "prod", "--format", "json"], 0));
    assert_eq!(current["schemas"][0]["version"], 4);

    // migrate_to_prod.sh --dry-run, then --auto-confirm.
    db.migrate(&["upgrade", "--schema", "prod", "--dry-run"], 0);
    assert_eq!(db.versions("prod"), [1, 2, 3, 4]);
    let out = db.migrate(&["upgrade", "--schema", "prod", "--auto-confirm"], 0);
    assert!(out.contains("prod: applied 4 migration(s), version 4 -> 8"), "{out}");

    // DEFAULT_SCHEMA_NAME=dev ... upgrade head
    db.migrate_with(&["upgrade", "--target", "head"], &[("DEFAULT_SCHEMA_NAME", "dev")], 0);
    let status = json(&db.migrate(&["status", "--all-schemas", "--format", "json"], 0));
    let at_head: Vec<&str> = status["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "at head")
        .map(|s| s["schema"].as_str().unwrap())
        .collect();
    assert_eq!(at_head, ["dev", "prod"]);
}
