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
