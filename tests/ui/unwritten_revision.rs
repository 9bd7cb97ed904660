use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("ui/migrations_unwritten_revision");

fn main() {
    let _ = &MIGRATIONS;
}
