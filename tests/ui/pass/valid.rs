use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/pass/migrations_valid");

fn main() {
    // Ordered numerically: 2 before 10, although "10_x" sorts before "2_s" as text; README.md is ignored.
    let versions: Vec<i64> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, [2, 3, 10]);

    let v2 = MIGRATIONS.get(2).unwrap();
    assert_eq!(v2.name, "sqlx_style");
    assert_eq!(v2.up.file, "ui/pass/migrations_valid/2_sqlx_style.sql");
    assert_eq!(v2.up.sql, "CREATE TABLE a (id int);\n");
    assert_eq!(v2.down.as_ref().unwrap().file, "ui/pass/migrations_valid/2_sqlx_style.down.sql");

    let v3 = MIGRATIONS.get(3).unwrap();
    assert!(v3.up.no_transaction);
    assert!(v3.down.is_none());

    let v10 = MIGRATIONS.get(10).unwrap();
    assert_eq!(v10.name, "x");
    assert_eq!(v10.up.file, "ui/pass/migrations_valid/10_x.up.sql");
    assert!(!v10.up.no_transaction);
    assert_eq!(MIGRATIONS.head(), Some(10));
}
