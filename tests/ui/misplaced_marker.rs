use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_misplaced_marker");

fn main() {
    let _ = &MIGRATIONS;
}
