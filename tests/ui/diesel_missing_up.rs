use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_diesel_missing_up");

fn main() {
    let _ = &MIGRATIONS;
}
