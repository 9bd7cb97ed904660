use super::*;

fn table(name: &str, columns: &str) -> (ObjectKind, ObjectName, Definition) {
    (ObjectKind::Table, ObjectName::new(name), Definition::new([("columns", columns)]))
}

fn column(table: &str, name: &str, attributes: &[(&str, &str)]) -> (ObjectKind, ObjectName, Definition) {
    (ObjectKind::Column, ObjectName::of_table(table, name), Definition::new(attributes.iter().copied()))
}

#[test]
fn a_new_table_is_created_with_its_columns_in_order_every_identifier_quoted() {
    let desired = Structure::new([
        table("My Table", "id, \"Name\""),
        column("My Table", "id", &[("type", "integer"), ("not null", "")]),
        column("My Table", "Name", &[("type", "text"), ("default", "'x'::text"), ("comment", "it's")]),
    ]);
    let changes = generate(&Structure::new([]), &desired);
    assert_eq!(
        changes.script(Qualifier::Schema("\"tenant-1\"")),
        "CREATE TABLE \"tenant-1\".\"My Table\" (\n    \"id\" integer NOT NULL,\n    \"Name\" text DEFAULT 'x'::text\n);\n\
         \nCOMMENT ON COLUMN \"tenant-1\".\"My Table\".\"Name\" IS 'it''s';\n"
    );
    assert!(changes.unexpressed.is_empty());
    assert_eq!(changes.reviews().count(), 0);
}

fn object(kind: ObjectKind, name: &str, attributes: &[(&str, &str)]) -> (ObjectKind, ObjectName, Definition) {
    (kind, ObjectName::new(name), Definition::new(attributes.iter().copied()))
}

#[test]
fn enum_values_are_added_in_place_and_a_file_that_uses_one_runs_outside_a_transaction() {
    let labels = |labels: &str| object(ObjectKind::EnumType, "status", &[("labels", labels)]);
    let current = Structure::new([labels("'new', 'done'")]);
    let changes = generate(&current, &Structure::new([labels("'draft', 'new', 'open', 'done'")]));
    assert_eq!(
        changes.script(Qualifier::SearchPath),
        "ALTER TYPE \"status\" ADD VALUE 'draft' BEFORE 'new';\n\nALTER TYPE \"status\" ADD VALUE 'open' AFTER 'new';\n"
    );
    assert!(!changes.no_transaction);
    // A column whose default uses the new value: the value must be committed before it is used.
    let with_default = |labels: &str, default: &str| {
        Structure::new([
            object(ObjectKind::EnumType, "status", &[("labels", labels)]),
            table("t", "s"),
            column("t", "s", &[("type", "<schema>.status"), ("default", default)]),
        ])
    };
    let changes = generate(
        &with_default("'new'", "'new'::<schema>.status"),
        &with_default("'new', 'open'", "'open'::<schema>.status"),
    );
    assert!(changes.no_transaction, "{}", changes.script(Qualifier::SearchPath));
}

#[test]
fn drops_come_before_creations_dependents_first_and_data_loss_is_flagged() {
    let current = Structure::new([
        table("a", "id"),
        column("a", "id", &[("type", "integer")]),
        object(ObjectKind::View, "v", &[("definition", " SELECT a.id FROM <schema>.a;")]),
        object(ObjectKind::EnumType, "e", &[("labels", "'x'")]),
    ]);
    let desired = Structure::new([table("b", "id"), column("b", "id", &[("type", "integer")])]);
    let changes = generate(&current, &desired);
    let script = changes.script(Qualifier::SearchPath);
    let at = |text: &str| script.find(text).unwrap_or_else(|| panic!("{text} not in\n{script}"));
    assert!(at("DROP VIEW \"v\";") < at("DROP TABLE \"a\";"));
    assert!(at("DROP TABLE \"a\";") < at("DROP TYPE \"e\";"));
    assert!(at("DROP TYPE \"e\";") < at("CREATE TABLE \"b\""));
    // Same columns: a rename, perhaps, said rather than guessed.
    let review = changes.reviews().next().unwrap();
    assert_eq!(review.reason, ReviewReason::LooksRenamed);
    assert!(review.text.contains("--rename a=b"), "{}", review.text);
}

#[test]
fn what_alter_table_cannot_do_is_listed_not_written() {
    let current = Structure::new([
        table("t", "a, b"),
        column("t", "a", &[("type", "integer")]),
        column("t", "b", &[("type", "integer")]),
    ]);
    let desired = Structure::new([
        table("t", "b, a"),
        column("t", "a", &[("type", "integer")]),
        column("t", "b", &[("type", "integer")]),
    ]);
    let changes = generate(&current, &desired);
    assert_eq!(changes.script(Qualifier::SearchPath), "");
    assert_eq!(changes.unexpressed.len(), 1);
    assert!(changes.unexpressed[0].reason.contains("PostgreSQL cannot reorder columns"), "{:?}", changes.unexpressed);
    assert!(!changes.is_empty());
}
