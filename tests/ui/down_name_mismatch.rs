use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_down_name_mismatch");

fn main() {
    let _ = &MIGRATIONS;
}
