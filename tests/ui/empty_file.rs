use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_empty_file");

fn main() {
    let _ = &MIGRATIONS;
}
