use migrate_runtime::{embed_migrations, MigrationSet};

static MIGRATIONS: MigrationSet = embed_migrations!("/migrations");

fn main() {
    let _ = &MIGRATIONS;
}
