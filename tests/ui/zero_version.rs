use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_zero_version");

fn main() {
    let _ = &MIGRATIONS;
}
