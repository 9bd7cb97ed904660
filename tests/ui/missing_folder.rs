use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_missing_folder");

fn main() {
    let _ = &MIGRATIONS;
}
