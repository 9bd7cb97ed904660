//! Structural drift against the real server: tenants migrated by the tool equal the reference the binary builds,
//! every hand change is found in exactly the tenant where it was made, creation order does not matter, and the
//! suggested SQL brings a schema back.

use integration_tests::{connect, migration, set, TestSchema};
use migrate_ops::{
    diff_schemas, generate, read_structures, reference_structure, verify_schemas, Difference, ObjectKind, Outcome,
    Qualifier, StructureError as Error,
};
use migrate_runtime::{MigrationSet, Migrator, SchemaName, Target};

/// The example service's set: eight migrations, the fifth a no-transaction `CREATE INDEX CONCURRENTLY`.
static SET: MigrationSet = migrate_runtime::embed_migrations!("../migrations");

const HISTORY: &str = "schema_migrations";

fn name(schema: &TestSchema) -> SchemaName {
    SchemaName::new(&schema.name).unwrap()
}

/// Migrate, twice (the second run must be a no-op).
fn migrated(label: &str) -> TestSchema {
    let schema = TestSchema::new(label);
    let mut client = connect();
    Migrator::new(&SET).migrate(&mut client, &schema.name).unwrap();
    assert!(Migrator::new(&SET).migrate(&mut client, &schema.name).unwrap().steps.is_empty());
    schema
}

/// Run `sql` with `search_path` set to the schema, in one transaction.
fn run_in(schema: &TestSchema, sql: &str) {
    connect()
        .batch_execute(&format!("BEGIN;\nSET LOCAL search_path TO {};\n{sql};\nCOMMIT;", schema.quoted()))
        .unwrap();
}

/// Scratch schemas of reference builds made by this process that are still there.
fn leftover_scratch_schemas() -> i64 {
    let pattern = format!("migrate\\_reference\\_{}\\_%", std::process::id());
    connect().query_one("SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1", &[&pattern]).unwrap().get(0)
}

/// `(label, kind, name)` of each difference, sorted, for exact comparison.
fn summary(differences: &[Difference]) -> Vec<(&'static str, ObjectKind, String)> {
    let mut summary: Vec<_> = differences.iter().map(|d| (d.label(), d.kind(), d.name().to_string())).collect();
    summary.sort();
    summary
}

#[test]
fn tenants_migrated_by_the_tool_equal_the_reference_and_building_it_leaves_nothing_behind() {
    let head = migrated("eq");
    let hostile = migrated("Eq \"q\"");
    let at_four = TestSchema::new("eq4");
    Migrator::new(&SET).migrate_to(&mut connect(), &at_four.name, Target::Version(4)).unwrap();
    let empty = TestSchema::new("eq-empty");
    connect().batch_execute(&format!("CREATE SCHEMA {}", empty.quoted())).unwrap();
    let absent = TestSchema::new("eq-absent");
    let ahead = TestSchema::new("eq-ahead");
    let longer = MigrationSet::from_migrations(
        SET.iter().cloned().chain([migration(9, "newer", "CREATE TABLE newer (id int)", None)]).collect(),
    );
    Migrator::new(&longer).migrate(&mut connect(), &ahead.name).unwrap();

    let mut client = connect();
    let schemas: Vec<SchemaName> = [&head, &hostile, &at_four, &empty, &absent, &ahead].map(name).to_vec();
    let verifications = verify_schemas(&mut client, &Migrator::new(&SET), &schemas).unwrap();
    let outcomes: Vec<(&str, Option<i64>, &Outcome)> =
        verifications.iter().map(|v| (v.schema.as_str(), v.version, &v.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            (head.name.as_str(), Some(8), &Outcome::Equal),
            (hostile.name.as_str(), Some(8), &Outcome::Equal),
            (at_four.name.as_str(), Some(4), &Outcome::Equal),
            (empty.name.as_str(), None, &Outcome::NotMigrated),
            (absent.name.as_str(), None, &Outcome::NotMigrated),
            (ahead.name.as_str(), Some(9), &Outcome::Ahead { versions: vec![9] }),
        ]
    );

    // The reference at head is what the tool built, object for object.
    let reference = reference_structure(&mut client, &Migrator::new(&SET), 8).unwrap();
    let live = read_structures(&mut client, &[name(&head)], HISTORY).unwrap().remove(&name(&head)).unwrap();
    assert_eq!(reference, live);
    let objects: Vec<String> = reference.objects().map(|(kind, name, _)| format!("{kind} {name}")).collect();
    for expected in [
        "table customers",
        "column orders.status",
        "constraint order_items.order_items_pkey",
        "index orders_customer_id_idx",
        "view order_totals",
        "sequence customers_id_seq",
        "enum type order_status",
        "function touch_updated_at()",
        "trigger customers.customers_touch_updated_at",
    ] {
        assert!(objects.contains(&expected.to_owned()), "{expected} not in {objects:#?}");
    }
    assert!(!objects.iter().any(|o| o.contains(HISTORY) || o.contains("migrate_history_digest")), "{objects:#?}");
    let status = reference.get(ObjectKind::Column, &migrate_ops::ObjectName::of_table("orders", "status")).unwrap();
    assert_eq!(status.definition.get("type"), Some("<schema>.order_status"));
    assert_eq!(status.definition.get("default"), Some("'pending'::<schema>.order_status"));
    assert_eq!(leftover_scratch_schemas(), 0);
}

#[test]
fn each_hand_change_is_found_and_named_in_exactly_the_tenant_where_it_was_made() {
    let changes: [(&str, &str); 7] = [
        ("drop-index", "DROP INDEX customers_cpf_key"),
        ("invalid", "UPDATE pg_catalog.pg_index SET indisvalid = false WHERE indexrelid = 'orders_customer_id_idx'::regclass"),
        ("column", "ALTER TABLE products ADD COLUMN note text"),
        ("default", "ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'paid'"),
        (
            "body",
            "CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
        ),
        ("trigger", "DROP TRIGGER customers_touch_updated_at ON customers"),
        ("policy", "CREATE POLICY own_orders ON orders USING (customer_id > 0)"),
    ];
    let clean = migrated("hand-clean");
    let tenants: Vec<TestSchema> = changes
        .iter()
        .map(|(label, sql)| {
            let tenant = migrated(&format!("hand-{label}"));
            run_in(&tenant, sql);
            tenant
        })
        .collect();

    let mut schemas = vec![name(&clean)];
    schemas.extend(tenants.iter().map(name));
    let verifications = verify_schemas(&mut connect(), &Migrator::new(&SET), &schemas).unwrap();
    assert_eq!(verifications[0].outcome, Outcome::Equal, "the untouched tenant");

    use ObjectKind::*;
    let expected: [Vec<(&str, ObjectKind, &str)>; 7] = [
        vec![("missing", Index, "customers_cpf_key")],
        vec![("changed", Index, "orders_customer_id_idx")],
        vec![("changed", Table, "products"), ("extra", Column, "products.note")],
        vec![("changed", Column, "orders.status")],
        vec![("changed", Function, "touch_updated_at()")],
        vec![("missing", Trigger, "customers.customers_touch_updated_at")],
        vec![("extra", Policy, "orders.own_orders")],
    ];
    for ((verification, expected), (label, _)) in verifications[1..].iter().zip(expected).zip(changes) {
        let Outcome::Differs(differences) = &verification.outcome else {
            panic!("{label}: expected differences, got {:?}", verification.outcome)
        };
        let expected: Vec<_> = expected.into_iter().map(|(l, k, n)| (l, k, n.to_owned())).collect();
        assert_eq!(summary(differences), expected, "{label}");
    }

    // What changed is said, with both definitions.
    let Outcome::Differs(invalid) = &verifications[2].outcome else { unreachable!() };
    assert_eq!(invalid[0].to_string(), "changed index orders_customer_id_idx (invalid)");
    let Outcome::Differs(default) = &verifications[4].outcome else { unreachable!() };
    let Difference::Changed { expected, found, .. } = &default[0] else { panic!("{default:?}") };
    assert_eq!(expected.get("default"), Some("'pending'::<schema>.order_status"));
    assert_eq!(found.get("default"), Some("'paid'::<schema>.order_status"));
    let Outcome::Differs(body) = &verifications[5].outcome else { unreachable!() };
    assert_eq!(body[0].to_string(), "changed function touch_updated_at() (body)");
}

#[test]
fn a_failed_concurrent_index_build_is_found() {
    let tenant = migrated("cic");
    let mut client = connect();
    // A unique index built concurrently over duplicate values fails and stays behind, invalid.
    run_in(&tenant, "INSERT INTO customers (email, full_name) VALUES ('a@x', 'A'), ('b@x', 'A')");
    let error = client
        .batch_execute(&format!(
            "CREATE UNIQUE INDEX CONCURRENTLY customers_name_key ON {}.customers (full_name)",
            tenant.quoted()
        ))
        .unwrap_err();
    assert!(error.to_string().contains("duplicate") || error.as_db_error().is_some(), "{error}");
    let verifications = verify_schemas(&mut client, &Migrator::new(&SET), &[name(&tenant)]).unwrap();
    let Outcome::Differs(differences) = &verifications[0].outcome else { panic!("{verifications:?}") };
    assert_eq!(summary(differences), [("extra", ObjectKind::Index, "customers_name_key".to_owned())]);
    let Difference::Extra { definition, .. } = &differences[0] else { unreachable!() };
    assert!(definition.has("invalid"), "{definition}");
}

#[test]
fn two_schemas_with_the_same_objects_created_in_a_different_order_compare_equal() {
    let a = TestSchema::new("order-a");
    let b = TestSchema::new("order-b");
    connect().batch_execute(&format!("CREATE SCHEMA {}; CREATE SCHEMA {}", a.quoted(), b.quoted())).unwrap();
    run_in(
        &a,
        "CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE TABLE a (id int PRIMARY KEY, m mood NOT NULL DEFAULT 'ok');
         CREATE TABLE b (id int REFERENCES a, note text DEFAULT 'x');
         CREATE INDEX b_note ON b (note);
         CREATE FUNCTION f(x mood) RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE VIEW v AS SELECT id, m FROM a;
         CREATE SEQUENCE s START 10;
         COMMENT ON TABLE a IS 'the a table';
         ALTER TABLE b ENABLE ROW LEVEL SECURITY",
    );
    run_in(
        &b,
        "CREATE SEQUENCE s START 10;
         CREATE TYPE mood AS ENUM ('sad', 'ok');
         CREATE FUNCTION f(x mood) RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE TABLE a (id int PRIMARY KEY, gone text, m mood NOT NULL DEFAULT 'ok');
         ALTER TABLE a DROP COLUMN gone;
         COMMENT ON TABLE a IS 'the a table';
         CREATE VIEW v AS SELECT id, m FROM a;
         CREATE TABLE b (id int, note text DEFAULT 'x');
         ALTER TABLE b ENABLE ROW LEVEL SECURITY;
         CREATE INDEX b_note ON b (note);
         ALTER TABLE b ADD FOREIGN KEY (id) REFERENCES a",
    );
    let mut client = connect();
    assert_eq!(diff_schemas(&mut client, &name(&a), &name(&b), HISTORY).unwrap(), []);
    let structures = read_structures(&mut client, &[name(&a), name(&b)], HISTORY).unwrap();
    assert_eq!(structures[&name(&a)].fingerprint(), structures[&name(&b)].fingerprint());
    assert!(structures[&name(&a)].len() >= 12, "{:#?}", structures[&name(&a)]);
}

#[test]
fn diff_of_two_live_schemas_shows_what_is_only_in_a_only_in_b_and_changed_with_both_definitions() {
    let a = TestSchema::new("diff-a");
    let b = TestSchema::new("diff-b");
    connect().batch_execute(&format!("CREATE SCHEMA {}; CREATE SCHEMA {}", a.quoted(), b.quoted())).unwrap();
    run_in(&a, "CREATE TABLE t (id int, a text DEFAULT 'a'); CREATE INDEX t_a ON t (a)");
    run_in(&b, "CREATE TABLE t (id int, a text DEFAULT 'b'); CREATE TABLE only_b (x int)");
    let mut client = connect();
    let differences = diff_schemas(&mut client, &name(&a), &name(&b), HISTORY).unwrap();
    assert_eq!(
        summary(&differences),
        [
            ("changed", ObjectKind::Column, "t.a".to_owned()),
            ("extra", ObjectKind::Table, "only_b".to_owned()),
            ("extra", ObjectKind::Column, "only_b.x".to_owned()),
            ("missing", ObjectKind::Index, "t_a".to_owned()),
        ]
    );
    for difference in &differences {
        match difference {
            Difference::Changed { expected, found, .. } => {
                assert_eq!(expected.get("default"), Some("'a'::text"));
                assert_eq!(found.get("default"), Some("'b'::text"));
            }
            Difference::Missing { definition, .. } => {
                assert_eq!(definition.get("definition"), Some("CREATE INDEX t_a ON <schema>.t USING btree (a)"));
            }
            Difference::Extra { kind: ObjectKind::Table, definition, .. } => {
                assert_eq!(definition.get("columns"), Some("x"));
            }
            Difference::Extra { definition, .. } => assert_eq!(definition.get("type"), Some("integer")),
        }
    }
    let nowhere = SchemaName::new("t-no-such-schema-for-diff").unwrap();
    let error = diff_schemas(&mut client, &name(&a), &nowhere, HISTORY).unwrap_err();
    assert!(matches!(&error, Error::NoSuchSchema { schema } if schema == nowhere.as_str()), "{error}");
}

#[test]
fn the_generated_script_for_a_missing_index_column_and_default_brings_b_back_to_a() {
    let a = migrated("suggest-a");
    let b = migrated("suggest-b");
    run_in(
        &b,
        "DROP INDEX orders_customer_id_idx;
         ALTER TABLE customers DROP COLUMN updated_at;
         ALTER TABLE orders ALTER COLUMN status DROP DEFAULT;
         ALTER TABLE products ALTER COLUMN name SET DEFAULT 'unnamed'",
    );
    let mut client = connect();
    let differences = diff_schemas(&mut client, &name(&a), &name(&b), HISTORY).unwrap();
    assert!(differences.len() >= 4, "{differences:#?}");
    let structures = read_structures(&mut client, &[name(&a), name(&b)], HISTORY).unwrap();
    let changes = generate(&structures[&name(&b)], &structures[&name(&a)]);
    let sql = changes.script(Qualifier::Schema(&b.quoted()));
    assert!(sql.contains(&format!("ALTER TABLE {}.\"customers\" ADD COLUMN \"updated_at\"", b.quoted())), "{sql}");
    assert!(changes.unexpressed.is_empty(), "{:?}", changes.unexpressed);
    client.batch_execute(&sql).unwrap();
    assert_eq!(diff_schemas(&mut client, &name(&a), &name(&b), HISTORY).unwrap(), [], "after running:\n{sql}");
    let verifications = verify_schemas(&mut client, &Migrator::new(&SET), &[name(&b)]).unwrap();
    assert_eq!(verifications[0].outcome, Outcome::Equal);
}

#[test]
fn a_reference_runs_no_transaction_scripts_without_concurrently_and_refuses_what_cannot_run_in_a_transaction() {
    let concurrent = set(vec![
        migration(1, "t", "CREATE TABLE t (a int, b int)", None),
        migration(
            2,
            "indexes",
            "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY t_a ON t (a);\nDROP INDEX CONCURRENTLY t_a;\n\
             CREATE UNIQUE INDEX CONCURRENTLY t_b ON t (b);\nREINDEX INDEX CONCURRENTLY t_b",
            None,
        ),
        migration(3, "vacuum", "-- migrate:no-transaction\nVACUUM t", None),
        migration(4, "broken", "CREATE TABLE u (a no_such_type)", None),
    ]);
    let mut client = connect();
    let at_two = reference_structure(&mut client, &Migrator::new(&concurrent), 2).unwrap();
    let indexes: Vec<String> =
        at_two.objects().filter(|(k, ..)| *k == ObjectKind::Index).map(|(_, n, _)| n.to_string()).collect();
    assert_eq!(indexes, ["t_b"]);

    // The same set applied by the tool builds the same structure.
    let tenant = TestSchema::new("nontx");
    Migrator::new(&concurrent).migrate_to(&mut client, &tenant.name, Target::Version(2)).unwrap();
    let verifications = verify_schemas(&mut client, &Migrator::new(&concurrent), &[name(&tenant)]).unwrap();
    assert_eq!(verifications[0].outcome, Outcome::Equal);

    let error = reference_structure(&mut client, &Migrator::new(&concurrent), 3).unwrap_err();
    match &error {
        Error::NotTransactional { version, file, statement, .. } => {
            assert_eq!((*version, file.as_str(), statement.as_str()), (3, "migrations/3_vacuum.up.sql", "VACUUM t"));
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("migrations/3_vacuum.up.sql"), "{error}");

    let without_vacuum = set(concurrent.iter().filter(|m| m.version != 3).cloned().collect());
    let error = reference_structure(&mut client, &Migrator::new(&without_vacuum), 4).unwrap_err();
    assert!(
        matches!(&error, Error::ReferenceFailed { version: 4, code: Some(code), .. } if code == "42704"),
        "{error}"
    );
    assert_eq!(leftover_scratch_schemas(), 0);
}
