//! Least privilege: a role that owns only its schema can do everything but `reset`, which needs `CREATE` on the
//! database; the README lists the grants.

use integration_tests::{connect, history_rows, tables, TestSchema};
use migrate_ops::Inspect;
use migrate_runtime::{embed_migrations, ErrorKind, MigrationSet, Migrator, Resolution, Target};

static APP_MIGRATIONS: MigrationSet = embed_migrations!("../migrations");

/// A login role, dropped (with what it owns) at the end.
struct TestRole {
    name: String,
}

impl TestRole {
    fn new(label: &str) -> TestRole {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("{label}_{}_{nanos}", std::process::id());
        connect().batch_execute(&format!("CREATE ROLE \"{name}\" LOGIN PASSWORD 'tenant-password'")).unwrap();
        TestRole { name }
    }

    fn client(&self) -> postgres::Client {
        let mut config: postgres::Config = integration_tests::database_url().parse().unwrap();
        config.user(&self.name).password("tenant-password");
        config.connect(postgres::NoTls).unwrap()
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let _ = connect().batch_execute(&format!("DROP OWNED BY \"{0}\" CASCADE; DROP ROLE \"{0}\"", self.name));
    }
}

#[test]
fn a_role_owning_only_its_schema_migrates_it_but_cannot_reset_it() {
    let role = TestRole::new("tenant_owner");
    let schema = TestSchema::new("owned");
    let other = TestSchema::new("not-owned");
    let mut admin = connect();
    admin.batch_execute(&format!("CREATE SCHEMA {} AUTHORIZATION \"{}\"", schema.quoted(), role.name)).unwrap();
    admin.batch_execute(&format!("CREATE SCHEMA {}", other.quoted())).unwrap();
    let can_create: bool = admin
        .query_one("SELECT has_database_privilege($1, current_database(), 'CREATE')", &[&role.name])
        .unwrap()
        .get(0);
    assert!(!can_create, "the role has no CREATE on the database");

    let mut client = role.client();
    let migrator = Migrator::new(&APP_MIGRATIONS);
    assert_eq!(
        migrator.migrate(&mut client, &schema.name).unwrap().steps.len(),
        8,
        "upgrade, including CREATE INDEX CONCURRENTLY"
    );
    assert!(migrator.migrate(&mut client, &schema.name).unwrap().steps.is_empty());
    assert_eq!(migrator.status(&mut client, &schema.name).unwrap().pending, 0);
    assert_eq!(migrator.history(&mut client, &schema.name).unwrap().len(), 8);
    migrator.downgrade(&mut client, &schema.name, Target::Relative(-2)).unwrap();
    migrator.migrate(&mut client, &schema.name).unwrap();
    assert!(migrator.repair(&mut client, &schema.name).unwrap().fixes.is_empty());
    admin
        .batch_execute(&format!("UPDATE {}.schema_migrations SET dirty = true WHERE version = 5", schema.quoted()))
        .unwrap();
    migrator.resolve(&mut client, &schema.name, 5, Resolution::Applied).unwrap();
    assert_eq!(history_rows(&mut admin, &schema).len(), 8);

    // reset needs CREATE on the database: refused, and the schema is left as it was (one transaction).
    let error = migrator.reset(&mut client, &schema.name).unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::Database { action, .. } if action.contains("drop and recreate")),
        "{error}"
    );
    assert_eq!(tables(&mut admin, &schema.name).len(), 6);
    assert_eq!(history_rows(&mut admin, &schema).len(), 8);

    // A schema the role does not own is refused with the server's reason.
    let error = migrator.migrate(&mut client, &other.name).unwrap_err();
    let message = integration_tests::chain(&error);
    assert!(message.contains("permission denied"), "{message}");
    assert!(tables(&mut admin, &other.name).is_empty());
}
