use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_multiple_errors");

fn main() {
    let _ = &MIGRATIONS;
}
