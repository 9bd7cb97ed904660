//! `revision --autogenerate` against the real server: every kind of object generated from nothing and proven,
//! hand changes of every kind in a dev schema brought to a copy of prod, renames, and refusals that write nothing.

use integration_tests::{connect, set, TestSchema};
use migrate_ops::{autogenerate, Desired, GenerateError, Qualifier, Trial};
use migrate_runtime::{MigrationSet, Migrator, SchemaName};

/// A file of the desired state with an object of every kind the structure compares.
const EVERY_KIND: &str = include_str!("../../fixtures/every_kind/desired.sql");

fn file(sql: &str) -> Desired<'_> {
    Desired::File { file: "desired.sql".to_owned(), sql }
}

#[test]
fn every_kind_of_object_is_generated_from_nothing_and_proven() {
    let empty = MigrationSet::from_migrations(Vec::new());
    let generated = match autogenerate(&mut connect(), &Migrator::new(&empty), &file(EVERY_KIND), &[]) {
        Ok(generated) => generated,
        Err(GenerateError::NotProven { unproven, .. }) => panic!("{unproven:#?}"),
        Err(error) => panic!("{error}"),
    };
    let up = generated.up.script(Qualifier::SearchPath);
    println!("{up}\n-- down\n{}", generated.down.script(Qualifier::SearchPath));
    assert!(up.contains("CREATE TYPE \"order_status\" AS ENUM ('pending', 'paid', 'shipped');"), "{up}");
}

/// The example service's set (eight migrations, the fifth a no-transaction `CREATE INDEX CONCURRENTLY`).
static EXAMPLE: MigrationSet = migrate_runtime::embed_migrations!("../migrations");

/// Hand changes of every kind a person prototypes in dev: a column's type, default and nullability, a column added
/// and one dropped, an enum value added, a new table with a foreign key and an index, a view changed (it reads a
/// retyped column), a function replaced, a trigger disabled, a policy and row-level security, a domain, a
/// sequence, comments.
const HAND_CHANGES: &str = "
ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'shipped';
ALTER TABLE customers ALTER COLUMN full_name TYPE varchar(200), ALTER COLUMN address SET NOT NULL,
    ALTER COLUMN created_at SET DEFAULT clock_timestamp(), ADD COLUMN nickname text;
DROP VIEW order_totals;
ALTER TABLE order_items DROP COLUMN unit_price_cents, ADD COLUMN discount_cents integer;
ALTER TABLE products ADD COLUMN weight_grams integer;
ALTER TABLE products ADD CONSTRAINT weight_positive CHECK (weight_grams > 0) NOT VALID;
CREATE DOMAIN sku_code AS text CHECK (VALUE ~ '^[A-Z]{3}-[0-9]{3}$');
CREATE SEQUENCE ticket_numbers START 500;
CREATE TABLE reviews (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id bigint NOT NULL REFERENCES products (id),
    sku sku_code,
    stars smallint NOT NULL DEFAULT 5,
    body text,
    ticket bigint DEFAULT nextval('ticket_numbers')
);
CREATE INDEX reviews_product_idx ON reviews (product_id, stars DESC);
CREATE INDEX products_name_idx ON products (lower(name));
COMMENT ON TABLE reviews IS 'what buyers say';
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END;
$$;
ALTER TABLE customers DISABLE TRIGGER customers_touch_updated_at;
ALTER TABLE reviews ENABLE ROW LEVEL SECURITY;
CREATE POLICY five_stars ON reviews FOR SELECT USING (stars = 5);
CREATE VIEW order_totals AS
SELECT o.id AS order_id, o.customer_id, o.status, coalesce(sum(i.quantity), 0) AS items, count(i.*) AS lines
FROM orders o LEFT JOIN order_items i ON i.order_id = o.id GROUP BY o.id;
CREATE VIEW customer_names AS SELECT id, full_name FROM customers;
";

/// Each difference between two live schemas, as a line.
fn differences(a: &TestSchema, b: &TestSchema) -> Vec<String> {
    differences_on(&mut connect(), a, b)
}

fn differences_on(client: &mut postgres::Client, a: &TestSchema, b: &TestSchema) -> Vec<String> {
    let (a, b) = (SchemaName::new(&a.name).unwrap(), SchemaName::new(&b.name).unwrap());
    migrate_ops::diff_schemas(client, &a, &b, "schema_migrations").unwrap().iter().map(|d| d.to_string()).collect()
}

#[test]
fn hand_changes_of_every_kind_in_dev_become_a_revision_that_brings_a_copy_of_prod_to_exactly_dev() {
    let (dev, prod) = (TestSchema::new("gen-dev"), TestSchema::new("gen-prod"));
    let mut client = connect();
    for schema in [&dev, &prod] {
        Migrator::new(&EXAMPLE).migrate(&mut client, &schema.name).unwrap();
    }
    client.batch_execute(&format!("SET search_path TO {};\n{HAND_CHANGES}\nRESET search_path;", dev.quoted())).unwrap();
    assert!(!differences(&dev, &prod).is_empty());

    let desired = Desired::Schema(SchemaName::new(&dev.name).unwrap());
    let generated = autogenerate(&mut client, &Migrator::new(&EXAMPLE), &desired, &[])
        .unwrap_or_else(|error| panic!("{error}: {error:?}"));
    assert_eq!(generated.head, 8);
    let (up, down) = (generated.up.script(Qualifier::SearchPath), generated.down.script(Qualifier::SearchPath));
    for expected in [
        "ALTER TYPE \"order_status\" ADD VALUE 'refunded' AFTER 'shipped';",
        "ALTER TABLE \"customers\" ALTER COLUMN \"full_name\" TYPE character varying(200) USING \"full_name\"::character varying(200);",
        "ALTER TABLE \"order_items\" DROP COLUMN \"unit_price_cents\";",
        "ALTER TABLE \"customers\" DISABLE TRIGGER \"customers_touch_updated_at\";",
        "CREATE POLICY \"five_stars\" ON \"reviews\" FOR SELECT TO PUBLIC USING ((stars = 5));",
    ] {
        assert!(up.contains(expected), "{expected}\nnot in\n{up}");
    }
    // What locks or loses data is flagged, with the lint rule that will refuse it.
    for flag in [
        "column-type-change",
        "set-not-null",
        "index-without-concurrently",
        "If it was renamed, generate again with --rename order_items.unit_price_cents=discount_cents",
    ] {
        assert!(up.contains(flag), "{flag} not flagged in\n{up}");
    }
    // The enum value cannot be removed in place: the down script recreates the type.
    assert!(down.contains("ALTER TYPE \"order_status\" RENAME TO \"order_status__replaced\";"), "{down}");

    // Applied to prod as the next migration, by the engine, it makes prod exactly dev.
    let mut migrations: Vec<_> = EXAMPLE.iter().cloned().collect();
    migrations.push(integration_tests::migration(9, "generated", &up, Some(&down)));
    let extended = set(migrations);
    Migrator::new(&extended).migrate(&mut client, &prod.name).unwrap();
    assert_eq!(differences(&dev, &prod), Vec::<String>::new());
    // And its down brings prod back to what the eight migrations build.
    Migrator::new(&extended).downgrade(&mut client, &prod.name, migrate_runtime::Target::Version(8)).unwrap();
    let fresh = TestSchema::new("gen-fresh");
    Migrator::new(&EXAMPLE).migrate(&mut client, &fresh.name).unwrap();
    assert_eq!(differences(&fresh, &prod), Vec::<String>::new());
}

/// A dev schema at the example's head with `changes` made by hand.
fn dev_with(label: &str, changes: &str) -> (TestSchema, Desired<'static>) {
    let dev = TestSchema::new(label);
    let mut client = connect();
    Migrator::new(&EXAMPLE).migrate(&mut client, &dev.name).unwrap();
    client.batch_execute(&format!("SET search_path TO {};\n{changes}\nRESET search_path;", dev.quoted())).unwrap();
    let desired = Desired::Schema(SchemaName::new(&dev.name).unwrap());
    (dev, desired)
}

#[test]
fn a_rename_said_with_rename_keeps_the_data_and_is_proven_both_ways() {
    let (_dev, desired) = dev_with(
        "gen-rename",
        "ALTER TABLE products RENAME TO catalog_items; ALTER TABLE catalog_items RENAME COLUMN name TO title;",
    );
    let migrator = Migrator::new(&EXAMPLE);
    // Unsaid, it is a drop and a create, flagged as a likely rename.
    let guessed = autogenerate(&mut connect(), &migrator, &desired, &[]);
    let up = match guessed {
        Ok(generated) => generated.up.script(Qualifier::SearchPath),
        Err(GenerateError::NotProven { unproven, .. }) => panic!("{unproven:?}"),
        Err(error) => panic!("{error}"),
    };
    assert!(up.contains("DROP TABLE \"products\";"), "{up}");
    let renames = ["products=catalog_items".parse().unwrap(), "products.name=title".parse().unwrap()];
    let generated = autogenerate(&mut connect(), &migrator, &desired, &renames).unwrap();
    let (up, down) = (generated.up.script(Qualifier::SearchPath), generated.down.script(Qualifier::SearchPath));
    assert!(up.contains("ALTER TABLE \"products\" RENAME COLUMN \"name\" TO \"title\";\n"), "{up}");
    assert!(up.contains("ALTER TABLE \"products\" RENAME TO \"catalog_items\";\n"), "{up}");
    assert!(!up.contains("DROP TABLE"), "{up}");
    assert!(up.contains("`rename-table`") && up.contains("`rename-column`"), "{up}");
    assert!(down.ends_with("ALTER TABLE \"products\" RENAME COLUMN \"title\" TO \"name\";\n"), "{down}");

    let wrong = ["products.nome=title".parse().unwrap()];
    let error = autogenerate(&mut connect(), &migrator, &desired, &wrong).unwrap_err();
    assert_eq!(
        error.to_string(),
        "--rename products.nome=title: the migrations build no column \"nome\" in table \"products\"; nothing was written"
    );
    assert_eq!(
        "products".parse::<migrate_ops::Rename>().unwrap_err().to_string(),
        "--rename \"products\": expected OLD=NEW for a table or TABLE.OLD=NEW for a column"
    );
}

#[test]
fn what_cannot_be_proven_is_listed_and_nothing_is_returned() {
    let migrator = Migrator::new(&EXAMPLE);
    // A column dropped from the middle of a table comes back at its end: the down script cannot restore the order.
    let (_dev, desired) = dev_with("gen-middle", "ALTER TABLE customers DROP COLUMN cpf;");
    match autogenerate(&mut connect(), &migrator, &desired, &[]).unwrap_err() {
        GenerateError::NotProven { unproven, .. } => {
            assert_eq!(unproven.up, Trial::Equal);
            assert!(matches!(&unproven.down, Trial::Differs(d) if d.len() == 1), "{:?}", unproven.down);
            assert_eq!(unproven.unexpressed.len(), 1);
            assert!(unproven.unexpressed[0].to_string().starts_with("table customers: its columns are ordered"));
        }
        other => panic!("{other}"),
    }
    // The seed rows make the down script's NOT NULL column fail: the proof runs on the reference's rows.
    let (_dev, desired) = dev_with("gen-rows", "ALTER TABLE products DROP COLUMN price_cents;");
    let error = autogenerate(&mut connect(), &migrator, &desired, &[]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the down script failed: column \"price_cents\" of relation \"products\" contains null values"),
        "{error}"
    );
}

#[test]
fn refusals_name_the_reason_and_write_nothing() {
    let migrator = Migrator::new(&EXAMPLE);
    let (same, desired) = dev_with("gen-same", "");
    let error = autogenerate(&mut connect(), &migrator, &desired, &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "schema {:?} has the structure the migrations build at version 8: nothing to generate; nothing was written",
            same.name
        )
    );
    let behind = TestSchema::new("gen-behind");
    Migrator::new(&EXAMPLE).migrate_to(&mut connect(), &behind.name, migrate_runtime::Target::Version(6)).unwrap();
    let error = autogenerate(&mut connect(), &migrator, &Desired::Schema(SchemaName::new(&behind.name).unwrap()), &[]);
    assert_eq!(
        error.unwrap_err().to_string(),
        format!(
            "schema {:?} has applied 6 migration(s), the newest 6 but the binary's migrations end at 8: upgrade it first \
             (the revision would otherwise undo what it lacks); nothing was written",
            behind.name
        )
    );
    let absent = Desired::Schema(SchemaName::new("gen-no-such-schema").unwrap());
    assert!(matches!(
        autogenerate(&mut connect(), &migrator, &absent, &[]),
        Err(GenerateError::Structure(migrate_ops::StructureError::NoSuchSchema { .. }))
    ));
    let broken = file("CREATE TABLE t (id int);\nCREATE TABLE u (id nosuchtype);");
    let error = autogenerate(&mut connect(), &migrator, &broken, &[]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the desired state in desired.sql failed in a scratch schema: type \"nosuchtype\" does not exist; nothing was written"
    );
    // Nothing of any of this stayed behind: every scratch schema was rolled back.
    let pattern = format!("migrate\\_reference\\_{}\\_%", std::process::id());
    let left: i64 =
        connect().query_one("SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1", &[&pattern]).unwrap().get(0);
    assert_eq!(left, 0);
}

/// What `folder`'s migrations build, generated from nothing as one migration: proven, then applied by the engine
/// to a fresh schema it makes equal to the replayed history, and its down brings that schema back to empty.
fn round_trip(client: &mut postgres::Client, folder: &str, shared: &[SchemaName]) {
    let crate_root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let history = set(migrate_core::resolve_folder(crate_root, folder).unwrap());
    let replayed = TestSchema::new("gen-replayed");
    let migrator = |set| Migrator::new(set).extra_search_path(shared.to_vec());
    migrator(&history).migrate(client, &replayed.name).unwrap();
    // The replayed schema as a person's prototype: its history table is no part of what it is.
    client.batch_execute(&format!("DROP TABLE {}.schema_migrations", replayed.quoted())).unwrap();

    let empty = MigrationSet::from_migrations(Vec::new());
    let desired = Desired::Schema(SchemaName::new(&replayed.name).unwrap());
    let generated = autogenerate(client, &migrator(&empty), &desired, &[])
        .unwrap_or_else(|error| panic!("{folder}: {error}: {error:?}"));
    let (up, down) = (generated.up.script(Qualifier::SearchPath), generated.down.script(Qualifier::SearchPath));
    let one = set(vec![integration_tests::migration(1, "everything", &up, Some(&down))]);
    let fresh = TestSchema::new("gen-fresh");
    migrator(&one).migrate(client, &fresh.name).unwrap();
    assert_eq!(differences_on(client, &replayed, &fresh), Vec::<String>::new(), "{folder}:\n{up}");
    migrator(&one).downgrade(client, &fresh.name, migrate_runtime::Target::Base).unwrap();
    let left =
        migrate_ops::read_structures(client, &[SchemaName::new(&fresh.name).unwrap()], "schema_migrations").unwrap();
    assert!(left.values().all(|structure| structure.is_empty()), "{folder}: {left:?}");
}

#[test]
fn every_fixture_folder_round_trips_through_one_generated_migration() {
    let mut client = connect();
    for folder in [
        "../migrations",
        "../bench/migrations",
        "fixtures/sqlx",
        "fixtures/refinery",
        "fixtures/diesel",
        "fixtures/adopt_sqlx",
        "fixtures/adopt_refinery",
        "fixtures/adopt_diesel",
        "fixtures/crash_cic",
    ] {
        round_trip(&mut client, folder, &[]);
    }
    // The one that needs pg_trgm in a shared schema: a database of its own.
    let database = integration_tests::TestDatabase::new();
    let mut client = database.client();
    client.batch_execute("CREATE SCHEMA extensions; CREATE EXTENSION pg_trgm SCHEMA extensions").unwrap();
    round_trip(&mut client, "fixtures/shared_trgm", &SchemaName::parse_list("extensions").unwrap());
}
