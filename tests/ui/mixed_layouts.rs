use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_mixed_layouts");

fn main() {
    let _ = &MIGRATIONS;
}
