//! Fast new tenants from a template kept at head: equal to a replayed tenant (structure, seed rows, sequences,
//! history), proven before commit, and every refusal creates nothing.

use integration_tests::{connect, history_rows_of, TestSchema};
use migrate_ops::{verify_schemas, Outcome, Template, TemplateError};
use migrate_runtime::{MigrationSet, Migrator, SchemaName};

/// The example service's set: seed rows in migration 6, a no-transaction index in 5, a trigger in 8.
static EXAMPLE: MigrationSet = migrate_runtime::embed_migrations!("../migrations");

fn name(schema: &TestSchema) -> SchemaName {
    SchemaName::new(&schema.name).unwrap()
}

fn migrated(label: &str) -> TestSchema {
    let schema = TestSchema::new(label);
    Migrator::new(&EXAMPLE).migrate(&mut connect(), &schema.name).unwrap();
    schema
}

fn exists(schema: &TestSchema) -> bool {
    connect().query_one("SELECT count(*) = 1 FROM pg_namespace WHERE nspname = $1", &[&schema.name]).unwrap().get(0)
}

#[test]
fn a_tenant_from_the_template_is_what_a_replay_builds_rows_sequences_and_history_included() {
    let template = migrated("tpl");
    let replayed = migrated("tpl-replayed");
    let tenant = TestSchema::new("tpl-tenant");
    let mut client = connect();
    let migrator = Migrator::new(&EXAMPLE);
    let prepared = Template::prepare(&mut client, &migrator, &name(&template)).unwrap();
    let created = prepared.create(&mut client, &migrator, &name(&tenant)).unwrap();
    assert_eq!((created.version, created.tables), (8, 4));

    // verify: the structure its migrations build.
    let verified = verify_schemas(&mut client, &migrator, &[name(&tenant)]).unwrap();
    assert_eq!(verified[0].outcome, Outcome::Equal);
    // The history: every migration, clean; the engine sees it at head.
    let history = history_rows_of(&mut client, &tenant.name);
    assert_eq!(
        history.iter().map(|(v, _, dirty)| (*v, *dirty)).collect::<Vec<_>>(),
        (1..=8).map(|v| (v, false)).collect::<Vec<_>>()
    );
    assert!(migrator.migrate(&mut client, &tenant.name).unwrap().steps.is_empty());
    // The seed rows and the sequences are the replay's: the next product gets the same id in both.
    let products = |schema: &TestSchema| -> Vec<(i64, String)> {
        connect()
            .query(&format!("SELECT id, sku FROM {}.products ORDER BY id", schema.quoted()), &[])
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    };
    assert_eq!(products(&tenant), products(&replayed));
    let next = |schema: &TestSchema| -> i64 {
        connect()
            .query_one(
                &format!(
                    "INSERT INTO {}.products (sku, name, price_cents) VALUES ('X', 'x', 1) RETURNING id",
                    schema.quoted()
                ),
                &[],
            )
            .unwrap()
            .get(0)
    };
    assert_eq!(next(&tenant), next(&replayed));
    // The trigger is there and works.
    connect()
        .batch_execute(&format!("INSERT INTO {}.customers (email, full_name) VALUES ('a@b', 'A')", tenant.quoted()))
        .unwrap();

    // Creating it again: refused, nothing touched.
    let again = prepared.create(&mut client, &migrator, &name(&tenant));
    assert!(matches!(again, Err(TemplateError::Exists { .. })), "{again:?}");
}

#[test]
fn a_template_that_is_behind_changed_or_missing_is_refused_and_nothing_is_created() {
    let mut client = connect();
    let migrator = Migrator::new(&EXAMPLE);
    let behind = TestSchema::new("tpl-behind");
    migrator.migrate_to(&mut client, &behind.name, migrate_runtime::Target::Version(6)).unwrap();
    let error = Template::prepare(&mut client, &migrator, &name(&behind)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("template schema {:?} has applied 6 migration(s), the newest 6 but the binary's migrations end at 8: upgrade it first", behind.name)
    );
    let absent = TestSchema::new("tpl-absent");
    assert!(matches!(
        Template::prepare(&mut client, &migrator, &name(&absent)),
        Err(TemplateError::NotMigrated { .. })
    ));

    // Changed by hand after it was proven: the recorded fingerprint no longer matches, the replay finds the change.
    let changed = migrated("tpl-changed");
    Template::prepare(&mut client, &migrator, &name(&changed)).unwrap();
    client.batch_execute(&format!("CREATE INDEX stray ON {}.products (name)", changed.quoted())).unwrap();
    let error = Template::prepare(&mut client, &migrator, &name(&changed)).unwrap_err();
    assert!(matches!(error, TemplateError::TemplateDiffers { differences: 1, .. }), "{error}");

    // A template changed between preparing and creating (a column dropped): the copy fails, all is rolled back.
    let template = migrated("tpl-rows");
    let prepared = Template::prepare(&mut client, &migrator, &name(&template)).unwrap();
    client.batch_execute(&format!("ALTER TABLE {}.customers DROP COLUMN address", template.quoted())).unwrap();
    let tenant = TestSchema::new("tpl-not-equal");
    let error = prepared.create(&mut client, &migrator, &name(&tenant)).unwrap_err();
    assert!(
        error.to_string().starts_with(&format!("schema {:?}: could not copy the rows from template", tenant.name)),
        "{error}"
    );
    assert!(error.to_string().ends_with("rolled back, nothing was created"), "{error}");
    assert!(!exists(&tenant), "nothing was created");
}

#[test]
fn every_kind_of_object_and_its_rows_come_through_a_template() {
    // Identity ALWAYS, a generated column, enum and domain values, a composite, a range, a partitioned table with a
    // partition, a materialized view over the rows, a rule and a policy: with seed rows in them.
    let seeds = "INSERT INTO \"Customers\" (email, name, home) VALUES ('a@b', 'A', ROW('s', 'c', '12345678'));\n\
                 INSERT INTO orders (customer_id, status, amount, window_) SELECT id, 'paid', 12.5, '[1,2)' FROM \"Customers\";\n\
                 INSERT INTO events (id, at) VALUES (1, '2026-06-01');\n\
                 REFRESH MATERIALIZED VIEW big_spenders;";
    let every = integration_tests::set(vec![
        integration_tests::migration(1, "every_kind", include_str!("../../fixtures/every_kind/desired.sql"), None),
        integration_tests::migration(2, "seeds", seeds, None),
    ]);
    let migrator = Migrator::new(&every);
    let (template, replayed, tenant) =
        (TestSchema::new("tpl-every"), TestSchema::new("tpl-every-replayed"), TestSchema::new("tpl-every-tenant"));
    let mut client = connect();
    migrator.migrate(&mut client, &template.name).unwrap();
    migrator.migrate(&mut client, &replayed.name).unwrap();
    let prepared = Template::prepare(&mut client, &migrator, &name(&template)).unwrap();
    let created = prepared.create(&mut client, &migrator, &name(&tenant)).unwrap();
    assert_eq!(created.version, 2);
    let verified = verify_schemas(&mut client, &migrator, &[name(&tenant)]).unwrap();
    assert_eq!(verified[0].outcome, Outcome::Equal, "{verified:?}");
    let rows = |schema: &TestSchema| -> Vec<String> {
        connect()
            .query(
                &format!(
                    "SELECT c.id::text || c.email || c.slug || (c.home).zip || o.status::text || o.amount::text || \
                     o.window_::text FROM {s}.\"Customers\" c JOIN {s}.orders o ON o.customer_id = c.id \
                     UNION ALL SELECT count(*)::text FROM {s}.events UNION ALL SELECT count(*)::text FROM {s}.big_spenders",
                    s = schema.quoted()
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    assert_eq!(rows(&tenant), rows(&replayed));
}
