//! One search path for everything that runs or builds migrations: a diesel folder whose index uses `gin_trgm_ops`
//! from `pg_trgm`, installed once by an administrator in the shared schema `extensions`, is applied, verified and
//! diffed with the same `--extra-search-path` (or `MIGRATE_EXTRA_SEARCH_PATH`), through the library and through a
//! service binary's CLI. Each test has a database of its own: an extension lives in one schema per database.

use integration_tests::TestDatabase;
use migrate_ops::{verify_schemas, Outcome, StructureError};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator, SchemaName};

static TRGM: MigrationSet = embed_migrations!("fixtures/shared_trgm");

/// A database of its own with `pg_trgm` in the shared schema `extensions`.
fn database_with_trgm(label: &str) -> TestDatabase {
    let database = TestDatabase::labelled(label);
    database.client().batch_execute("CREATE SCHEMA extensions; CREATE EXTENSION pg_trgm SCHEMA extensions").unwrap();
    database
}

/// `trgm-probe ARGS` (its whole command line is the CLI) against `database`, with no ambient configuration.
fn probe(database: &TestDatabase, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trgm-probe"));
    command
        .args(args)
        .env("DATABASE_URL", &database.url)
        .env_remove("MIGRATE_EXTRA_SEARCH_PATH")
        .env_remove("MIGRATE_HISTORY_TABLE")
        .env_remove("MIGRATE_PROTECTED_SCHEMAS");
    command
}

fn run(mut command: std::process::Command) -> (Option<i32>, String, String) {
    let output = command.output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[test]
fn verify_builds_its_reference_with_the_migrators_search_path() {
    let database = database_with_trgm("trgm_lib");
    let shared = SchemaName::parse_list("extensions").unwrap();
    let migrator = Migrator::new(&TRGM).extra_search_path(shared);
    let tenants: Vec<SchemaName> = ["tenant-a", "tenant-b"].iter().map(|t| SchemaName::new(t).unwrap()).collect();
    for tenant in &tenants {
        assert_eq!(migrator.migrate(&mut database.client(), tenant.as_str()).unwrap().steps.len(), 2);
    }

    let verified = verify_schemas(&mut database.client(), &migrator, &tenants).unwrap();
    for verification in &verified {
        assert_eq!(verification.outcome, Outcome::Equal, "{}: {:?}", verification.schema, verification.outcome);
    }

    // Without the shared schema the reference build cannot resolve the operator class, and says which file.
    let error = verify_schemas(&mut database.client(), &Migrator::new(&TRGM), &tenants).unwrap_err();
    match &error {
        StructureError::ReferenceFailed { file, message, .. } => {
            assert!(file.ends_with("2024-01-02-000000_search_index/up.sql"), "{file}");
            assert!(message.contains("gin_trgm_ops"), "{message}");
        }
        other => panic!("expected the reference build to fail: {other}"),
    }
    // Nothing of the reference build is left behind.
    let scratch: i64 = database
        .client()
        .query_one("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'migrate_reference_%'", &[])
        .unwrap()
        .get(0);
    assert_eq!(scratch, 0);
}

#[test]
fn the_cli_applies_verifies_and_diffs_with_one_search_path_from_the_flag_or_the_environment() {
    let database = database_with_trgm("trgm_cli");
    let (code, out, err) = run(probe(
        &database,
        &["upgrade", "--schemas", "tenant-a,tenant-b", "--create", "--yes", "--extra-search-path", "extensions"],
    ));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert_eq!(database.versions("tenant-a").len(), 2);

    // The environment serves verify exactly as the flag served upgrade.
    let mut verify = probe(&database, &["verify", "--schemas", "tenant-a,tenant-b", "--format", "json"]);
    verify.env("MIGRATE_EXTRA_SEARCH_PATH", "extensions");
    let (code, out, err) = run(verify);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let document: serde_json::Value = serde_json::from_str(&out).unwrap();
    let outcomes: Vec<&str> =
        document["schemas"].as_array().unwrap().iter().map(|s| s["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["equal", "equal"]);

    // Without it the reference cannot be built: the migration's SQL fails in the scratch schema (exit 4).
    let (code, out, err) = run(probe(&database, &["verify", "--schemas", "tenant-a"]));
    assert_eq!(code, Some(4), "{out}\n{err}");
    assert!(out.contains("gin_trgm_ops"), "{out}");

    // `diff` takes the same options; two tenants built alike are equal.
    let (code, out, err) =
        run(probe(&database, &["diff", "tenant-a", "tenant-b", "--extra-search-path", "extensions"]));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("have the same structure"), "{out}");

    // A name that is not a schema name is refused before anything runs (exit 2).
    let (code, _, err) =
        run(probe(&database, &["verify", "--schemas", "tenant-a", "--extra-search-path", " \u{7}bad"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--extra-search-path"), "{err}");
}
