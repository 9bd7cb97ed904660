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
