//! Shared helpers for the integration tests (this crate's `tests/integration` and app-example's): the server to talk to, uniquely named schemas that clean up after
//! themselves, small migration sets built in code, a round-trip counting proxy and a PgBouncer of the test's own.

pub mod citus;
pub mod pgbouncer;
pub mod proxy;
pub mod service;

use std::sync::atomic::{AtomicUsize, Ordering};

use migrate_runtime::{Migration, MigrationSet, Script};

/// `DATABASE_URL`, or the local server.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn connect() -> postgres::Client {
    postgres::Client::connect(&database_url(), postgres::NoTls).expect("connect to DATABASE_URL")
}

/// A schema name no other test (or earlier run) uses; the schema is dropped when this is dropped.
pub struct TestSchema {
    pub name: String,
}

impl TestSchema {
    pub fn new(label: &str) -> TestSchema {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("t-{label}-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        assert!(name.len() <= 63, "test schema name too long: {name}");
        TestSchema::named(name)
    }

    /// Use exactly this name (for hostile names); dropped like the others.
    pub fn named(name: impl Into<String>) -> TestSchema {
        let schema = TestSchema { name: name.into() };
        schema.drop_schema();
        schema
    }

    fn drop_schema(&self) {
        let quoted = format!("\"{}\"", self.name.replace('"', "\"\""));
        connect().batch_execute(&format!("DROP SCHEMA IF EXISTS {quoted} CASCADE")).unwrap();
    }

    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.name.replace('"', "\"\""))
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_TEST_SCHEMAS").is_none() {
            self.drop_schema();
        }
    }
}

/// A database created for this test and dropped (with its connections) afterwards.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creating a database is not a default value: no `Default`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> TestDatabase {
        TestDatabase::labelled("test_db")
    }

    /// A database named after `label`, the process and the time.
    pub fn labelled(label: &str) -> TestDatabase {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("{label}_{}_{nanos}", std::process::id());
        connect().batch_execute(&format!("CREATE DATABASE \"{name}\"")).unwrap();
        let base = database_url();
        let (path, query) = base.split_once('?').map_or((base.as_str(), ""), |(p, q)| (p, q));
        let server = &path[..path.rfind('/').expect("DATABASE_URL is a URL with a database path")];
        let url = if query.is_empty() { format!("{server}/{name}") } else { format!("{server}/{name}?{query}") };
        TestDatabase { name, url }
    }

    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, postgres::NoTls).unwrap()
    }

    /// Applied versions of a schema.
    pub fn versions(&self, schema: &str) -> Vec<i64> {
        let sql = format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version");
        self.client().query(&sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
    }

    pub fn has_column(&self, schema: &str, table: &str, column: &str) -> bool {
        self.client()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)",
                &[&schema, &table, &column],
            )
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = connect().batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
    }
}

/// A migration from text; `down` is optional.
pub fn migration(version: i64, name: &str, up: &str, down: Option<&str>) -> Migration {
    Migration {
        version,
        name: name.to_owned().into(),
        up: Script::new(format!("migrations/{version}_{name}.up.sql"), up.to_owned()),
        down: down.map(|d| Script::new(format!("migrations/{version}_{name}.down.sql"), d.to_owned())),
    }
}

pub fn set(migrations: Vec<Migration>) -> MigrationSet {
    MigrationSet::from_migrations(migrations)
}

/// Tables of a schema, sorted.
pub fn tables(client: &mut postgres::Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'v') ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `(version, name, dirty)` of every history row.
pub fn history_rows(client: &mut postgres::Client, schema: &TestSchema) -> Vec<(i64, String, bool)> {
    history_rows_of(client, &schema.name)
}

/// `(version, name, dirty)` of every history row of the schema named `schema` (one in a [`TestDatabase`]).
pub fn history_rows_of(client: &mut postgres::Client, schema: &str) -> Vec<(i64, String, bool)> {
    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    client
        .query(&format!("SELECT version, name, dirty FROM {quoted}.schema_migrations ORDER BY version"), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Indexes of `schema` that PostgreSQL marks not valid (what an interrupted `CREATE INDEX CONCURRENTLY` leaves).
pub fn invalid_indexes(client: &mut postgres::Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT i.indisvalid ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Poll `condition` every 10 ms until it holds (`true`) or `timeout` has passed (`false`).
pub fn wait_for(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A `CREATE INDEX` running now on a table of one of `schemas`, seen from `client` (connected to that database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBuild {
    /// The backend building it.
    pub pid: i32,
    pub schema: String,
    /// The index being built.
    pub index: String,
    /// `pg_stat_progress_create_index.phase`: `building index: scanning table`, `waiting for old snapshots`, ...
    pub phase: String,
}

/// The index builds in progress on tables of `schemas` (`pg_stat_progress_create_index`), in `client`'s database.
pub fn index_builds(client: &mut postgres::Client, schemas: &[String]) -> Vec<IndexBuild> {
    client
        .query(
            "SELECT p.pid, n.nspname::text, coalesce(i.relname::text, ''), p.phase \
             FROM pg_stat_progress_create_index p JOIN pg_class t ON t.oid = p.relid \
             JOIN pg_namespace n ON n.oid = t.relnamespace LEFT JOIN pg_class i ON i.oid = p.index_relid \
             WHERE p.datid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
               AND n.nspname = ANY($1) ORDER BY p.pid",
            &[&schemas],
        )
        .unwrap()
        .iter()
        .map(|r| IndexBuild { pid: r.get(0), schema: r.get(1), index: r.get(2), phase: r.get(3) })
        .collect()
}

/// Let every no-transaction claim in `schemas` run out now (`claim_expires_at`), as the engine's 60-second lease
/// would without word from its runner. A claim whose runner's backend is gone can then be resumed; one whose
/// backend still runs cannot (the engine also looks for a backend with the runner's application_name).
pub fn expire_claims(client: &mut postgres::Client, schemas: &[String]) {
    let list: Vec<String> = schemas.iter().map(|s| format!("'{}'", s.replace('\'', "''"))).collect();
    client
        .batch_execute(&format!(
            "DO $$ DECLARE s text; BEGIN FOREACH s IN ARRAY ARRAY[{}]::text[] LOOP \
               IF to_regclass(format('%I.schema_migrations', s)) IS NOT NULL THEN \
                 EXECUTE format('UPDATE %I.schema_migrations SET claim_expires_at = now() \
                                 WHERE claim_expires_at > now()', s); \
               END IF; END LOOP; END $$",
            list.join(", ")
        ))
        .unwrap();
}

/// Whether backend `pid` is still there (`pg_stat_activity`).
pub fn backend_alive(pid: i32) -> bool {
    connect().query_one("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", &[&pid]).unwrap().get(0)
}

/// `pg_terminate_backend(pid)`, then wait (up to 10 s) until the backend is gone.
pub fn terminate_backend(pid: i32) {
    let _: bool = connect().query_one("SELECT pg_terminate_backend($1)", &[&pid]).unwrap().get(0);
    assert!(
        wait_for(std::time::Duration::from_secs(10), || !backend_alive(pid)),
        "backend {pid} outlived pg_terminate_backend"
    );
}

/// The advisory-lock key the engine takes for `schema`'s history table `table`.
pub fn migration_lock_key(schema: &str, table: &str) -> i64 {
    migrate_runtime::migration_lock_key(&migrate_runtime::SchemaName::new(schema).unwrap(), table).unwrap()
}

/// Another process's hold on an advisory lock: a direct connection to `url` named `application_name`, in an open
/// transaction that took `pg_advisory_xact_lock(key)`. Rolled back, releasing the lock, by [`XactLockHolder::release`]
/// or when dropped.
pub struct XactLockHolder {
    client: postgres::Client,
    /// The holder's backend.
    pub pid: i32,
}

impl XactLockHolder {
    pub fn take(url: &str, application_name: &str, key: i64) -> XactLockHolder {
        let mut config: postgres::Config = url.parse().unwrap();
        config.application_name(application_name);
        let mut client = config.connect(postgres::NoTls).unwrap();
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        client.batch_execute("BEGIN").unwrap();
        client.query_typed("SELECT pg_advisory_xact_lock($1)", &[(&key, postgres::types::Type::INT8)]).unwrap();
        XactLockHolder { client, pid }
    }

    /// Roll the transaction back: the lock is free once this returns.
    pub fn release(self) {}
}

impl Drop for XactLockHolder {
    fn drop(&mut self) {
        let _ = self.client.batch_execute("ROLLBACK");
    }
}

/// A description of everything in a schema (columns, indexes, constraints, triggers, views, types, functions,
/// sequences and row counts), with the schema's own name replaced, so two schemas built alike compare equal.
pub fn catalog_fingerprint(client: &mut postgres::Client, schema: &str) -> String {
    let rows = client
        .query(
            "WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1)
             SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
               FROM information_schema.columns WHERE table_schema = $1
             UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = $1
             UNION ALL SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(c.oid) FROM pg_constraint c, ns WHERE c.connamespace = ns.oid
             UNION ALL SELECT 'trigger ' || t.tgname FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid, ns WHERE r.relnamespace = ns.oid AND NOT t.tgisinternal
             UNION ALL SELECT 'view ' || viewname || ' ' || definition FROM pg_views WHERE schemaname = $1
             UNION ALL SELECT 'type ' || typname || ' ' || typtype::text FROM pg_type t, ns WHERE t.typnamespace = ns.oid AND t.typtype IN ('e', 'c', 'd')
             UNION ALL SELECT 'function ' || proname FROM pg_proc p, ns WHERE p.pronamespace = ns.oid
             UNION ALL SELECT 'relation ' || relname || ' ' || relkind::text FROM pg_class r, ns WHERE r.relnamespace = ns.oid
             ORDER BY 1",
            &[&schema],
        )
        .unwrap();
    let quoted = format!("\"{}\"", schema.replace('"', "\"\""));
    let mut text: String = rows.iter().map(|r| format!("{}\n", r.get::<_, String>(0))).collect();
    text = text.replace(&quoted, "<schema>").replace(schema, "<schema>");
    text
}

/// A file of schema names, one a line, removed when dropped.
pub struct SchemasFile(pub std::path::PathBuf);

impl SchemasFile {
    pub fn new(names: &[String]) -> SchemasFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "schemas-{}-{}.txt",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, names.join("\n")).unwrap();
        SchemasFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for SchemasFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An error and its causes, `: `-separated.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// `count` tenant schemas named after one unique prefix, and a schemas file listing them; all dropped at the end.
pub struct Tenants {
    _prefix: TestSchema,
    pub schemas: Vec<TestSchema>,
    pub names: Vec<String>,
    pub file: SchemasFile,
}

impl Tenants {
    pub fn new(label: &str, count: usize) -> Tenants {
        let prefix = TestSchema::new(label);
        let schemas: Vec<TestSchema> = (0..count).map(|i| TestSchema::named(format!("{}-{i}", prefix.name))).collect();
        let names: Vec<String> = schemas.iter().map(|s| s.name.clone()).collect();
        let file = SchemasFile::new(&names);
        Tenants { _prefix: prefix, schemas, names, file }
    }
}

/// Exit status 0, or a failure showing what the process printed.
pub fn succeeded(output: &std::process::Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Steps applied, summed over the schemas of a `--format json` report.
pub fn steps_applied(output: &std::process::Output) -> usize {
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["schemas"].as_array().unwrap().iter().map(|s| s["steps"].as_array().map_or(0, Vec::len)).sum()
}

/// Start every command at once (each printing `--format json`), require each to succeed, and return the steps they
/// applied in all: in a race, each migration must be applied exactly once per schema across the processes.
pub fn race(commands: impl IntoIterator<Item = std::process::Command>) -> usize {
    use std::process::Stdio;
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut command| command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            succeeded(&output);
            steps_applied(&output)
        })
        .sum()
}
