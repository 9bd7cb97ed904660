use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_down_without_up");

fn main() {
    let _ = &MIGRATIONS;
}
