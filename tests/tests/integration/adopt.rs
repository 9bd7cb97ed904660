//! Adopting schemas as they are: `adopt` from the history tables that sqlx, diesel and refinery themselves wrote
//! (each tool's own migrator runs on a fixture folder in a test schema), `baseline` of a schema built by hand, the
//! refusals (each leaving the history as it was), and migrations that use an extension type from a shared schema.
//!
//! Fixtures: `tests/fixtures/adopt_{sqlx,diesel,refinery}/`, the same three migrations in each tool's layout. The
//! tools apply the first two (from a copy of the folder holding only those); our binary's set has all three.

use std::path::{Path, PathBuf};

use integration_tests::{connect, tables, TestDatabase, TestSchema};
use migrate_ops::Inspect;
use migrate_runtime::{
    embed_migrations, ErrorKind, FixKind, Migration, MigrationSet, Migrator, RecordSource, Refusal, SchemaName, Script,
    Tool,
};

static SQLX: MigrationSet = embed_migrations!("fixtures/adopt_sqlx");
static DIESEL: MigrationSet = embed_migrations!("fixtures/adopt_diesel");
static REFINERY: MigrationSet = embed_migrations!("fixtures/adopt_refinery");

fn fixture(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(folder)
}

/// A copy of the fixture folder with only its first `count` entries (files or folders, in name order), so that a
/// tool applies only those; removed when dropped.
struct Partial(PathBuf);

impl Partial {
    fn new(folder: &str, count: usize) -> Partial {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let target = std::env::temp_dir().join(format!("{folder}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&target).unwrap();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(fixture(folder))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "sql"))
            .collect();
        entries.sort();
        for entry in entries.into_iter().take(count) {
            copy(&entry, &target.join(entry.file_name().unwrap()));
        }
        Partial(target)
    }
}

fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap().path();
            copy(&entry, &to.join(entry.file_name().unwrap()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn create(schema: &TestSchema) {
    connect().batch_execute(&format!("CREATE SCHEMA {}", schema.quoted())).unwrap();
}

/// sqlx's own migrator, on a connection whose `search_path` is the schema, so `_sqlx_migrations` lands there.
fn run_sqlx(folder: &Path, schema: &TestSchema) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let options: sqlx::postgres::PgConnectOptions = integration_tests::database_url().parse().unwrap();
        let options = options.options([("search_path", schema.quoted())]);
        let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
        let migrator = sqlx::migrate::Migrator::new(folder).await.unwrap();
        migrator.run(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    });
}

/// diesel's own harness.
fn run_diesel(folder: &Path, schema: &TestSchema) {
    use diesel::{Connection, RunQueryDsl};
    use diesel_migrations::MigrationHarness;
    let mut conn = diesel::PgConnection::establish(&integration_tests::database_url()).unwrap();
    diesel::sql_query(format!("SET search_path TO {}", schema.quoted())).execute(&mut conn).unwrap();
    let source = diesel_migrations::FileBasedMigrations::from_path(folder).unwrap();
    conn.run_pending_migrations(source).unwrap();
}

/// refinery's own runner.
fn run_refinery(folder: &Path, schema: &TestSchema) {
    let migrations = refinery::load_sql_migrations(folder).unwrap();
    let mut client = connect();
    client.batch_execute(&format!("SET search_path TO {}", schema.quoted())).unwrap();
    refinery::Runner::new(&migrations).run(&mut client).unwrap();
}

/// `(version, applied_by)` of our history rows; empty when there is no history table.
fn recorded(client: &mut postgres::Client, schema: &TestSchema) -> Vec<(i64, String)> {
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{}.schema_migrations", schema.quoted())])
        .unwrap()
        .get(0);
    if !exists {
        return Vec::new();
    }
    let sql = format!("SELECT version, applied_by FROM {}.schema_migrations ORDER BY version", schema.quoted());
    client.query(&sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

fn versions(set: &MigrationSet) -> Vec<i64> {
    set.iter().map(|m| m.version).collect()
}

/// Adopt what `tool` applied (the first two migrations), then upgrade: only the third runs. Their table stays.
fn adopt_then_upgrade(set: &MigrationSet, tool: Tool, schema: &TestSchema) {
    let mut client = connect();
    let all = versions(set);
    let migrator = Migrator::new(set);
    let report = migrator.adopt(&mut client, &schema.name, tool).unwrap();
    let by = format!("postgres (adopted from {tool})");
    let kinds: Vec<(i64, FixKind)> = report.fixes.iter().map(|f| (f.version, f.kind.clone())).collect();
    let adopted = FixKind::Recorded { source: RecordSource::Adopted(tool) };
    assert_eq!(kinds, [(all[0], adopted.clone()), (all[1], adopted)]);
    assert!(report.steps.is_empty());
    assert_eq!(recorded(&mut client, schema), [(all[0], by.clone()), (all[1], by.clone())]);
    // Adopting again changes nothing.
    assert!(migrator.adopt(&mut client, &schema.name, tool).unwrap().is_unchanged());

    let report = migrator.migrate(&mut client, &schema.name).unwrap();
    assert_eq!(report.steps.iter().map(|s| s.version).collect::<Vec<_>>(), [all[2]], "only what is newer runs");
    assert_eq!(recorded(&mut client, schema).len(), 3);
    let names = tables(&mut client, &schema.name);
    for table in ["accounts", "sessions", tool.table(), "schema_migrations"] {
        assert!(names.iter().any(|t| t == table), "{table} in {names:?}");
    }
    assert!(migrator.migrate(&mut client, &schema.name).unwrap().is_unchanged(), "twice: nothing to do");
}

#[test]
fn adopt_from_sqlx() {
    let schema = TestSchema::new("adopt-sqlx");
    create(&schema);
    run_sqlx(&Partial::new("adopt_sqlx", 2).0, &schema);
    adopt_then_upgrade(&SQLX, Tool::Sqlx, &schema);
}

#[test]
fn adopt_from_diesel() {
    let schema = TestSchema::new("adopt-diesel");
    create(&schema);
    run_diesel(&Partial::new("adopt_diesel", 2).0, &schema);
    adopt_then_upgrade(&DIESEL, Tool::Diesel, &schema);
}

#[test]
fn adopt_from_refinery() {
    let schema = TestSchema::new("adopt-refinery");
    create(&schema);
    run_refinery(&Partial::new("adopt_refinery", 2).0, &schema);
    adopt_then_upgrade(&REFINERY, Tool::Refinery, &schema);
}

/// `set` with migration `version`'s up file edited.
fn edited(set: &MigrationSet, version: i64) -> MigrationSet {
    let migrations: Vec<Migration> = set
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if m.version == version {
                m.up = Script::new(m.up.file.clone(), format!("{}\n-- edited after it was applied\n", m.up.sql));
            }
            m
        })
        .collect();
    MigrationSet::from_ordered(migrations)
}

/// `set` without migration `version`.
fn without(set: &MigrationSet, version: i64) -> MigrationSet {
    MigrationSet::from_ordered(set.iter().filter(|m| m.version != version).cloned().collect())
}

/// The tool's rows, as text, to show they are left alone.
fn their_rows(client: &mut postgres::Client, schema: &TestSchema, tool: Tool) -> Vec<String> {
    let sql = format!("SELECT t::text FROM {}.{} t ORDER BY 1", schema.quoted(), tool.table());
    client.query(&sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

#[test]
fn adopt_refusals_leave_the_history_untouched() {
    let mut client = connect();
    let sqlx_schema = TestSchema::new("adopt-refuse-sqlx");
    create(&sqlx_schema);
    run_sqlx(&Partial::new("adopt_sqlx", 2).0, &sqlx_schema);
    let refinery_schema = TestSchema::new("adopt-refuse-ref");
    create(&refinery_schema);
    run_refinery(&Partial::new("adopt_refinery", 2).0, &refinery_schema);
    let before = their_rows(&mut client, &sqlx_schema, Tool::Sqlx);
    let second = SQLX.iter().nth(1).unwrap().version;

    let lacking = without(&SQLX, second);
    let error = Migrator::new(&lacking).adopt(&mut client, &sqlx_schema.name, Tool::Sqlx).unwrap_err();
    assert!(
        matches!(error.refusal(), Some(Refusal::ForeignMissingFromBinary { version, tool: Tool::Sqlx, .. }) if *version == second)
    );
    assert!(error.to_string().contains("accounts display name"), "sqlx's description names it: {error}");

    let changed = edited(&SQLX, second);
    let error = Migrator::new(&changed).adopt(&mut client, &sqlx_schema.name, Tool::Sqlx).unwrap_err();
    assert!(
        matches!(error.refusal(), Some(Refusal::ForeignChecksumMismatch { version, file, .. })
            if *version == second && file.ends_with("20240101000002_accounts_display_name.sql")),
        "{error}"
    );
    let changed = edited(&REFINERY, 1);
    let error = Migrator::new(&changed).adopt(&mut client, &refinery_schema.name, Tool::Refinery).unwrap_err();
    assert!(
        matches!(error.refusal(), Some(Refusal::ForeignChecksumMismatch { version: 1, tool: Tool::Refinery, .. })),
        "{error}"
    );

    let error = Migrator::new(&SQLX).adopt(&mut client, &refinery_schema.name, Tool::Diesel).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::ForeignHistoryMissing { tool: Tool::Diesel, .. })), "{error}");

    client
        .batch_execute(&format!(
            "UPDATE {}._sqlx_migrations SET success = false WHERE version = {second}",
            sqlx_schema.quoted()
        ))
        .unwrap();
    let error = Migrator::new(&SQLX).adopt(&mut client, &sqlx_schema.name, Tool::Sqlx).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::ForeignFailed { version, .. }) if *version == second), "{error}");

    for schema in [&sqlx_schema, &refinery_schema] {
        assert_eq!(recorded(&mut client, schema), [], "no history table was made");
    }
    assert_eq!(their_rows(&mut client, &refinery_schema, Tool::Refinery).len(), 2);
    assert_eq!(their_rows(&mut client, &sqlx_schema, Tool::Sqlx).len(), before.len());
}

#[test]
fn baseline_a_schema_built_by_hand_then_upgrade() {
    let mut client = connect();
    let schema = TestSchema::new("baseline");
    create(&schema);
    let all = versions(&DIESEL);
    // Built by hand (or by Alembic): the first two migrations' effects, no history.
    for migration in DIESEL.iter().take(2) {
        client.batch_execute(&format!("SET search_path TO {};\n{}", schema.quoted(), migration.up.sql)).unwrap();
    }
    client.batch_execute("RESET search_path").unwrap();
    let migrator = Migrator::new(&DIESEL);
    let preview = migrator.dry_run(&mut client, &schema.name, migrate_runtime::Operation::Baseline { version: all[1] });
    let preview = preview.unwrap();
    assert_eq!(preview.fixes.len(), 2);
    assert_eq!(recorded(&mut client, &schema), [], "the dry run changed nothing");

    let report = migrator.baseline(&mut client, &schema.name, all[1]).unwrap();
    assert_eq!(report.fixes.iter().map(|f| f.version).collect::<Vec<_>>(), &all[..2]);
    assert_eq!((report.version_before, report.version_after), (None, Some(all[1])));
    let by = "postgres (baseline)".to_owned();
    assert_eq!(recorded(&mut client, &schema), [(all[0], by.clone()), (all[1], by.clone())]);
    let history = migrator.history(&mut client, &schema.name).unwrap();
    assert_eq!(history.iter().filter(|e| e.applied.as_ref().is_some_and(|a| a.applied_by == by)).count(), 2);

    let report = migrator.migrate(&mut client, &schema.name).unwrap();
    assert_eq!(report.steps.iter().map(|s| s.version).collect::<Vec<_>>(), [all[2]]);

    // Baseline below what is applied is refused, and the rows stay as they were.
    let before = recorded(&mut client, &schema);
    let error = migrator.baseline(&mut client, &schema.name, all[0]).unwrap_err();
    assert!(
        matches!(error.refusal(), Some(Refusal::BaselineBelowApplied { applied, .. }) if *applied == all[1] || *applied == all[2])
    );
    assert_eq!(migrate_cli::exit::code_of_migration(&error), migrate_cli::ExitCode::Refused);
    assert_eq!(recorded(&mut client, &schema), before);
}

#[test]
fn baseline_refuses_a_missing_schema_and_creates_nothing() {
    let mut client = connect();
    let schema = TestSchema::new("baseline-missing");
    let error = Migrator::new(&SQLX).baseline(&mut client, &schema.name, SQLX.head().unwrap()).unwrap_err();
    assert!(matches!(error.refusal(), Some(Refusal::SchemaMissing { operation: "baseline", .. })), "{error}");
    assert_eq!(migrate_cli::exit::code_of_migration(&error), migrate_cli::ExitCode::Refused);
    let exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema.name])
        .unwrap()
        .get(0);
    assert!(!exists);
}

/// An extension installed once in a shared schema of a database of the test's own; a set whose tables use its
/// type applied to three tenants with the shared schema after each in `search_path`.
#[test]
fn an_extension_type_from_a_shared_schema_in_three_tenants() {
    let database = TestDatabase::labelled("shared_ext");
    let mut admin = database.client();
    admin.batch_execute("CREATE SCHEMA extensions; CREATE EXTENSION citext SCHEMA extensions").unwrap();
    let set = MigrationSet::from_migrations(vec![
        integration_tests::migration(1, "users", "CREATE TABLE users (email citext PRIMARY KEY);", None),
        integration_tests::migration(
            2,
            "lookup",
            "CREATE FUNCTION find_user(e citext) RETURNS citext LANGUAGE sql AS $$ SELECT email FROM users WHERE email = e $$;",
            None,
        ),
    ]);
    let shared = SchemaName::parse_list("extensions").unwrap();
    let migrator = Migrator::new(&set).extra_search_path(shared.clone());
    let tenants = ["tenant-a", "tenant-b", "Tenant C"];
    for tenant in tenants {
        let mut client = database.client();
        let report = migrator.migrate(&mut client, tenant).unwrap();
        assert_eq!(report.steps.len(), 2);
        assert!(migrator.migrate(&mut client, tenant).unwrap().is_unchanged());
    }
    // Without the shared schema the type does not resolve.
    let error = Migrator::new(&set).migrate(&mut database.client(), "tenant-d").unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::MigrationFailed { message, .. } if message.contains("citext")),
        "{error}"
    );

    for tenant in tenants {
        let owner: String = admin
            .query_one(
                "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relname = 'users' AND n.nspname = $1",
                &[&tenant],
            )
            .unwrap()
            .get(0);
        assert_eq!(owner, tenant, "created in the tenant, the first in the path");
        let history: i64 = admin
            .query_one(
                &format!("SELECT count(*) FROM {}.schema_migrations", SchemaName::new(tenant).unwrap().quoted()),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(history, 2);
        let schema = SchemaName::new(tenant).unwrap();
        // The application reads with the same path: the case-insensitive type from the shared schema works.
        let found: String = migrate_runtime::in_schema_with(&mut database.client(), &schema, &shared, |tx| {
            tx.batch_execute("INSERT INTO users VALUES ('Ada@Example.org')")?;
            tx.query_one("SELECT find_user('ada@example.ORG')::text", &[]).map(|r| r.get(0))
        })
        .unwrap();
        assert_eq!(found, "Ada@Example.org");
    }
    let in_shared = tables(&mut admin, "extensions");
    assert!(in_shared.is_empty(), "nothing created in the shared schema: {in_shared:?}");
}
