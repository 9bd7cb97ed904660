//! Folders laid out by other tools (diesel, sqlx, refinery), read by their own rules: what `embed_migrations!`
//! embeds at compile time equals what `MigrationSet::from_folder` reads at run time, and a diesel set applies to
//! tenant schemas and reverts.
//!
//! The fixtures live in `tests/fixtures/{diesel,sqlx,refinery}/`. The diesel fixture's versions sort the same as
//! text and as numbers (the planner compares versions numerically for now); diesel's text order where the two
//! differ is covered by migrate-core's unit tests.

use std::path::Path;

use integration_tests::{connect, history_rows, tables, TestSchema};
use migrate_runtime::{embed_migrations, MigrationSet, Migrator, Target};

static DIESEL: MigrationSet = embed_migrations!("fixtures/diesel");
static SQLX: MigrationSet = embed_migrations!("fixtures/sqlx");
static REFINERY: MigrationSet = embed_migrations!("fixtures/refinery");

fn at_run_time(folder: &str) -> MigrationSet {
    MigrationSet::from_folder(Path::new(env!("CARGO_MANIFEST_DIR")), folder).unwrap()
}

/// Version, name, up file, down file, and the no-transaction flags of up and down.
type Summary = (i64, String, String, Option<String>, bool, Option<bool>);

/// Each migration's [`Summary`], in set order.
fn summary(set: &MigrationSet) -> Vec<Summary> {
    set.iter()
        .map(|m| {
            let down = m.down.as_ref();
            (
                m.version,
                m.name.to_string(),
                m.up.file.to_string(),
                down.map(|d| d.file.to_string()),
                m.up.no_transaction,
                down.map(|d| d.no_transaction),
            )
        })
        .collect()
}

/// Same versions, order, names, files, SQL, checksums and flags at compile time and at run time.
fn assert_same_at_compile_and_run_time(embedded: &MigrationSet, folder: &str) {
    let read = at_run_time(folder);
    assert_eq!(summary(embedded), summary(&read));
    let checksums = |set: &MigrationSet| -> Vec<_> {
        set.iter().map(|m| (m.up.checksum, m.down.as_ref().map(|d| d.checksum))).collect()
    };
    assert_eq!(checksums(embedded), checksums(&read));
    assert_eq!(*embedded, read, "every field, SQL included");
}

#[test]
fn diesel_folder_embeds_as_it_is_read_at_run_time() {
    assert_same_at_compile_and_run_time(&DIESEL, "fixtures/diesel");
    let d = |folder: &str, file: &str| format!("fixtures/diesel/{folder}/{file}");
    assert_eq!(
        summary(&DIESEL),
        [
            (
                0,
                "diesel_initial_setup".into(),
                d("00000000000000_diesel_initial_setup", "up.sql"),
                Some(d("00000000000000_diesel_initial_setup", "down.sql")),
                false,
                Some(false),
            ),
            (
                20190226002946,
                "create_users".into(),
                d("2019-02-26-002946_create_users", "up.sql"),
                Some(d("2019-02-26-002946_create_users", "down.sql")),
                false,
                Some(false),
            ),
            // metadata.toml: run_in_transaction = false, for both scripts.
            (
                20190301101500,
                "users_email_index".into(),
                d("2019-03-01-101500_users_email_index", "up.sql"),
                Some(d("2019-03-01-101500_users_email_index", "down.sql")),
                true,
                Some(true),
            ),
            (
                20190415120000,
                "create_posts".into(),
                d("20190415120000_create_posts", "up.sql"),
                Some(d("20190415120000_create_posts", "down.sql")),
                false,
                Some(false),
            ),
            (
                20190501000000,
                "seed_users".into(),
                d("2019-05-01-000000_seed_users", "up.sql"),
                Some(d("2019-05-01-000000_seed_users", "down.sql")),
                false,
                Some(false),
            ),
        ]
    );
    // The empty down.sql is kept, as diesel keeps it: reverting it runs nothing.
    assert_eq!(DIESEL.get(20190501000000).unwrap().down.as_ref().unwrap().sql, "");
    assert_eq!(DIESEL.position(0), Some(0));
    assert_eq!(DIESEL.position(20190501000000), Some(4));
    assert_eq!(DIESEL.head(), Some(20190501000000));
}

#[test]
fn sqlx_folder_embeds_as_it_is_read_at_run_time() {
    assert_same_at_compile_and_run_time(&SQLX, "fixtures/sqlx");
    let versions: Vec<i64> = SQLX.iter().map(|m| m.version).collect();
    assert_eq!(versions, [20240101093000, 20240102110000, 20240215080000]);
    let names: Vec<&str> = SQLX.iter().map(|m| m.name.as_ref()).collect();
    assert_eq!(names, ["create_accounts", "accounts_email_index", "create_sessions"]);
    // sqlx's `-- no-transaction` first line.
    let no_transaction: Vec<bool> = SQLX.iter().map(|m| m.up.no_transaction).collect();
    assert_eq!(no_transaction, [false, true, false]);
    assert!(SQLX.iter().all(|m| m.down.is_none()), "simple migrations are up-only");
    assert_eq!(SQLX.as_slice()[0].up.file, "fixtures/sqlx/20240101093000_create_accounts.sql");
}

#[test]
fn refinery_folder_embeds_as_it_is_read_at_run_time() {
    assert_same_at_compile_and_run_time(&REFINERY, "fixtures/refinery");
    let versions: Vec<i64> = REFINERY.iter().map(|m| m.version).collect();
    assert_eq!(versions, [1, 2, 10], "numeric order, although V10 sorts before V2 as text");
    assert_eq!(REFINERY.get(10).unwrap().name, "tasks_done");
    assert_eq!(REFINERY.get(10).unwrap().up.file, "fixtures/refinery/V10__tasks_done.sql");
    assert!(REFINERY.iter().all(|m| !m.up.no_transaction && m.down.is_none()));
}

#[test]
fn diesel_set_applies_to_tenant_schemas_and_reverts_to_base() {
    let tenants: Vec<TestSchema> = (0..3).map(|_| TestSchema::new("diesel")).collect();
    let mut client = connect();
    let migrator = Migrator::new(&DIESEL);
    let versions: Vec<i64> = DIESEL.iter().map(|m| m.version).collect();
    for tenant in &tenants {
        let report = migrator.migrate(&mut client, &tenant.name).unwrap();
        assert_eq!(report.steps.len(), 5);
        assert_eq!(report.version_after, Some(20190501000000));
        assert_eq!(tables(&mut client, &tenant.name), ["posts", "schema_migrations", "users"]);
        let rows = history_rows(&mut client, tenant);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), versions);
        assert_eq!(rows[0].1, "diesel_initial_setup");
        assert!(rows.iter().all(|r| !r.2), "no row is dirty");
        let seeded: i64 =
            client.query_one(&format!("SELECT count(*) FROM {}.users", tenant.quoted()), &[]).unwrap().get(0);
        assert_eq!(seeded, 2);
        // The no-transaction migration built its index in the tenant's schema.
        let index: Option<String> = client
            .query_one("SELECT to_regclass($1)::text", &[&format!("{}.users_email_idx", tenant.quoted())])
            .unwrap()
            .get(0);
        assert!(index.is_some());

        let again = migrator.migrate(&mut client, &tenant.name).unwrap();
        assert!(again.steps.is_empty(), "a second run applies nothing");
    }

    for tenant in &tenants {
        let report = migrator.downgrade(&mut client, &tenant.name, Target::Base).unwrap();
        assert_eq!(report.steps.len(), 5, "the empty down.sql is a step that runs nothing");
        assert_eq!(report.version_after, None);
        assert_eq!(tables(&mut client, &tenant.name), ["schema_migrations"]);
        assert!(history_rows(&mut client, tenant).is_empty());
        let functions: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1",
                &[&tenant.name],
            )
            .unwrap()
            .get(0);
        assert_eq!(functions, 1, "diesel's setup functions are gone; the history table's digest function stays");
    }
}
