use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_not_utf8");

fn main() {
    let _ = &MIGRATIONS;
}
